"""Losses, registered by name in ``textsift.registry.LOSSES``; one file each."""
from textsift.losses import bce, ce  # noqa: F401
from textsift.losses.base import build_loss  # noqa: F401
