"""The compression pipeline: a teacher and its candidates, each built by the ordinary engines (train,
distill, prune, quantize, export) into an ordinary run directory ``DIR/stages/<name>``, then measured
on this machine and put on an accuracy / latency / size frontier.

Resumable: ``DIR/pipeline_state.json`` keeps each stage's fingerprint (a hash of its settings and of the
fingerprint of the stage it builds on). On a re-run a finished stage with an unchanged fingerprint is
reused; a changed or unfinished one is moved to ``DIR/superseded/<name>-<time>`` (never deleted) and
built again. A failing stage writes its traceback to ``DIR/logs/<name>.log``; the stages that build on
it are skipped with the reason, the others go on.
"""
from __future__ import annotations

import copy
import hashlib
import json
import logging
import shutil
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from textsift.config.pipeline import TEACHER, Candidate, PipelineConfig, order
from textsift.errors import TextsiftError

log = logging.getLogger("textsift")
STATE, STAGES, SUPERSEDED, LOGS = "pipeline_state.json", "stages", "superseded", "logs"


@dataclass
class StageOutcome:
    """What happened to one stage in this run: built, reused, failed or skipped (with the reason)."""

    name: str
    kind: str
    status: str
    dir: Optional[Path] = None
    seconds: float = 0.0
    reason: str = ""


@dataclass
class PipelineRun:
    cfg: PipelineConfig
    run_dir: Path
    outcomes: dict[str, StageOutcome] = field(default_factory=dict)
    fingerprints: dict[str, str] = field(default_factory=dict)

    @property
    def failed(self) -> list[str]:
        return [n for n, o in self.outcomes.items() if o.status == "failed"]


# ---------------------------------------------------------------- configs of the stages
def teacher_config(cfg: PipelineConfig):
    """The teacher's validated training ``Config``: its config with the pipeline's data."""
    from textsift.config.load import _expand, apply_overrides, read_yaml, resolve_config_path, validate

    spec = cfg.teacher
    raw, source = (copy.deepcopy(spec.config), "teacher.config") if isinstance(spec.config, dict) else \
        (read_yaml(resolve_config_path(spec.config)), str(resolve_config_path(spec.config)))
    raw["data"] = cfg.data.model_dump(mode="json", exclude_none=True)
    return validate(_expand(apply_overrides(raw, list(spec.overrides))), source=source)


def student_raw(cfg: PipelineConfig, c: Candidate, teacher_dir: str) -> dict:
    """A distill candidate's config: its sections over the pipeline's data, taught by ``teacher_dir``."""
    from textsift.config.load import _expand, apply_overrides

    raw = copy.deepcopy(c.config or {})
    raw["data"] = cfg.data.model_dump(mode="json", exclude_none=True)
    raw["distill"] = {**(raw.get("distill") or {}), "teacher": teacher_dir}
    return _expand(apply_overrides(raw, list(c.overrides)))


