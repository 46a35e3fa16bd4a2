"""Losses, registered by name in ``textsift.registry.LOSSES``; one file each."""
from textsift.losses import asl, bce, ce, conditional_bce, focal, mcloss, poly, zlpr  # noqa: F401
from textsift.losses.base import build_loss  # noqa: F401
