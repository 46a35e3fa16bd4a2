"""The markdown table and the per-dataset verdicts of the classic benchmark.

A row is a plain dict (the JSON the harness also saves): ``dataset``, ``system`` (``fasttext``,
``tfidf_svm`` or ``textsift``), ``label``, ``task``, ``eval_split``, ``metrics`` (fractions) or
``na`` (why not), ``train_s``, ``tune_s``, ``predict_s``, ``wall_s``, ``peak_mib``.
"""
from __future__ import annotations

from bench_data import primary_metric

PEERS = ("fasttext", "tfidf_svm")
SHORT = {"fasttext": "fastText", "tfidf_svm": "SVM"}
METRIC_NAME = {"accuracy": "acc", "micro_f1": "micro-F1", "macro_f1": "macro-F1"}
HEADER = ("| dataset | system | eval | main metric | macro-F1 | train s | predict s | wall s | peak MiB "
          "| textsift time ÷ peer: train (wall) | Δ vs better peer (pt) |\n"
          "|---|---|---|---|---:|---:|---:|---:|---:|---|---|")


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{100 * v:.2f}"


def _secs(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v:.2f}" if v < 10 else f"{v:.1f}"


def _ok(row: dict) -> bool:
    return row.get("metrics") is not None


def better_peer(rows: list[dict], dataset: str) -> dict | None:
    """The peer row with the higher primary metric on ``dataset`` (None when no peer has results)."""
    peers = [r for r in rows if r["dataset"] == dataset and r["system"] in PEERS and _ok(r)]
    return max(peers, key=lambda r: r["metrics"][primary_metric(r["task"])], default=None)


def best_textsift(rows: list[dict], dataset: str) -> dict | None:
    runs = [r for r in rows if r["dataset"] == dataset and r["system"] == "textsift" and _ok(r)]
    return max(runs, key=lambda r: r["metrics"][primary_metric(r["task"])], default=None)


def _times(a: float | None, b: float | None) -> str | None:
    if not a or not b:
        return None
    r = a / b
    return f"{r:.2f}×" if r < 10 else f"{r:.0f}×"


def time_ratios(ts: dict, rows: list[dict]) -> str:
    """textsift's time over each peer's: ``train_seconds`` over the peer's single fit (train s),
    then whole child process over whole child process (wall s, start-up and tuning included)."""
    parts = []
    for peer in PEERS:
        row = next((r for r in rows if r["dataset"] == ts["dataset"] and r["system"] == peer and _ok(r)), None)
        if row is None:
            continue
        train, wall = _times(ts.get("train_s"), row.get("train_s")), _times(ts.get("wall_s"), row.get("wall_s"))
        if train or wall:
            parts.append(f"{SHORT[peer]} {train or '—'} (wall {wall or '—'})")
    return ", ".join(parts) or "—"


def delta(ts: dict, rows: list[dict]) -> str:
    peer = better_peer(rows, ts["dataset"])
    if peer is None:
        return "—"
    main = primary_metric(ts["task"])
    d_main = 100 * (ts["metrics"][main] - peer["metrics"][main])
    d_macro = 100 * (ts["metrics"]["macro_f1"] - peer["metrics"]["macro_f1"])
    return f"{d_main:+.2f} {METRIC_NAME[main]}, {d_macro:+.2f} macro-F1 vs {SHORT[peer['system']]}"


def table_row(row: dict, rows: list[dict]) -> str:
    cells = [row["dataset"], row["label"], row.get("eval_split", "—")]
    if not _ok(row):
        cells += [f"n/a: {row.get('na') or 'no result'}", "—"]
    else:
        main = primary_metric(row["task"])
        cells += [f"{METRIC_NAME[main]} {_pct(row['metrics'][main])}", _pct(row["metrics"].get("macro_f1"))]
    train = _secs(row.get("train_s"))
    if row.get("tune_s") and row["tune_s"] >= 0.05:
        train += f" (+{_secs(row['tune_s'])} tune)"
    cells += [train, _secs(row.get("predict_s")), _secs(row.get("wall_s")),
              "—" if row.get("peak_mib") is None else f"{row['peak_mib']:.0f}"]
    if row["system"] == "textsift" and _ok(row):
        cells += [time_ratios(row, rows), delta(row, rows)]
    else:
        cells += ["", ""]
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


def make_table(rows: list[dict], datasets: list[str]) -> str:
    order = {"fasttext": 0, "tfidf_svm": 1, "textsift": 2}
    body = [table_row(r, rows) for ds in datasets
            for r in sorted((r for r in rows if r["dataset"] == ds), key=lambda r: order.get(r["system"], 3))]
    return "\n".join([HEADER, *body])


def verdicts(rows: list[dict], datasets: list[str]) -> list[str]:
    """One line per dataset: does textsift's best run reach the better of the two peers?"""
    lines = []
    for ds in datasets:
        peer, ts = better_peer(rows, ds), best_textsift(rows, ds)
        ts_rows = [r for r in rows if r["dataset"] == ds and r["system"] == "textsift"]
        if peer is None:
            lines.append(f"- {ds}: no peer result, no verdict")
            continue
        main = primary_metric(peer["task"])
        name = METRIC_NAME[main]
        peer_s = f"{peer['label']} {name} {_pct(peer['metrics'][main])}"
        if ts is None:
            why = f"n/a ({ts_rows[0].get('na')})" if ts_rows else "not run"
            lines.append(f"- {ds}: textsift {why}; better peer {peer_s}")
            continue
        d = 100 * (ts["metrics"][main] - peer["metrics"][main])
        verdict = "MEETS" if d >= 0 else "BELOW"
        lines.append(f"- {ds}: textsift best = {ts['label']} {name} {_pct(ts['metrics'][main])} vs better "
                     f"peer {peer_s} → {verdict} \"≥ the better of the two peers\" ({d:+.2f} pt)")
    return lines


def recipes(rows: list[dict]) -> list[str]:
    """What each row actually ran: the peers' recipe and chosen settings, textsift's command."""
    lines = []
    for r in rows:
        if r["system"] in PEERS and r.get("recipe"):
            chosen = ", ".join(f"{k}={v}" for k, v in (r.get("chosen") or {}).items())
            lines.append(f"- {r['dataset']} / {r['label']}: {r['recipe']}" + (f"; settings: {chosen}" if chosen else ""))
        elif r["system"] == "textsift" and r.get("command"):
            lines.append(f"- {r['dataset']} / {r['label']}: `{r['command']}`")
    return lines