def fingerprint(settings: dict, parent: Optional[str]) -> str:
    """A stage's identity: its settings and the identity of the stage it builds on. Progress bars do not
    change a model, so ``train.progress`` is left out (turning them off must not retrain a teacher)."""
    settings = copy.deepcopy(settings)
    for config in (settings.get("train"), settings.get("config")):
        if isinstance(config, dict) and isinstance(config.get("train"), dict):
            config["train"].pop("progress", None)
    blob = json.dumps({"settings": settings, "parent": parent}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def _teacher_settings(cfg: PipelineConfig) -> dict:
    if cfg.teacher.run is not None:  # an existing run: its path and its weights' identity
        weights = Path(cfg.teacher.run) / "model.safetensors"
        stat = weights.stat() if weights.is_file() else None
        return {"run": str(Path(cfg.teacher.run).resolve()),
                "weights": [stat.st_size, stat.st_mtime_ns] if stat else None}
    return {"train": teacher_config(cfg).model_dump(mode="json")}


def _settings(cfg: PipelineConfig, c: Candidate) -> dict:
    out = {"kind": c.kind, **c.settings()}
    if c.kind == "distill":  # the resolved student config (data included), without the teacher's path
        out["config"] = student_raw(cfg, c, "<from>")
    if c.kind == "prune":
        out["data"] = cfg.data.model_dump(mode="json")
    if c.kind == "export" or (c.kind == "quantize" and out.get("method", "").startswith("onnx")):
        from textsift.engines.export import GRAPH_REVISION

        out["graph_revision"] = GRAPH_REVISION   # a better exporter redoes the graphs on a re-run
    return out


# ---------------------------------------------------------------- building one stage
def _build(cfg: PipelineConfig, name: str, stage_dir: Path, parent_dir: Optional[Path], resume: bool = False) -> None:
    """Build stage ``name`` into ``stage_dir`` with the existing engines (Python calls); ``resume``
    continues an interrupted training or distillation from its last checkpoint."""
    from textsift.engines.train_run import train_run

    if name == TEACHER:
        train_run(teacher_config(cfg), stage_dir, resume=resume)
        return
    c = cfg.stage(name)
    if c.kind == "distill":
        from textsift.config.load import validate

        train_run(validate(student_raw(cfg, c, str(parent_dir)), source=f"candidate {name}"), stage_dir,
                  resume=resume)
    elif c.kind == "prune":
        from textsift.engines.prune import prune_run

        prune_run(parent_dir, stage_dir, c.width, c.heads, c.ffn, c.layers, c.retrain_epochs,
                  c.importance_examples, c.overrides)
    elif c.kind == "quantize":
        from textsift.engines.quantize import quantize_run

        quantize_run(parent_dir, stage_dir, c.method, c.calibration)
    elif c.kind == "export":
        from textsift.engines.export import export_run

        export_run(parent_dir, stage_dir, "onnx", c.opset, c.int8)


def stage_dir_of(run: PipelineRun, name: str) -> Path:
    if name == TEACHER and run.cfg.teacher.run is not None:
        return Path(run.cfg.teacher.run)
    return run.run_dir / STAGES / name


def run_pipeline(cfg: PipelineConfig, run_dir, on_stage=None) -> PipelineRun:
    """Build every stage (reusing finished ones); returns what happened to each. ``on_stage(k, n, name)``
    is called before stage k of n (progress)."""
    run = PipelineRun(cfg, Path(run_dir))
    for sub in (STAGES, LOGS):
        (run.run_dir / sub).mkdir(parents=True, exist_ok=True)
    state = read_state(run.run_dir)
    names = order(cfg)
    for k, name in enumerate(names, 1):
        kind = "teacher" if name == TEACHER else cfg.stage(name).kind
        parent = None if name == TEACHER else cfg.stage(name).from_
        if on_stage:
            on_stage(k, len(names), name)
        if parent is not None and run.outcomes[parent].status in ("failed", "skipped"):
            why = f"needs '{parent}', which {run.outcomes[parent].status}"
            run.outcomes[name] = StageOutcome(name, kind, "skipped", reason=why)
            log.warning("stage %d/%d %s: skipped (%s)", k, len(names), name, why)
            continue
        try:
            settings = _teacher_settings(cfg) if name == TEACHER else _settings(cfg, cfg.stage(name))
        except Exception as e:  # noqa: BLE001 - a bad stage config fails the stage, not the pipeline
            run.outcomes[name] = _fail(run, name, kind, e, 0.0, k, len(names))
            continue
        run.fingerprints[name] = fingerprint(settings, run.fingerprints.get(parent))
        before = state["stages"].get(name, {})
        out = run.outcomes[name] = _run_stage(run, name, kind, parent, state, k, len(names))
        state["stages"][name] = {"kind": kind, "fingerprint": run.fingerprints[name],
                                 "status": "finished" if out.status == "reused" else out.status,
                                 "dir": str(stage_dir_of(run, name)),
                                 "seconds": before.get("seconds", 0.0) if out.status == "reused" else out.seconds,
                                 "updated": before.get("updated") if out.status == "reused"
                                 else time.strftime("%Y-%m-%dT%H:%M:%S"),
                                 **({"error": out.reason} if out.reason else {})}
        write_state(run.run_dir, state)
    return run


def _run_stage(run: PipelineRun, name: str, kind: str, parent: Optional[str], state: dict, k: int,
               n: int) -> StageOutcome:
    from textsift.engines.logging_utils import keep_root_handlers

    stage_dir = stage_dir_of(run, name)
    if name == TEACHER and run.cfg.teacher.run is not None:
        from textsift.rundir import check_run_dir

        try:
            check_run_dir(stage_dir)
        except TextsiftError as e:
            return _fail(run, name, kind, e, 0.0, k, n)
        log.info("stage %d/%d %s: the existing run %s", k, n, name, stage_dir)
        return StageOutcome(name, kind, "reused", stage_dir)
    before = state["stages"].get(name, {})
    if before.get("status") == "finished" and before.get("fingerprint") == run.fingerprints[name] \
            and stage_dir.is_dir():
        log.info("stage %d/%d %s (%s): finished earlier with the same settings, reused", k, n, name, kind)
        return StageOutcome(name, kind, "reused", stage_dir)
    # an interrupted training/distillation with the same settings continues from its last checkpoint
    resume = (before.get("status") == "running" and before.get("fingerprint") == run.fingerprints[name]
              and kind in ("teacher", "distill") and (stage_dir / "checkpoints" / "latest").is_file())
    if stage_dir.exists() and not resume:
        moved = supersede(run.run_dir, stage_dir)
        why = "its settings changed" if before.get("status") == "finished" else "it did not finish"
        log.info("stage %d/%d %s: %s; the old directory is kept in %s", k, n, name, why, moved)
    log.info("stage %d/%d %s (%s%s): %s", k, n, name, kind, f" from {parent}" if parent else "",
             "resuming from its last checkpoint" if resume else "building")
    state["stages"][name] = {"kind": kind, "fingerprint": run.fingerprints[name], "status": "running",
                             "dir": str(stage_dir), "updated": time.strftime("%Y-%m-%dT%H:%M:%S")}
    write_state(run.run_dir, state)  # a kill from here on leaves "running": the next run resumes or redoes it
    started = time.perf_counter()
    handler = _attach_stage_log(run.run_dir / LOGS / f"{name}.log")
    try:
        with keep_root_handlers():
            _build(run.cfg, name, stage_dir, stage_dir_of(run, parent) if parent else None, resume)
    except Exception as e:  # noqa: BLE001 - one failing stage must not stop the independent ones
        _detach(handler)
        return _fail(run, name, kind, e, time.perf_counter() - started, k, n)
    _detach(handler)
    seconds = round(time.perf_counter() - started, 1)
    log.info("stage %d/%d %s: done in %.0f s", k, n, name, seconds)
    return StageOutcome(name, kind, "finished", stage_dir, seconds)


def _fail(run: PipelineRun, name: str, kind: str, err: BaseException, seconds: float, k: int, n: int):
    path = run.run_dir / LOGS / f"{name}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} stage {name} failed:\n")
        f.write("".join(traceback.format_exception(type(err), err, err.__traceback__)))
    message = str(err).splitlines()[0] if str(err) else type(err).__name__
    log.error("stage %d/%d %s: FAILED: %s (traceback in %s)", k, n, name, message, path)
    return StageOutcome(name, kind, "failed", stage_dir_of(run, name), round(seconds, 1),
                        reason=f"{type(err).__name__}: {message}")


