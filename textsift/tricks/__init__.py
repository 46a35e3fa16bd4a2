"""Training tricks plug into the trainer through named hooks (see ``textsift.tricks.base.Trick``);
one file each, registered by name in ``textsift.registry.TRICKS``."""
from __future__ import annotations

from textsift.tricks.base import Trick, build_tricks  # noqa: F401

# Importing a trick module registers it in TRICKS.
from textsift.tricks import (awp, ema, fgm, freelb, multisample_dropout, noisytune, pgd, rdrop,  # noqa: E402,F401
                             swa)
