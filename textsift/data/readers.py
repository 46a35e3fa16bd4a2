"""Reading labelled text files (JSON Lines, CSV, TSV) into ``Example`` records.

Every problem a user can cause is a one-line ``DataError`` that says what was expected, what was
found, the file and line, and how to fix it (``train.jsonl:1042: expected a "label" field, ...``).

Files are read as UTF-8 (a BOM is allowed) line by line in binary mode, so a bad byte is reported with
its line, and only ``\\n`` ends a JSON line (U+2028 inside a JSON string is text, not a line break).
"""
from __future__ import annotations

import csv
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from textsift.config.schema import DataConfig
from textsift.errors import DataError
from textsift.registry import did_you_mean

log = logging.getLogger("textsift")

TASKS = ("single_label", "multi_label", "hierarchical")
EXTENSIONS = {".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv", ".tsv": "tsv"}
_JSON = json.JSONDecoder()


@dataclass
class Example:
    """One record: stripped text, its labels as strings, and where it came from."""

    text: str
    labels: list[str]  # single-label: exactly one; multi/hierarchical: any number (with ancestors); [] if unlabelled
    line: int  # 1-based line where the record starts
    source: str  # file path as given


# ----------------------------------------------------------------------------------------- files

def check_file(path: str | os.PathLike) -> Path:
    """Return ``path`` as a ``Path``; raise a ``DataError`` if it is missing or a directory."""
    p = Path(path)
    if p.is_dir():
        inside = sorted(c.name for c in p.iterdir() if c.suffix.lower() in EXTENSIONS or c.suffix == ".txt")
        found = f" containing {preview(inside, 6)}" if inside else ""
        raise DataError(f"expected a data file, found a directory{found}; give the path of one file in it", str(path))
    if not p.exists():
        parent = p.parent
        if parent.is_dir():
            hint = did_you_mean(p.name, sorted(c.name for c in parent.iterdir()))
        else:
            hint = f"; directory '{parent}' does not exist"
        raise DataError(f"file not found{hint}; check the path (relative paths start from {os.getcwd()})",
                        str(path))
    return p