def supersede(run_dir: Path, stage_dir: Path) -> Path:
    """Move ``stage_dir`` to ``run_dir/superseded/<name>-<time>`` (a new name if that exists)."""
    dest_root = run_dir / SUPERSEDED
    dest_root.mkdir(parents=True, exist_ok=True)
    base = f"{stage_dir.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    dest, i = dest_root / base, 1
    while dest.exists():
        i += 1
        dest = dest_root / f"{base}-{i}"
    shutil.move(str(stage_dir), str(dest))
    return dest


def _attach_stage_log(path: Path) -> logging.Handler:
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    return handler


def _detach(handler: logging.Handler) -> None:
    log.removeHandler(handler)
    handler.close()


# ---------------------------------------------------------------- state
def read_state(run_dir: Path) -> dict:
    path = Path(run_dir) / STATE
    if not path.is_file():
        return {"stages": {}, "metrics": {}}
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise TextsiftError(f"{path}: not valid JSON ({e}); move it away to rebuild every stage") from None
    state.setdefault("stages", {})
    state.setdefault("metrics", {})
    return state


def write_state(run_dir: Path, state: dict) -> None:
    from textsift.rundir import write_json

    write_json(Path(run_dir) / STATE, state)


# ---------------------------------------------------------------- measuring the candidates
def backend_of(c: Candidate) -> str:
    """How a candidate runs: PyTorch for runs, ONNX Runtime (fp32 or int8) for export directories."""
    if c.kind == "export":
        return "onnx-int8" if c.int8 else "onnx"
    if c.kind == "quantize" and c.method != "dynamic":
        return "onnx-int8"
    return "torch"


def measure_candidates(run: PipelineRun, on_candidate=None) -> list[dict]:
    """One row per finished candidate (``measure: true``): test metric, parameters, size on disk, texts/s
    at batch 32 and p50/p95 latency at batch 1, all measured now on this machine. The test metric is
    kept in the state by fingerprint (it does not depend on the machine); timings are always redone."""
    import torch

    cfg, state = run.cfg, read_state(run.run_dir)
    if cfg.measure.threads:
        torch.set_num_threads(cfg.measure.threads)
    rows = []
    wanted = [c for c in cfg.candidates if c.measure]
    for i, c in enumerate(wanted, 1):
        stage = TEACHER if c.kind == "teacher" else c.name
        outcome = run.outcomes.get(stage)
        if on_candidate:
            on_candidate(i, len(wanted), c.name)
        if outcome is None or outcome.status not in ("finished", "reused"):
            continue
        try:
            rows.append(_measure_one(run, c, stage, state))
        except Exception as e:  # noqa: BLE001 - a candidate that cannot be loaded is reported, not fatal
            failed = run.outcomes[c.name] = _fail(run, c.name, c.kind, e, 0.0, i, len(wanted))
            failed.reason = f"measuring failed: {failed.reason}"
    write_state(run.run_dir, state)
    return rows


