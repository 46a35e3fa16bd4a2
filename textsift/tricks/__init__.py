"""Training tricks plug into the trainer through named hooks (see ``textsift.tricks.base.Trick``);
one file each, registered by name in ``textsift.registry.TRICKS``."""
from __future__ import annotations

from textsift.tricks.base import Trick, build_tricks  # noqa: F401
