"""``data-report``: what is in a set of labelled files, and what is wrong with them.

``build_report`` returns a JSON-serialisable dict (for ``--json``); ``format_report`` renders it as text.
Empty texts are counted, not raised; other unreadable input still raises ``DataError``.
"""
from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from itertools import combinations
from typing import Any

from textsift.config.schema import DataConfig
from textsift.data.readers import RawSplit, interpret_labels, read_raw

PERCENTILES = (50, 90, 95, 99)
SHOWN = 5  # examples kept per finding
_FALLBACK = re.compile(r"[\u4e00-\u9fff]|[A-Za-z0-9]+|\S")


def _fallback_tokenize(text: str) -> list[str]:
    """Chinese per character, Latin/digit runs as words, any other symbol alone."""
    return _FALLBACK.findall(text)


def build_report(paths: list[str], cfg: DataConfig, tokenizer: Any = None, *, task: str | None = None) -> dict:
    """Analyse each file and the overlap between files.

    Args:
        paths: labelled files, train first (later files are compared with the first one's labels).
        cfg: the data section of the config.
        tokenizer: an object with ``.tokenize(text) -> list[str]``; None uses a regex fallback
            (Chinese per character, Latin runs as words).
        task: the task; inferred per file when None.
    Returns:
        ``{"tokenizer", "files": [...], "leakage": [...], "warnings": [...]}``, JSON-serialisable.
    Raises:
        DataError: a file cannot be read (missing, malformed records, missing fields...).
    """
    tokenize = tokenizer.tokenize if tokenizer is not None else _fallback_tokenize
    files, texts, warnings = [], [], []
    for path in paths:
        raw = read_raw(path, cfg)
        file_task = interpret_labels(raw, cfg, task) if raw.examples else task
        files.append(_file_report(str(path), raw, file_task, tokenize))
        first_line: dict[str, int] = {}
        for e in raw.examples:
            first_line.setdefault(e.text, e.line)
        texts.append(first_line)
    first_labels = {lab["label"] for lab in files[0]["labels"]} if files else set()
    for f in files[1:]:
        f["labels_not_in_first"] = sorted({lab["label"] for lab in f["labels"]} - first_labels)
    leakage = [_leak(paths[i], paths[j], texts[i], texts[j]) for i, j in combinations(range(len(paths)), 2)]
    warnings = _warnings(files, leakage)
    return {"tokenizer": "regex fallback" if tokenizer is None else type(tokenizer).__name__,
            "files": files, "leakage": leakage, "warnings": warnings}