def detect_format(path: str | os.PathLike, cfg: DataConfig, *, allow_txt: bool = False) -> str:
    """``cfg.format`` when set, else by extension: jsonl (.jsonl/.json), csv, tsv (and txt if allowed)."""
    if cfg.format != "auto":
        return cfg.format
    ext = Path(path).suffix.lower()
    if ext in EXTENSIONS:
        return EXTENSIONS[ext]
    if allow_txt and ext == ".txt":
        return "txt"
    supported = ".jsonl, .json, .csv, .tsv" + (", .txt (one text per line)" if allow_txt else "")
    found = "no extension" if not ext else f"'{ext}'"
    txt = "; a .txt file has no labels, so it only works as prediction input" if ext == ".txt" else ""
    raise DataError(f"cannot tell the file format: expected one of {supported}, found {found}{txt}; "
                    "rename the file or set data.format to jsonl, csv or tsv", str(path))


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, decoded line) — bytes that are not UTF-8 raise with their line."""
    try:
        f = open(path, "rb")
    except OSError as e:
        raise DataError(f"expected a readable file, found an error opening it ({e.strerror}); check its permissions",
                        str(path)) from None
    with f:
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataError(_not_utf8(raw, e), str(path), lineno) from None
            if lineno == 1 and line.startswith("\ufeff"):
                line = line[1:]
            yield lineno, line


def _not_utf8(raw: bytes, e: UnicodeDecodeError) -> str:
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "expected UTF-8 text, found a UTF-16 file; convert it: `iconv -f UTF-16 -t UTF-8 in > out`"
    return (f"expected UTF-8 text, found byte 0x{raw[e.start]:02x} (byte {e.start + 1} of the line), which is not "
            "valid UTF-8; convert the file from its real encoding, e.g. `iconv -f GBK -t UTF-8 in > out`")


# ----------------------------------------------------------------------------------------- records

def _jsonl_records(path: Path) -> Iterator[tuple[int, dict]]:
    first, decode = True, _JSON.raw_decode  # raw_decode skips json.loads' wrapper layers (hot loop)
    for lineno, line in _lines(path):
        s = line.strip()
        if not s:
            continue
        try:
            obj, end = decode(s)
            if end != len(s):
                json.loads(s)  # trailing data: let json word the error
        except json.JSONDecodeError as e:
            hint = _json_shape_hint(s) if first else ""
            raise DataError(f"invalid JSON ({e.msg} at column {e.colno}); expected one JSON object per line"
                            f"{hint}; fix or remove this line", str(path), lineno) from None
        if not isinstance(obj, dict):
            hint = _json_shape_hint(s) if first else ""
            raise DataError(f'expected a JSON object like {{"text": ..., "label": ...}}, found {_kind(obj)}'
                            f"{hint}; write one object per line", str(path), lineno)
        first = False
        yield lineno, obj


def _json_shape_hint(s: str) -> str:
    if s.startswith("["):
        return (" (this looks like a JSON array; textsift reads JSON Lines: convert with "
                "`jq -c '.[]' in.json > out.jsonl`)")
    if s == "{":
        return " (this looks like pretty-printed JSON; put each object on one line: `jq -c . in > out.jsonl`)"
    return ""


def _csv_records(path: Path, fmt: str, on_header: Callable[[list[str], int], None]) -> Iterator[tuple[int, dict]]:
    """Rows as dicts keyed by the header; the line is where the record starts (quoted newlines span lines)."""
    # Long documents exceed the csv module's 128 KiB default field limit.
    csv.field_size_limit(max(csv.field_size_limit(), 1 << 27))
    # TSV is read without quoting (as GLUE's .tsv files are written): quote characters are plain text.
    options = {"delimiter": "\t", "quoting": csv.QUOTE_NONE} if fmt == "tsv" else {}
    fix = ("replace tab characters inside texts with spaces" if fmt == "tsv"
           else 'quote fields that contain commas, quotes or newlines ("a, b" and "say ""hi""")')
    reader = csv.reader((line for _, line in _lines(path)), **options)
    header: list[str] | None = None
    end = 0
    try:
        for row in reader:
            start, end = end + 1, reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # blank line
            if header is None:
                header = [c.strip() for c in row]
                on_header(header, start)
                continue
            if len(row) != len(header):
                quote = " (a quote opened on this line is never closed)" if reader.line_num > start else ""
                raise DataError(f"expected {len(header)} columns as in the header ({', '.join(header)}), "
                                f"found {len(row)}{quote}; {fix}", str(path), start)
            yield start, dict(zip(header, row))
    except csv.Error as e:
        raise DataError(f"malformed {fmt.upper()} record ({e}); {fix}", str(path), end + 1) from None


def _records(path: Path, fmt: str, on_header: Callable[[list[str], int], None]) -> Iterator[tuple[int, dict]]:
    """(line, record) pairs; for CSV/TSV, ``on_header(columns, line)`` is called with the header first."""
    return _jsonl_records(path) if fmt == "jsonl" else _csv_records(path, fmt, on_header)


# ----------------------------------------------------------------------------------------- fields

class _Fields:
    """Finds the text and the raw label in a record, raising helpful errors for missing fields."""

    def __init__(self, cfg: DataConfig, path: Path, require_labels: bool):
        self.text_fields = [cfg.text_field] if isinstance(cfg.text_field, str) else list(cfg.text_field)
        self.label_field, self.joiner = cfg.label_field, cfg.text_joiner
        self.path, self.require_labels = str(path), require_labels

    def check_header(self, columns: list[str], line: int) -> None:
        """CSV/TSV: check the columns once, at the header line."""
        self.text(dict.fromkeys(columns, "x"), line)
        self.label_name(dict.fromkeys(columns), line)

    def check_text_header(self, columns: list[str], line: int) -> None:
        self.text(dict.fromkeys(columns, "x"), line)

    def text(self, rec: dict, line: int) -> str:
        if len(self.text_fields) == 1:  # fast path for the common case
            value = rec.get(self.text_fields[0])
            if type(value) is str:
                return value.strip()
        parts = []
        for name in self.text_fields:
            if name not in rec:
                raise DataError(f'expected a "{name}" field, found {_keys(rec)}{did_you_mean(name, list(rec))}; '
                                "set data.text_field to the field that holds the text", self.path, line)
            value = rec[name]
            if isinstance(value, (list, dict)):
                raise DataError(f'expected "{name}" to be a string, found {_kind(value)}; '
                                "set data.text_field to a field that holds plain text", self.path, line)
            value = "" if value is None else str(value).strip()
            if value:
                parts.append(value)
        return self.joiner.join(parts)

    def label_name(self, rec: dict, line: int) -> str | None:
        name = self.label_field or ("label" if "label" in rec else "labels")
        if name in rec or not self.require_labels:
            return name if name in rec else None
        wanted = f'"{name}"' if self.label_field else '"label" or "labels"'
        raise DataError(f"expected a {wanted} field, found {_keys(rec)}{did_you_mean(name, list(rec))}; "
                        "set data.label_field to the field that holds the labels", self.path, line)


