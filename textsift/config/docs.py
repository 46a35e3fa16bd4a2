"""Markdown reference of every config key and every registered component's parameters.

The README embeds this output between ``<!-- config-reference -->`` markers, and a test checks that it
is current, so the documentation cannot drift from the schema. Regenerate with
``python -m textsift.config.docs``.
"""
from __future__ import annotations

import typing

import json
import types

import yaml
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from textsift.config.schema import Config, EarlyStopping


def _default(field) -> str:
    if field.default_factory is not None:
        return ""
    if field.default is PydanticUndefined:
        return "required"
    return json.dumps(field.default, ensure_ascii=False)


def _type(field) -> str:
    return _render(field.annotation)


def _render(ann) -> str:
    """A short human name for a type annotation: ``int``, ``list[int]``, ``a \\| b``."""
    origin, args = get_origin(ann), get_args(ann)
    if origin is Annotated:
        return _render(args[0])
    if origin is Literal:
        return " \\| ".join(str(a) for a in args)
    if origin in (Union, types.UnionType):
        # sorted: typing caches a Union by its set of members, so the order get_args returns depends on
        # which spelling was built first in the process (the README reference must not)
        return " or ".join(sorted(_render(a) for a in args if a is not type(None)))
    if origin is not None:
        return f"{getattr(origin, '__name__', str(origin))}[{', '.join(_render(a) for a in args)}]"
    return getattr(ann, "__name__", str(ann))


def _section(ann):
    """The config-section class behind an annotation (``X`` or ``Optional[X]``), or None."""
    origin = typing.get_origin(ann)
    if origin is not None and origin is not typing.Union and str(origin) != "<class 'types.UnionType'>":
        return None  # list[X], dict[...]: not a section
    args = [a for a in typing.get_args(ann) if a is not type(None)] if origin else [ann]
    return args[0] if len(args) == 1 and isinstance(args[0], type) and issubclass(args[0], BaseModel) else None


def _rows(model: type[BaseModel], prefix: str) -> list[str]:
    rows = []
    for name, field in model.model_fields.items():
        name = field.alias or name  # `from` (a Python keyword) is the field `from_`
        section = _section(field.annotation)
        if section is not None and prefix == "":
            continue  # a top-level section: listed on its own
        if section is not None:  # a nested section (train.early_stopping, distill.augment)
            rows += _rows(section, f"{prefix}{name}.")
            continue
        item = typing.get_args(field.annotation)[0] if typing.get_origin(field.annotation) is list else None
        rows.append(f"| `{prefix}{name}` | {_type(field)} | {_default(field)} | {field.description or ''} |")
        if isinstance(item, type) and issubclass(item, BaseModel) and item.__module__ == model.__module__:
            rows += _rows(item, f"{prefix}{name}[].")  # list items with fields of their own (distill.intermediate)
    return rows


def config_reference() -> str:
    lines = []
    sections: list[tuple[str, Any]] = [("", Config)] + [
        (f"{name}.", _section(field.annotation)) for name, field in Config.model_fields.items()
        if _section(field.annotation) is not None]
    lines += ["| key | type | default | meaning |", "|---|---|---|---|"]
    for prefix, model in sections:
        if prefix in ("model.", "loss."):
            continue
        lines += _rows(model, prefix)
    lines += ["| `model.name` | str | required | A registered model (below); its parameters sit beside `name`. |",
              "| `loss.name` | str | ce / bce | A registered loss (below); its parameters sit beside `name`. |"]
    return "\n".join(lines)


def components_reference() -> str:
    from textsift.registry import LOSSES, MODELS, TRICKS

    lines = []
    for registry, kind, prefix in ((MODELS, "model", "model."), (LOSSES, "loss", "loss."),
                                   (TRICKS, "trick", "train.tricks[].")):
        for name in registry.names():
            entry = registry.entry(name)
            lines += ["", f"**{kind} `{name}`** — {entry.summary}", "",
                      "| parameter | type | default | meaning |", "|---|---|---|---|"]
            for pname, field in (entry.params.model_fields.items() if entry.params else []):
                lines.append(f"| `{prefix}{pname}` | {_type(field)} | {_default(field)} | {field.description or ''} |")
    return "\n".join(lines).strip()


def reference() -> str:
    return config_reference() + "\n\n" + components_reference()


def pipeline_reference() -> str:
    """The pipeline config's keys (``textsift pipeline``): data, teacher, candidates, measure."""
    from textsift.config.pipeline import Candidate, MeasureSpec, PipelineConfig, TeacherSpec

    data = PipelineConfig.model_fields["data"].description
    return "\n".join(["| key | type | default | meaning |", "|---|---|---|---|",
                      f"| `data` | section | required | {data} The keys of a training config's `data`. |",
                      *_rows(TeacherSpec, "teacher."), *_rows(Candidate, "candidates[]."),
                      *_rows(MeasureSpec, "measure.")])


def presets_table() -> str:
    from textsift.config.load import PRESET_DIR, preset_names

    rows = []
    for name in preset_names():
        raw = yaml.safe_load((PRESET_DIR / f"{name}.yaml").read_text(encoding="utf-8"))
        first = (PRESET_DIR / f"{name}.yaml").read_text(encoding="utf-8").splitlines()[0].lstrip("# ")
        rows.append(f"| `{name}` | {first.split('. Run:')[0]} | `{raw['model']['name']}` |")
    return "\n".join(rows)


BLOCKS = {"config-reference": reference, "presets-table": presets_table, "pipeline-reference": pipeline_reference}


def render_readme(text: str) -> str:
    """Replace each ``<!-- NAME:start -->...<!-- NAME:end -->`` block with freshly generated content."""
    for name, make in BLOCKS.items():
        start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
        head, _, rest = text.partition(start)
        _, _, tail = rest.partition(end)
        text = f"{head}{start}\n{make()}\n{end}{tail}"
    return text


if __name__ == "__main__":
    import sys
    from pathlib import Path

    if sys.argv[1:2] == ["--write"]:
        path = Path(sys.argv[2] if len(sys.argv) > 2 else "README.md")
        path.write_text(render_readme(path.read_text(encoding="utf-8")), encoding="utf-8")
    else:
        print(reference())