def _file_report(path: str, raw: RawSplit, task: str | None, tokenize) -> dict:
    examples = raw.examples
    n = len(examples)
    counts = Counter(label for e in examples for label in e.labels)
    labels = [{"label": k, "count": c, "percent": round(100 * c / n, 2)} for k, c in
              sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    chars = [len(e.text) for e in examples]
    tokens = [len(tokenize(e.text)) for e in examples]
    report = {
        "path": path, "format": raw.format, "records": raw.records, "examples": n, "task": task,
        "num_labels": len(counts), "labels": labels,
        "empty_texts": {"count": len(raw.empty_lines), "lines": raw.empty_lines[:SHOWN]},
        **_duplicates(examples),
        "length_chars": _percentiles(chars), "length_tokens": _percentiles(tokens),
        "suggested_max_length": _round_up(_percentiles(tokens)["p95"], 8),
    }
    if task in ("multi_label", "hierarchical") and n:
        per = [len(e.labels) for e in examples]
        report["labels_per_example"] = {"mean": round(sum(per) / n, 2), "max": max(per),
                                        "none": sum(1 for k in per if k == 0)}
    return report


def _duplicates(examples) -> dict:
    """Texts that occur more than once; those whose copies disagree on labels are listed separately."""
    groups: dict[str, list] = defaultdict(list)
    for e in examples:
        groups[e.text].append(e)
    dups = [g for g in groups.values() if len(g) > 1]
    conflicts = [g for g in dups if len({tuple(sorted(e.labels)) for e in g}) > 1]
    return {
        "duplicates": {"count": sum(len(g) - 1 for g in dups), "texts": len(dups),
                       "examples": [{"text": _short(g[0].text), "copies": len(g), "lines": [e.line for e in g][:10]}
                                    for g in dups[:SHOWN]]},
        "conflicting_duplicates": {"count": len(conflicts),
                                   "examples": [{"text": _short(g[0].text),
                                                 "labels": [{"line": e.line, "labels": e.labels} for e in g][:10]}
                                                for g in conflicts[:SHOWN]]},
    }


def _leak(a: str, b: str, texts_a: dict[str, int], texts_b: dict[str, int]) -> dict:
    shared = [t for t in texts_a if t in texts_b]
    return {"a": str(a), "b": str(b), "shared": len(shared),
            "examples": [{"text": _short(t), "line_a": texts_a[t], "line_b": texts_b[t]} for t in shared[:SHOWN]]}


def _percentiles(values: list[int]) -> dict:
    if not values:
        return {**{f"p{q}": 0 for q in PERCENTILES}, "max": 0, "mean": 0.0}
    import numpy as np

    arr = np.asarray(values)
    out = {f"p{q}": int(math.ceil(np.percentile(arr, q))) for q in PERCENTILES}
    return {**out, "max": int(arr.max()), "mean": round(float(arr.mean()), 1)}


def _round_up(value: int, multiple: int) -> int:
    return max(multiple, int(math.ceil(value / multiple)) * multiple)


def _short(text: str, width: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _warnings(files: list[dict], leakage: list[dict]) -> list[str]:
    out = []
    for f in files:
        p, empty, conflicts = f["path"], f["empty_texts"], f["conflicting_duplicates"]["count"]
        if empty["count"]:
            out.append(f"{p}: {_plural(empty['count'], 'empty text')} (first at line {empty['lines'][0]}); "
                       "training fails on them unless data.empty_text=skip")
        if conflicts:
            out.append(f"{p}: copies of {_plural(conflicts, 'text')} carry different labels; fix or remove them")
        if f["examples"] and f["num_labels"] < 2:
            out.append(f"{p}: only {f['num_labels']} class; a classifier needs at least 2")
        counts = [lab["count"] for lab in f["labels"]]
        # (not for hierarchical labels: parents always outnumber their leaves)
        if f["task"] != "hierarchical" and len(counts) >= 2 and counts[0] >= 20 * counts[-1]:
            out.append(f"{p}: imbalanced labels ('{f['labels'][0]['label']}' {counts[0]} vs "
                       f"'{f['labels'][-1]['label']}' {counts[-1]}); consider a weighted or focal loss")
        if f.get("labels_not_in_first"):
            out.append(f"{p}: labels not in {files[0]['path']}: {', '.join(f['labels_not_in_first'][:10])}")
    tasks = {f["task"] for f in files if f["task"]}
    if len(tasks) > 1:
        out.append(f"files imply different tasks ({', '.join(sorted(tasks))}); set task: explicitly")
    for leak in leakage:
        if leak["shared"]:
            out.append(f"{leak['a']} and {leak['b']} share {_plural(leak['shared'], 'text')} (leakage: "
                       "scores on the second file are optimistic); remove them from one file")
    return out


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def format_report(report: dict) -> str:
    """Render ``build_report``'s dict as plain text, one section per file, then overlap and warnings."""
    lines = []
    for f in report["files"]:
        lines += _format_file(f)
    if report["leakage"]:
        lines.append("== shared texts between files ==")
        for leak in report["leakage"]:
            lines.append(f"{leak['a']} & {leak['b']}: {leak['shared']}")
            lines += [f"    line {x['line_a']} / {x['line_b']}: {x['text']}" for x in leak["examples"]]
        lines.append("")
    lines.append("warnings:" if report["warnings"] else "warnings: none")
    lines += [f"  - {w}" for w in report["warnings"]]
    return "\n".join(lines)


def _format_file(f: dict) -> list[str]:
    lines = [f"== {f['path']} ({f['format']}) ==",
             f"examples: {f['examples']}   task: {f['task']}   labels: {f['num_labels']}"]
    if "labels_per_example" in f:
        per = f["labels_per_example"]
        lines.append(f"labels per example: mean {per['mean']}, max {per['max']}, none {per['none']}")
    lines.append("label distribution:")
    width = max((len(lab["label"]) for lab in f["labels"][:30]), default=0)
    lines += [f"  {lab['label']:<{width}}  {lab['count']:>8}  {lab['percent']:6.2f}%" for lab in f["labels"][:30]]
    if len(f["labels"]) > 30:
        lines.append(f"  ... (+{len(f['labels']) - 30} more labels)")
    empty = f["empty_texts"]
    shown = ", ".join(map(str, empty["lines"])) + (", ..." if empty["count"] > len(empty["lines"]) else "")
    lines.append(f"empty texts: {empty['count']}" + (f" (lines {shown})" if empty["count"] else ""))
    d, c = f["duplicates"], f["conflicting_duplicates"]
    copies = f" (extra copies of {_plural(d['texts'], 'text')})" if d["count"] else ""
    lines.append(f"duplicate texts: {d['count']}{copies}")
    lines += [f"    x{x['copies']} (lines {', '.join(map(str, x['lines']))}): {x['text']}" for x in d["examples"]]
    lines.append(f"duplicates with conflicting labels: {c['count']}")
    for x in c["examples"]:
        lines.append(f"    {x['text']}: " + "; ".join(f"line {y['line']} {y['labels']}" for y in x["labels"]))
    for name, key in (("chars", "length_chars"), ("tokens", "length_tokens")):
        s = f[key]
        lines.append(f"length ({name}): " + "  ".join(f"{k} {s[k]}" for k in ("p50", "p90", "p95", "p99", "max")))
    lines.append(f"suggested train.max_length: {f['suggested_max_length']} (p95 of token lengths)")
    if f.get("labels_not_in_first"):
        lines.append(f"labels not in the first file: {', '.join(f['labels_not_in_first'][:20])}")
    return lines + [""]