# ----------------------------------------------------------------------------------------- labels

def parse_labels(raw: Any, task: str, cfg: DataConfig, where: tuple[str, int], *, required: bool = True) -> list[str]:
    """Labels of one record as strings for ``task`` (ancestors added for hierarchical).

    A list gives several labels; under multi_label/hierarchical a string is split on
    ``cfg.label_delimiter``; numbers become strings. Raises ``DataError`` for an empty single label or
    several labels under single_label.
    """
    if task == "single_label" and type(raw) is str and (label := raw.strip()):
        return [label]  # fast path for the common case
    if isinstance(raw, dict):
        raise DataError("expected the label to be a string, a number or a list, found an object; "
                        "set data.label_field to the field that holds the labels", *where)
    if isinstance(raw, list):
        items = raw
    elif raw is None:
        items = []
    elif task != "single_label" and isinstance(raw, str):
        items = raw.split(cfg.label_delimiter)
    else:
        items = [raw]
    labels: dict[str, None] = {}  # ordered set
    for item in items:
        if isinstance(item, (list, dict)):
            raise DataError(f"expected each label to be a string or a number, found {_kind(item)} in the list; "
                            "flatten the labels into one list of strings", *where)
        if item is not None and (text := _label_str(item).strip()):
            labels[text] = None
    out = list(labels)
    if task == "single_label":
        if len(out) > 1:
            raise DataError(f"expected one label for task single_label, found {len(out)} ({preview(out, 5)}); "
                            "set task: multi_label if a text can have several labels", *where)
        if not out and required:
            raise DataError(f"expected a label, found {'null' if raw is None else repr(raw)} (an empty label); "
                            "fill in the label or remove this record", *where)
    elif task == "hierarchical" and not cfg.hierarchy:  # with an edges file, the file defines the ancestors
        out = with_ancestors(out, cfg.hierarchy_separator, where)
    return out


def with_ancestors(labels: list[str], sep: str, where: tuple[str, int] | None = None) -> list[str]:
    """``["A/B/C"]`` → ``["A", "A/B", "A/B/C"]`` (order kept, duplicates dropped)."""
    out: dict[str, None] = {}
    for label in labels:
        parts = [p.strip() for p in label.split(sep)]
        if not all(parts):
            raise DataError(f"expected a label path like 'A{sep}B', found '{label}' with an empty part; "
                            f"remove the stray '{sep}' (data.hierarchy_separator is '{sep}')",
                            *(where or (None, None)))
        for i in range(1, len(parts) + 1):
            out[sep.join(parts[:i])] = None
    return list(out)


def _label_str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # 1.0 from a pandas export is the class "1"
    return str(value)