def _measure_one(run: PipelineRun, c: Candidate, stage: str, state: dict) -> dict:
    from textsift.api import TextClassifier
    from textsift.data import read_examples
    from textsift.engines.evaluation import evaluate_examples
    from textsift.engines.measure import measure
    from textsift.rundir import MODEL_JSON, load_bundle, read_json

    folder, backend = stage_dir_of(run, stage), backend_of(c)
    bundle = load_bundle(folder, backend=backend, threads=run.cfg.measure.threads or 0)
    examples = read_examples(run.cfg.data.test, run.cfg.data, task=bundle.scheme.task)
    key = f"{run.fingerprints[stage]}:{backend}"
    if key not in state["metrics"]:
        state["metrics"][key] = evaluate_examples(bundle.model, bundle.scheme, bundle.encoder, examples,
                                                  bundle.max_length, 64)
    metrics = state["metrics"][key]
    texts = [ex.text for ex in examples][:run.cfg.measure.texts]
    row = measure(TextClassifier(bundle), texts, folder, {"test": metrics})
    metric = next(k for k in row if k.startswith("test_"))
    if row["parameters"] is None and (folder / MODEL_JSON).is_file():  # ONNX: the exported model's count
        row["parameters"] = read_json(folder / MODEL_JSON).get("parameters")
    return {"name": c.name, "kind": c.kind, "from": None if c.kind == "teacher" else c.from_, "backend": backend,
            "dir": str(folder), "metric": metric[len("test_"):], "score": row.pop(metric), **row}


# ---------------------------------------------------------------- the whole command
def pipeline(cfg: PipelineConfig, run_dir, max_latency_ms: Optional[float] = None,
             min_accuracy: Optional[float] = None) -> tuple[dict, PipelineRun]:
    """Build every stage, measure every candidate, write frontier.json/.md/.png into ``run_dir``.
    Returns the frontier report and what happened to each stage (``run.failed`` lists failures)."""
    from textsift.engines.checkpoint import atomic_write
    from textsift.engines.frontier import recommend
    from textsift.reporting.frontier import frontier_report, write_frontier

    import yaml

    recommend([], max_latency_ms, min_accuracy)  # a bad budget is refused before hours of training
    run_dir = Path(run_dir)
    if run_dir.is_dir() and any(run_dir.iterdir()) and not (run_dir / STATE).is_file():
        raise TextsiftError(f"--run-dir {run_dir}: exists and is not a pipeline directory (no {STATE}); "
                            "choose a new directory, or the one of an earlier `textsift pipeline` to resume it")
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(run_dir / "pipeline.yaml", yaml.safe_dump(cfg.model_dump(mode="json", by_alias=True),
                                                           sort_keys=False, allow_unicode=True))
    run = run_pipeline(cfg, run_dir)
    rows = measure_candidates(run, on_candidate=lambda k, n, name: log.info("measuring %d/%d: %s", k, n, name))
    stages = {name: {"kind": o.kind, "status": o.status, "reason": o.reason, "seconds": o.seconds,
                     "dir": str(o.dir) if o.dir else None, "fingerprint": run.fingerprints.get(name)}
              for name, o in run.outcomes.items()}
    report = frontier_report(rows, stages, _teacher_score(run, rows), recommend(rows, max_latency_ms, min_accuracy))
    write_frontier(report, run_dir)
    return report, run


def _teacher_score(run: PipelineRun, rows: list[dict]) -> Optional[float]:
    """The teacher's test metric: its measured row, else its run's metrics.json."""
    from textsift.rundir import read_json

    row = next((r for r in rows if r["kind"] == "teacher"), None)
    if row is not None:
        return row["score"]
    outcome = run.outcomes.get(TEACHER)
    metrics_file = stage_dir_of(run, TEACHER) / "metrics.json"
    if outcome is None or outcome.status not in ("finished", "reused") or not metrics_file.is_file():
        return None
    test = read_json(metrics_file).get("test") or {}
    return test.get("accuracy", test.get("micro_f1"))
