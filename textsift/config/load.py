"""YAML file → ``key=value`` overrides → validation that reports every problem → ``Config``."""
from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from textsift.config.schema import Config, calibration_task_error
from textsift.errors import ConfigError, TextsiftError
from textsift.registry import LOSSES, MODELS, TOKENIZERS, TRICKS, did_you_mean

PRESET_DIR = Path(__file__).resolve().parent.parent / "presets"
DATA_ENV = "TEXTSIFT_DATA"


def data_root() -> Path:
    """Where shared datasets live: ``$TEXTSIFT_DATA`` or ``../shared/datasets`` (from the working dir)."""
    return Path(os.environ.get(DATA_ENV, "../shared/datasets"))


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def resolve_config_path(path_or_preset: str, preset_dir: Path = PRESET_DIR, what: str = "preset") -> Path:
    """A config file path, or the name of a shipped preset (``thucnews_title``) in ``preset_dir``."""
    path = Path(path_or_preset)
    if path.is_file():
        return path
    if path.suffix == "" and (preset_dir / f"{path_or_preset}.yaml").is_file():
        return preset_dir / f"{path_or_preset}.yaml"
    presets = sorted(p.stem for p in preset_dir.glob("*.yaml"))
    raise TextsiftError(
        f"config '{path_or_preset}' not found: expected a YAML file or a {what} name"
        f"{did_you_mean(path_or_preset, presets) or '.'} {what.capitalize()}s: {', '.join(presets)}")


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise TextsiftError(f"{path}: config is not UTF-8 text ({e.reason} at byte {e.start})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(e, "problem", None) or str(e)
        raise TextsiftError(f"{where}: invalid YAML: {problem}; check indentation and quoting") from None
    if raw is None:
        raise TextsiftError(f"{path}: config is empty; expected at least data.train and model.name")
    if not isinstance(raw, dict):
        raise TextsiftError(f"{path}: expected a mapping of sections (data:, model:, ...), found {type(raw).__name__}")
    return raw


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b.c=value`` overrides; values are parsed as YAML (``3``, ``0.1``, ``[3,4]``, ``null``)."""
    out = copy.deepcopy(raw)
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise TextsiftError(f"override '{item}': expected key=value, e.g. train.lr=0.001")
        try:
            parsed = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError:
            parsed = value
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[parts[-1]] = parsed
    return out


def _loc(loc: tuple) -> str:
    return ".".join(str(p) for p in loc)


def _format_errors(err: ValidationError, prefix: str, schema: type[BaseModel] | None) -> list[str]:
    """Turn pydantic errors into ``path: message`` lines, with did-you-mean for unknown keys."""
    problems = []
    for e in err.errors():
        loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and p.startswith(("function-", "literal["))))
        path = prefix + _loc(loc)
        if e["type"] == "extra_forbidden":
            known = _fields_at(schema, loc[:-1])
            hint = did_you_mean(str(loc[-1]), known) or "."
            problems.append(f"{path}: unknown key{hint} Known keys here: {', '.join(known)}")
        elif e["type"] == "missing":
            problems.append(f"{path}: required, but missing")
        else:
            found = e.get("input")
            found_s = f", got {found!r}" if not isinstance(found, (dict, list)) or len(str(found)) < 60 else ""
            msg = e["msg"].removeprefix("Value error, ").rstrip(".")  # pydantic's wording for a validator's own
            problems.append(f"{path}: {msg}{found_s}" if path else f"{msg}{found_s}")
    return problems


def _fields_at(schema: type[BaseModel] | None, loc: tuple) -> list[str]:
    """The field names of the (nested) section at ``loc``; used to suggest the intended key."""
    import typing

    node = schema
    for part in loc:
        if isinstance(part, int):  # an item of a list of sections (e.g. distill.tasks.1): its section type
            continue
        field = node.model_fields.get(str(part)) if node else None
        ann = getattr(field, "annotation", None)
        if typing.get_origin(ann) is list:
            ann = (typing.get_args(ann) or (None,))[0]
        # Optional[Section] (e.g. distill): the section among the union's members
        ann = next((a for a in (typing.get_args(ann) or (ann,)) if isinstance(a, type) and issubclass(a, BaseModel)),
                   ann)
        node = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
    return sorted(node.model_fields) if node else []


def validate_params(schema: type[BaseModel] | None, values: dict[str, Any], prefix: str) -> tuple[Any, list[str]]:
    """Validate a component's parameters (everything but ``name``) against its parameter class."""
    if schema is None:
        extra = sorted(values)
        return None, [f"{prefix}{k}: this component takes no parameters" for k in extra]
    try:
        return schema(**values), []
    except ValidationError as e:
        return None, _format_errors(e, prefix, schema)


def validate(raw: dict[str, Any], source: str | None = None, check_files: bool = True) -> Config:
    """Validate a raw config dict; raise ``ConfigError`` listing every problem found."""
    problems: list[str] = []
    raw = _student_from_teacher(raw)
    try:
        cfg = Config(**raw)
    except ValidationError as e:
        problems += _format_errors(e, "", Config)
        cfg = None
    model = raw.get("model") if isinstance(raw.get("model"), dict) else {}
    name = model.get("name")
    if name is not None:
        if name not in MODELS:
            problems.append(f"model.name: {MODELS.unknown_message(name)}")
        else:
            params = {k: v for k, v in model.items() if k != "name"}
            problems += validate_params(MODELS.entry(name).params, params, "model.")[1]
    loss = raw.get("loss") if isinstance(raw.get("loss"), dict) else {}
    if loss.get("name") is not None:
        if loss["name"] not in LOSSES:
            problems.append(f"loss.name: {LOSSES.unknown_message(loss['name'])}")
        else:
            params = {k: v for k, v in loss.items() if k != "name"}
            problems += validate_params(LOSSES.entry(loss["name"]).params, params, "loss.")[1]
    train = raw.get("train") if isinstance(raw.get("train"), dict) else {}
    if isinstance(train.get("tricks"), list):
        problems += _check_tricks(train["tricks"])
    tok = raw.get("tokenizer") if isinstance(raw.get("tokenizer"), dict) else {}
    if tok.get("name") is not None and tok["name"] not in TOKENIZERS:
        problems.append(f"tokenizer.name: {TOKENIZERS.unknown_message(tok['name'])}")
    if cfg is not None:
        problems += _check_streaming(cfg)
    if cfg is not None and cfg.task not in (None, "single_label") and cfg.calibration.method == "temperature":
        problems.append(calibration_task_error(cfg.task))
    if check_files:
        distill = raw.get("distill") if isinstance(raw.get("distill"), dict) else {}
        if isinstance(distill.get("tasks"), list) and distill["tasks"]:  # multi-task: every task's own files
            problems += _check_task_files(distill["tasks"])
        else:
            problems += _check_files(raw.get("data") if isinstance(raw.get("data"), dict) else {})
        problems += _check_model_files(model)
        problems += _check_distill_files(raw.get("distill"))
    if problems:
        raise ConfigError(problems, source)
    return cfg


def _check_streaming(cfg: Config) -> list[str]:
    """What needs the whole training set in memory cannot run with ``data.streaming``."""
    if not cfg.data.streaming:
        return []
    why = "needs the whole training set in memory; set data.streaming=false"
    problems = []
    if not cfg.data.dev:
        problems.append("data.streaming: expected a data.dev file (a dev split cannot be held out of a stream); "
                        "add data.dev or set data.streaming=false")
    for key in ("class_weights", "pos_weight"):
        if getattr(cfg.loss, key, None) == "balanced":
            problems.append(f"loss.{key}: 'balanced' counts labels over the whole training set, which "
                            f"data.streaming does not hold; give explicit weights or set data.streaming=false")
    if cfg.train.kfold:
        problems.append(f"train.kfold: K-fold {why}")
    if cfg.distill is not None:
        problems.append(f"distill: distillation {why}")
    if cfg.model.name == "tfidf_linear":
        problems.append(f"model.name: tfidf_linear is fitted in one pass over the whole corpus and {why} "
                        "(or use a model trained by gradient steps, e.g. fasttext)")
    return problems


def _student_from_teacher(raw: dict) -> dict:
    """``distill.student_layers``: the student is the teacher's own encoder, so an ``hf`` model section
    without ``pretrained`` takes the teacher run's ``hf/`` folder (its config and tokenizer)."""
    distill, model = raw.get("distill"), raw.get("model")
    if not (isinstance(distill, dict) and distill.get("student_layers") and isinstance(model, dict)
            and model.get("name") == "hf" and "pretrained" not in model and isinstance(distill.get("teacher"), str)):
        return raw
    return {**raw, "model": {**model, "pretrained": str(Path(distill["teacher"]) / "hf")}}


def _check_distill_files(distill) -> list[str]:
    """Teacher run directories and the transfer-data file."""
    from textsift.errors import TextsiftError
    from textsift.rundir import check_run_dir

    if not isinstance(distill, dict):
        return []
    problems = []
    places = [("distill", distill)] + [(f"distill.tasks[{t.get('name', i)}]", t)
                                       for i, t in enumerate(distill.get("tasks") or []) if isinstance(t, dict)]
    for prefix, section in places:
        teachers = section.get("teacher")
        for i, teacher in enumerate(teachers if isinstance(teachers, list) else [teachers]):
            if isinstance(teacher, str):
                try:
                    check_run_dir(teacher)
                except TextsiftError as e:
                    where = f"{prefix}.teacher" + (f"[{i}]" if isinstance(teachers, list) else "")
                    problems.append(f"{where}: {e}")
    transfer = distill.get("transfer_data")
    if isinstance(transfer, str) and not Path(transfer).is_file():
        problems.append(f"distill.transfer_data: file not found: {transfer}")
    return problems


def _check_model_files(model: dict) -> list[str]:
    """Local files a model names: pretrained folders (hub names are left to the hub) and vector files."""
    problems = []
    pretrained = model.get("pretrained")
    if isinstance(pretrained, str) and (pretrained.startswith(("/", "./", "../", "~")) or Path(pretrained).exists()):
        folder = Path(pretrained).expanduser()
        if not folder.is_dir():
            problems.append(f"model.pretrained: folder not found: {pretrained} (a local save_pretrained folder; "
                            "run ../shared/pretrained/get-pretrained.sh for the shipped ones)")
        elif not (folder / "config.json").is_file():
            problems.append(f"model.pretrained: {pretrained} has no config.json; expected a folder written by "
                            "save_pretrained (config.json, model.safetensors, tokenizer files)")
    vectors = model.get("vectors")
    if isinstance(vectors, str) and not Path(vectors).expanduser().exists():
        problems.append(f"model.vectors: file not found: {vectors} (a word2vec/GloVe file, or a pretrained "
                        "encoder's folder)")
    return problems


def _check_tricks(specs: list) -> list[str]:
    """Each trick's name and parameters, and that the tricks can be combined."""
    problems, entries = [], []
    for i, spec in enumerate(specs):
        where = f"train.tricks[{i}]"
        if not isinstance(spec, dict) or "name" not in spec:
            continue  # the schema already reports it
        if spec["name"] not in TRICKS:
            problems.append(f"{where}.name: {TRICKS.unknown_message(spec['name'])}")
            continue
        entry = TRICKS.entry(spec["name"])
        params = {k: v for k, v in spec.items() if k != "name"}
        problems += validate_params(entry.params, params, f"{where}.")[1]
        entries.append((where, entry))
    seen: dict[str, str] = {}
    for where, entry in entries:
        if entry.name in seen:
            problems.append(f"{where}: '{entry.name}' is already listed at {seen[entry.name]}; list each trick once")
        seen.setdefault(entry.name, where)
    owners = [(w, e.name) for w, e in entries if getattr(e.obj, "owns_backward", False)]
    if len(owners) > 1:
        problems.append(f"{owners[1][0]}: '{owners[0][1]}' and '{owners[1][1]}' both take over the backward pass "
                        "and cannot be combined; keep one of them")
    for where, entry in entries:
        for other in getattr(entry.obj, "conflicts", ()):
            if other in seen and seen[other] != where:
                problems.append(f"{where}: '{entry.name}' cannot be combined with '{other}' ({seen[other]}); "
                                "keep one of them")
    return problems


def _check_files(data: dict) -> list[str]:
    problems = []
    if data.get("train") is None:
        problems.append("data.train: required for training, but missing; set it to a .jsonl/.csv/.tsv file")
    for split in ("train", "dev", "test", "hierarchy"):
        path = data.get(split)
        if isinstance(path, str) and not Path(path).is_file():
            problems.append(f"data.{split}: file not found: {path} (relative paths are read from {Path.cwd()})")
    return problems


def _check_task_files(tasks: list) -> list[str]:
    """``distill.tasks``: each task's train (required), dev and test files."""
    problems = []
    for i, t in enumerate(tasks):
        if not isinstance(t, dict):
            continue
        for split in ("train", "dev", "test"):
            path = t.get(split)
            if isinstance(path, str) and not Path(path).is_file():
                problems.append(f"distill.tasks[{t.get('name', i)}].{split}: file not found: {path} (relative paths "
                                f"are read from {Path.cwd()})")
    return problems


def load_config(path_or_preset: str, overrides: list[str] | None = None, check_files: bool = True) -> Config:
    """Read a YAML config (or preset), apply overrides, expand ``${TEXTSIFT_DATA}``, validate."""
    path = resolve_config_path(path_or_preset)
    base = read_yaml(path)
    raw = apply_overrides(base, overrides or [])
    _drop_foreign_model_params(base, raw, overrides or [])
    raw = _expand(raw)
    return validate(raw, source=str(path), check_files=check_files)


def _drop_foreign_model_params(base: dict, raw: dict, overrides: list[str]) -> None:
    """``model.name=X`` on the command line swaps the model of a config file: the file's parameters
    of its own model that X does not take are dropped (with a warning) instead of failing validation,
    so ``textsift train -c trec6 model.name=textrnn`` just works. Parameters given on the command line
    are always kept and validated."""
    old = (base.get("model") or {}).get("name") if isinstance(base.get("model"), dict) else None
    model = raw.get("model")
    if not isinstance(model, dict) or model.get("name") in (None, old) or model.get("name") not in MODELS:
        return
    params = MODELS.entry(model["name"]).params
    accepted = set(params.model_fields) if params else set()
    explicit = {o.partition("=")[0].strip()[len("model."):] for o in overrides if o.startswith("model.")}
    dropped = [k for k in list(model) if k != "name" and k not in accepted and k not in explicit]
    for key in dropped:
        del model[key]
    if dropped:
        import logging
        logging.getLogger("textsift").warning(
            "model.name=%s: dropped %s of the config's model '%s' (not parameters of %s)",
            model["name"], ", ".join(f"model.{k}" for k in dropped), old, model["name"])


def path_defaults() -> dict[str, str]:
    """Variables every config may use, with their defaults when unset in the environment:
    ``TEXTSIFT_DATA`` (datasets), ``TEXTSIFT_PRETRAINED`` (the shared pretrained folder) and
    ``TEXTSIFT_ASSETS`` (where ``get-pretrained.sh`` unpacks encoders and vectors)."""
    return {DATA_ENV: str(data_root()),
            "TEXTSIFT_PRETRAINED": os.environ.get("TEXTSIFT_PRETRAINED", "../shared/pretrained"),
            "TEXTSIFT_ASSETS": os.environ.get("TEXTSIFT_ASSETS", str(Path.home() / ".cache" / "textsift-assets"))}


def _expand(node: Any) -> Any:
    """Expand ``${TEXTSIFT_DATA}``, ``${TEXTSIFT_PRETRAINED}``, ``${TEXTSIFT_ASSETS}`` (see
    ``path_defaults``) and other environment variables in strings."""
    if isinstance(node, dict):
        return {k: _expand(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_expand(v) for v in node]
    if isinstance(node, str) and "$" in node:
        for name, value in path_defaults().items():
            node = node.replace("${" + name + "}", value)
        return os.path.expandvars(node)
    return node


def to_yaml(cfg: Config) -> str:
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