def infer_task(examples: list[Example], raw_multi: bool, cfg: DataConfig) -> str:
    """The task the labels imply.

    Args:
        examples: examples whose labels were parsed as multi-label when ``raw_multi``, else single-label.
        raw_multi: whether any record gave its labels as a list.
        cfg: the data config (``hierarchy_separator``, ``label_delimiter``).
    Returns:
        ``"single_label"`` when no label is a list; ``"hierarchical"`` when list labels contain paths
        (``A/B``) whose ancestors are labels too; else ``"multi_label"``.
    """
    names = {label for e in examples for label in e.labels}
    if not raw_multi:
        _hint_delimited(names, cfg, examples[0].source if examples else "")
        return "single_label"
    sep = cfg.hierarchy_separator
    paths = sorted(n for n in names if sep in n)
    orphans = [p for p in paths if not set(with_ancestors([p], sep)[:-1]) <= names]
    if paths and not orphans:
        return "hierarchical"
    if orphans and len(paths) * 2 >= len(names):  # mostly paths: probably a hierarchy given by its leaves
        log.warning("%s: labels look like paths ('%s') but their ancestors are not labels; treating them as "
                    "flat multi-label; set task: hierarchical to use them as a hierarchy",
                    examples[0].source, orphans[0])
    return "multi_label"


def _hint_delimited(names: set[str], cfg: DataConfig, source: str) -> None:
    d = cfg.label_delimiter
    joined = sorted(n for n in names if d in n and all(p.strip() in names for p in n.split(d)))
    if joined:
        log.warning("%s: label '%s' looks like several labels joined by '%s'; set task: multi_label if a text "
                    "can have several labels", source, joined[0], d)


# ----------------------------------------------------------------------------------------- reading

@dataclass
class RawSplit:
    """What one pass over a file gives, before labels are interpreted for a task."""

    examples: list[Example]
    raw_labels: list[Any]
    empty_lines: list[int] = field(default_factory=list)  # records skipped for an empty text
    records: int = 0  # records read, including the skipped ones
    format: str = "jsonl"

    @property
    def raw_multi(self) -> bool:
        return any(isinstance(r, list) for r in self.raw_labels)


def read_raw(path: str | os.PathLike, cfg: DataConfig, *, require_labels: bool = True,
             limit: int | None = None) -> RawSplit:
    """One pass over a file: texts and raw labels; empty texts are skipped and their lines collected.

    Raises ``DataError`` for a missing/unreadable file, bad records, missing fields or zero records.
    """
    fmt, records = iter_records(path, cfg, require_labels=require_labels)
    source = str(path)
    out = RawSplit([], [], format=fmt)
    for line, text, raw_label in records:
        out.records += 1
        if not text:
            out.empty_lines.append(line)
            continue
        out.examples.append(Example(text, [], line, source))
        out.raw_labels.append(raw_label)
        if limit is not None and len(out.examples) >= limit:
            break
    if out.records == 0:
        raise no_records_error(path, fmt)
    return out


def iter_records(path: str | os.PathLike, cfg: DataConfig, *, require_labels: bool = True
                 ) -> tuple[str, Iterator[tuple[int, str, Any]]]:
    """The file's format and a lazy stream of ``(line, stripped text, raw label)``, one record at a time
    (constant memory: ``read_raw`` and the streaming training reader both use it).

    The path is checked now; record and field errors are raised while iterating, with file and line."""
    p = check_file(path)
    fmt = detect_format(p, cfg)
    fields = _Fields(cfg, p, require_labels)

    def records() -> Iterator[tuple[int, str, Any]]:
        for line, rec in _records(p, fmt, fields.check_header):
            text = fields.text(rec, line)
            label_name = fields.label_name(rec, line)
            yield line, text, rec[label_name] if label_name else None
    return fmt, records()


def no_records_error(path: str | os.PathLike, fmt: str) -> DataError:
    what = "only a header row" if fmt != "jsonl" and Path(path).stat().st_size else "an empty file (0 records)"
    return DataError(f"expected labelled records, found {what}; check that the right file is given", str(path))


def load_split(path: str | os.PathLike, cfg: DataConfig, task: str | None = None, require_labels: bool = True,
               *, limit: int | None = None) -> tuple[list[Example], str]:
    """Read a labelled file and interpret its labels.

    Args:
        path: a .jsonl/.json, .csv or .tsv file (``cfg.format`` overrides the extension).
        cfg: the data section of the config.
        task: ``single_label``, ``multi_label`` or ``hierarchical``; inferred from the labels when None.
        require_labels: when False, records without a label field get ``labels=[]``.
        limit: keep only the first N examples (``data.limit``, for quick runs on train).
    Returns:
        (examples, task).
    Raises:
        DataError: with file and line, for every problem in the file (see the module docstring).
    """
    if task is not None and task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    raw = read_raw(path, cfg, require_labels=require_labels, limit=limit)
    _handle_empty(raw, cfg, str(path))
    return raw.examples, interpret_labels(raw, cfg, task, require_labels=require_labels)


