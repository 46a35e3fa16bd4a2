"""The pipeline config (``textsift pipeline -c CONFIG``): data, a teacher, and the candidates to build
from it, each a stage that builds on another (``from``). Validated before anything runs: unknown keys,
settings that do not belong to a candidate's kind, an unknown ``from``, cycles and duplicate names are all
reported at once, with the YAML line of the candidate.

    data: {train: ..., dev: ..., test: ...}
    teacher: {config: sst2_sentence_minilm}          # trained here; or {run: runs/my_teacher}
    candidates:
      - {name: teacher, kind: teacher}
      - {name: teacher_int8, kind: quantize, from: teacher, method: onnx-dynamic}
      - {name: l3, kind: distill, from: teacher, config: {model: {name: hf}, distill: {student_layers: [0, 2, 4]}}}
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal, Optional, Union

import yaml
from pydantic import ConfigDict, Field, ValidationError, model_validator

from textsift.config.schema import DataConfig, Section
from textsift.errors import ConfigError, TextsiftError
from textsift.registry import did_you_mean

PIPELINE_PRESET_DIR = Path(__file__).resolve().parent.parent / "presets" / "pipelines"
TEACHER = "teacher"  # the teacher stage's name; candidates build on it with `from: teacher`
KINDS = ("teacher", "distill", "prune", "quantize", "export")
# the candidate settings each kind takes (besides name, kind, from, measure)
SETTINGS = {"teacher": set(), "distill": {"config", "overrides"},
            "prune": {"width", "heads", "ffn", "layers", "retrain_epochs", "importance_examples", "overrides"},
            "quantize": {"method", "calibration"}, "export": {"int8", "opset"}}
# kinds whose stage directory is a run directory with PyTorch weights (what the next stage can build on)
TORCH_RUN = {"teacher", "distill", "prune"}


class TeacherSpec(Section):
    run: Optional[str] = Field(None, description="An existing finished run directory used as the teacher "
                                                 "(not copied, not retrained).")
    config: Optional[Union[str, dict[str, Any]]] = Field(
        None, description="Or a training config to train the teacher here: a preset name, a YAML file, or an "
                          "inline mapping. Its `data` section is replaced by the pipeline's `data`.")
    overrides: list[str] = Field(default_factory=list, description="`key=value` overrides of the teacher's "
                                                                   "training config, e.g. `[train.epochs=1]`.")

    @model_validator(mode="after")
    def _one(self):
        if (self.run is None) == (self.config is None):
            raise ValueError("expected exactly one of `run: RUN_DIR` (an existing teacher) or `config: ...` "
                             "(a config to train it)")
        return self


class Candidate(Section):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(..., pattern=r"^[A-Za-z0-9_.-]+$", description="Stage name (letters, digits, `_.-`): "
                      "its run directory is `DIR/stages/NAME`.")
    kind: Literal["teacher", "distill", "prune", "quantize", "export"] = Field(
        ..., description="teacher (the teacher itself, measured), distill, prune, quantize or export.")
    from_: str = Field(TEACHER, alias="from", description="The stage this one builds on (`teacher` or another "
                       "candidate's name). distill: its teacher; prune, quantize, export: the run to compress.")
    measure: bool = Field(True, description="Measure this candidate and put it on the frontier (false: an "
                                            "intermediate stage only).")
    config: Optional[dict[str, Any]] = Field(None, description="distill: the student's config sections "
                                             "(`model` required; `tokenizer`, `train`, `distill`, ...), merged "
                                             "over the pipeline's data and `distill.teacher: <from>`.")
    overrides: list[str] = Field(default_factory=list, description="distill: `key=value` overrides of the "
                                 "student config; prune: config overrides for re-training.")
    width: Optional[float] = Field(None, gt=0, le=1, description="prune: fraction of heads and neurons kept.")
    heads: Optional[int] = Field(None, ge=1, description="prune: attention heads kept per layer.")
    ffn: Optional[int] = Field(None, ge=1, description="prune: feed-forward neurons kept per layer.")
    layers: Optional[list[int]] = Field(None, description="prune: 0-based layers kept.")
    retrain_epochs: int = Field(0, ge=0, description="prune: re-training epochs (distillation from `from`).")
    importance_examples: int = Field(512, ge=1, description="prune: training texts used to rank heads/neurons.")
    method: Literal["dynamic", "onnx-dynamic", "onnx-static"] = Field(
        "onnx-dynamic", description="quantize: PyTorch dynamic int8, or ONNX Runtime dynamic / static int8.")
    calibration: Optional[str] = Field(None, description="quantize onnx-static: calibration texts file "
                                                         "(default: the training file).")
    int8: bool = Field(False, description="export: also quantize (ONNX Runtime dynamic) and measure the int8 model.")
    opset: int = Field(17, ge=7, description="export: ONNX opset.")

    def settings(self) -> dict:
        """This kind's settings (what the stage's fingerprint covers)."""
        return {k: getattr(self, k) for k in sorted(SETTINGS[self.kind])}

    @model_validator(mode="before")
    @classmethod
    def _kind_settings(cls, raw):
        if not isinstance(raw, dict) or raw.get("kind") not in KINDS:
            return raw
        foreign = sorted(k for k in raw if k not in {"name", "kind", "from", "measure"} | SETTINGS[raw["kind"]]
                         and k in cls.model_fields)
        if foreign:
            owner = {k: next(kind for kind, keys in SETTINGS.items() if k in keys) for k in foreign}
            raise ValueError(f"{', '.join(f'`{k}` is a {owner[k]} setting' for k in foreign)}, but kind is "
                             f"{raw['kind']!r}; {raw['kind']} takes {', '.join(sorted(SETTINGS[raw['kind']])) or 'no settings'}")
        if raw["kind"] == "distill" and not (isinstance(raw.get("config"), dict) and "model" in raw["config"]):
            raise ValueError("a distill candidate needs `config: {model: {name: ...}, ...}` (the student)")
        return raw


class MeasureSpec(Section):
    texts: int = Field(100, ge=1, description="Test texts timed one by one (p50/p95 at batch 1); batch 32 runs "
                                              "over 512 texts drawn from them.")
    threads: Optional[int] = Field(None, ge=1, description="torch / ONNX Runtime threads while measuring "
                                                           "(default: all cores).")


class PipelineConfig(Section):
    data: DataConfig = Field(..., description="The data every stage trains and is tested on (`test` required: "
                                              "the frontier's accuracy is the test metric).")
    teacher: TeacherSpec
    candidates: list[Candidate] = Field(..., min_length=1, description="The candidates to build and measure.")
    measure: MeasureSpec = Field(default_factory=MeasureSpec)

    def stage(self, name: str) -> Candidate:
        return next(c for c in self.candidates if c.name == name)


def graph_problems(cfg: PipelineConfig, lines: dict[int, int] | None = None) -> list[str]:
    """Duplicate names, unknown ``from``, cycles and building on a stage that has no PyTorch run."""
    lines = lines or {}
    problems, names = [], [c.name for c in cfg.candidates]
    kind_of = {TEACHER: "teacher", **{c.name: c.kind for c in cfg.candidates}}
    for i, c in enumerate(cfg.candidates):
        where = f"candidates[{i}] ({c.name}{', line %d' % lines[i] if i in lines else ''})"
        if names.count(c.name) > 1 and names.index(c.name) != i:
            problems.append(f"{where}: the name {c.name!r} is used twice; give each candidate its own name")
        if c.name == TEACHER and c.kind != "teacher":
            problems.append(f"{where}: the name 'teacher' is the teacher stage; choose another name")
        if c.kind == "teacher":
            if c.from_ != TEACHER:
                problems.append(f"{where}: a `kind: teacher` candidate is the teacher itself; drop `from`")
            continue
        if c.from_ not in kind_of:
            problems.append(f"{where}.from: unknown stage {c.from_!r}{did_you_mean(c.from_, list(kind_of)) or '.'}"
                            f" Known: {', '.join(kind_of)}")
        elif c.from_ == c.name or _cycle(cfg, c.name):
            problems.append(f"{where}.from: {c.from_!r} makes a cycle ({' -> '.join(_chain(cfg, c.name))}); "
                            "every chain must end at 'teacher'")
        elif kind_of[c.from_] not in TORCH_RUN:
            problems.append(f"{where}.from: {c.from_!r} is a {kind_of[c.from_]} stage; {c.kind} builds on a "
                            "PyTorch run (teacher, distill or prune)")
    return problems


def _chain(cfg: PipelineConfig, name: str) -> list[str]:
    seen, parent = [name], {c.name: c.from_ for c in cfg.candidates if c.kind != "teacher"}
    while name in parent:
        name = parent[name]
        seen.append(name)
        if seen.count(name) > 1:
            break
    return seen


def _cycle(cfg: PipelineConfig, name: str) -> bool:
    chain = _chain(cfg, name)
    return len(chain) != len(set(chain))


def order(cfg: PipelineConfig) -> list[str]:
    """Stage names, each after the stage it builds on (the teacher first), otherwise in config order."""
    out = [TEACHER]
    pending = [c.name for c in cfg.candidates if c.kind != "teacher"]
    while pending:  # graph_problems has ruled out cycles and unknown names, so every pass adds one
        for name in list(pending):
            if cfg.stage(name).from_ in out:
                out.append(name)
                pending.remove(name)
    return out


def candidate_lines(text: str) -> dict[int, int]:
    """``{candidate index: 1-based YAML line}``, to name the line in error messages."""
    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        return {}
    for key, value in getattr(root, "value", []) if isinstance(root, yaml.MappingNode) else []:
        if key.value == "candidates" and isinstance(value, yaml.SequenceNode):
            return {i: node.start_mark.line + 1 for i, node in enumerate(value.value)}
    return {}


def resolve_pipeline_path(name: str) -> Path:
    from textsift.config.load import resolve_config_path

    return resolve_config_path(name, PIPELINE_PRESET_DIR, "pipeline preset")


def pipeline_presets() -> list[str]:
    return sorted(p.stem for p in PIPELINE_PRESET_DIR.glob("*.yaml"))


def load_pipeline_config(name: str, overrides: list[str] | None = None) -> PipelineConfig:
    """Read a pipeline YAML (or preset), apply ``key=value`` overrides, expand ``${TEXTSIFT_DATA}``-style
    variables and validate; raise ``ConfigError`` listing every problem."""
    from textsift.config.load import _expand, _format_errors, apply_overrides, read_yaml

    path = resolve_pipeline_path(name)
    raw = _expand(apply_overrides(read_yaml(path), overrides or []))
    lines = candidate_lines(path.read_text(encoding="utf-8-sig"))
    problems = _unknown_candidate_keys(raw, lines)
    try:
        cfg = PipelineConfig(**raw)
    except ValidationError as e:
        errors = [x for x in e.errors() if not (x["type"] == "extra_forbidden" and x["loc"][0] == "candidates")]
        problems += [_with_line(p, lines) for p in _format_errors(_Errors(errors), "", PipelineConfig)]
        raise ConfigError(problems, str(path)) from None
    problems += graph_problems(cfg, lines) + stage_config_problems(cfg, lines)
    if cfg.data.test is None:
        problems.append("data.test: required: the frontier's accuracy is measured on the test file")
    for split in ("train", "dev", "test"):
        value = getattr(cfg.data, split)
        if value and not Path(value).is_file():
            problems.append(f"data.{split}: file not found: {value} (relative paths are read from {Path.cwd()})")
    if problems:
        raise ConfigError(problems, str(path))
    return cfg


class _Errors:
    """A filtered list of pydantic errors, in the shape ``_format_errors`` reads."""

    def __init__(self, errors: list):
        self._errors = errors

    def errors(self) -> list:
        return self._errors


def _unknown_candidate_keys(raw: dict, lines: dict[int, int]) -> list[str]:
    known = sorted({"from"} | set(Candidate.model_fields) - {"from_"})
    problems = []
    for i, c in enumerate(raw.get("candidates") or []):
        for key in (c if isinstance(c, dict) else {}):
            if key not in known:
                line = f" (line {lines[i]})" if i in lines else ""
                problems.append(f"candidates.{i}.{key}{line}: unknown key{did_you_mean(key, known) or '.'} "
                                f"Known keys here: {', '.join(known)}")
    return problems


def stage_config_problems(cfg: PipelineConfig, lines: dict[int, int] | None = None) -> list[str]:
    """The teacher's and each distilled student's training config, validated now (files are checked when
    the stage runs: the teacher directory does not exist yet)."""
    from textsift.engines.pipeline import student_raw, teacher_config

    problems, lines = [], lines or {}
    if cfg.teacher.run is not None:
        from textsift.rundir import check_run_dir

        try:
            check_run_dir(cfg.teacher.run)
        except TextsiftError as e:
            problems.append(f"teacher.run: {e}")
    if cfg.teacher.config is not None:
        try:
            teacher_config(cfg)
        except ConfigError as e:
            problems += [f"teacher.config: {p}" for p in e.problems if not p.startswith("data.")]
        except TextsiftError as e:
            problems.append(f"teacher.config: {e}")
    for i, c in enumerate(cfg.candidates):
        if c.kind != "distill":
            continue
        try:
            from textsift.config.load import validate

            validate(student_raw(cfg, c, "<teacher>"), check_files=False)
        except ConfigError as e:
            where = f"candidates[{i}] ({c.name}{', line %d' % lines[i] if i in lines else ''}).config"
            problems += [f"{where}.{p}" for p in e.problems]
        except TextsiftError as e:
            problems.append(f"candidates[{i}] ({c.name}).config: {e}")
    return problems


def _with_line(problem: str, lines: dict[int, int]) -> str:
    m = re.match(r"candidates\.(\d+)", problem)
    return f"{problem} (line {lines[int(m.group(1))]})" if m and int(m.group(1)) in lines else problem
