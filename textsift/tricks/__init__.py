"""Training tricks plug into the trainer through named hooks (see ``textsift.tricks.base.Trick``)."""
from textsift.tricks.base import Trick  # noqa: F401