def read_examples(path: str | os.PathLike, cfg: DataConfig, *, task: str | None = None,
                  require_labels: bool = True, limit: int | None = None) -> list[Example]:
    """Like ``load_split`` but returns only the examples."""
    return load_split(path, cfg, task, require_labels, limit=limit)[0]


def interpret_labels(raw: RawSplit, cfg: DataConfig, task: str | None, *, require_labels: bool = True) -> str:
    """Set each example's labels for ``task`` (inferred when None) and return the task."""
    if task is None:
        # Lists are parsed as multi-label first; only then can paths and their ancestors be looked at.
        _assign(raw, "multi_label" if raw.raw_multi else "single_label", cfg, require_labels)
        task = infer_task(raw.examples, raw.raw_multi, cfg)
        if task == "hierarchical":
            for e in raw.examples:
                e.labels = with_ancestors(e.labels, cfg.hierarchy_separator, (e.source, e.line))
    else:
        _assign(raw, task, cfg, require_labels)
    return task


def _assign(raw: RawSplit, task: str, cfg: DataConfig, require_labels: bool) -> None:
    for e, r in zip(raw.examples, raw.raw_labels):
        e.labels = parse_labels(r, task, cfg, (e.source, e.line), required=require_labels)


def _handle_empty(raw: RawSplit, cfg: DataConfig, path: str) -> None:
    lines = raw.empty_lines
    if not lines:
        return
    n = len(lines)
    if cfg.empty_text == "error":
        count = f" ({n} of {raw.records} records have an empty text, the first on this line)" if n > 1 else ""
        raise DataError(f"expected a non-empty text, found an empty one{count}; remove {'them' if n > 1 else 'it'} "
                        "or set data.empty_text=skip to drop them", path, lines[0])
    if not raw.examples:
        raise DataError(f"expected some non-empty texts, found only empty ones ({n} records); check data.text_field",
                        path)
    log.warning("%s: skipped %d record%s with an empty text (first at line %d; data.empty_text=skip)",
                path, n, "s" if n > 1 else "", lines[0])


def iter_texts(path: str | os.PathLike, cfg: DataConfig) -> Iterator[tuple[int, str]]:
    """Stream ``(line, text)`` pairs of a prediction input, without reading labels.

    Accepts the data formats and a plain ``.txt`` file (one text per line; blank lines are skipped).
    Empty texts in JSONL/CSV records are yielded as ``""`` so that outputs stay aligned with records.
    The path is checked now; record errors are raised while iterating.
    """
    p = check_file(path)
    fmt = detect_format(p, cfg, allow_txt=True)
    return _stream_texts(p, fmt, cfg, str(path))


def _stream_texts(p: Path, fmt: str, cfg: DataConfig, source: str) -> Iterator[tuple[int, str]]:
    count = 0
    if fmt == "txt":
        for line, text in _lines(p):
            if text.strip():
                count += 1
                yield line, text.strip()
    else:
        fields = _Fields(cfg, p, require_labels=False)
        for line, rec in _records(p, fmt, fields.check_text_header):
            count += 1
            yield line, fields.text(rec, line)
    if count == 0:
        raise DataError("expected texts to predict, found no records (the file is empty)", source)


# ----------------------------------------------------------------------------------------- helpers

def _kind(value: Any) -> str:
    if value is None:
        return "null"
    for types, name in ((bool, "a boolean"), (str, "a string"), ((int, float), "a number"), (list, "a list")):
        if isinstance(value, types):
            return name
    return "an object"


def _keys(rec: dict) -> str:
    names = [json.dumps(k, ensure_ascii=False) for k in rec]
    return f"keys [{preview(names, 12)}]" if names else "no keys"


def preview(items: list[str], n: int) -> str:
    """``a, b, c, ... (+7 more)``."""
    items = list(items)
    head = ", ".join(str(i) for i in items[:n])
    return head + (f", ... (+{len(items) - n} more)" if len(items) > n else "")
