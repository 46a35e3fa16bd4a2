"""Progress bars, log files and TensorBoard writers, each optional."""
from __future__ import annotations

import logging
from contextlib import contextmanager
import sys
from pathlib import Path

log = logging.getLogger("textsift")


def progress(total: int | None, initial: int = 0, enabled: bool = True, desc: str = "", unit: str = "it"):
    """A tqdm bar on stderr (its rate shows ``unit``/s, e.g. texts/s)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, desc=desc, leave=False, dynamic_ncols=True,
                file=sys.stderr, unit=unit, unit_scale=unit != "it")


class _NullWriter:
    def add_scalar(self, *args, **kwargs):
        pass

    def flush(self):
        pass

    def close(self):
        pass


def open_tensorboard(run_dir: Path, purge_step: int | None = None, enabled: bool = True):
    """A ``SummaryWriter`` on ``run_dir/tensorboard``; on resume, events after ``purge_step`` are dropped."""
    if not enabled:
        return _NullWriter()
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"), purge_step=purge_step)


def attach_log_file(path: Path) -> logging.Handler:
    """Send textsift's log to ``path`` (appending, so a resumed run keeps its earlier lines)."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return handler


def setup_console_logging(verbose: bool = True) -> None:
    if any(getattr(h, "_textsift_console", False) for h in log.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler._textsift_console = True  # type: ignore[attr-defined]
    handler.setLevel(logging.INFO if verbose else logging.WARNING)
    log.addHandler(handler)
    log.setLevel(logging.INFO)


@contextmanager
def keep_root_handlers():
    """Undo root-logger handlers added inside the block. ONNX Runtime's quantizer calls ``logging.info``
    on the root logger, which (root having no handler) installs a default one, and from then on every
    textsift message would print twice: once by our console handler, once through propagation."""
    root = logging.getLogger()
    before = list(root.handlers)
    try:
        yield
    finally:
        for handler in [h for h in root.handlers if h not in before]:
            root.removeHandler(handler)


@contextmanager
def quiet_root_logger(level: int = logging.ERROR):
    """``keep_root_handlers``, with the root logger raised to ``level`` inside the block: ONNX Runtime's
    quantizers and transformer optimizer write their advice and progress lines to the root logger."""
    root = logging.getLogger()
    before = root.level
    root.setLevel(level)
    try:
        with keep_root_handlers():
            yield
    finally:
        root.setLevel(before)
