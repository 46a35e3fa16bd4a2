"""The pipeline's output: ``frontier.json``, ``frontier.md`` (a table with the Pareto-optimal candidates
marked), ``frontier.png`` (accuracy against p50 latency, log x axis, marker area ~ size on disk) and a
console summary that a person reads in ten seconds."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

COLUMNS = (("name", "candidate"), ("kind", "kind"), ("backend", "backend"), ("score", "test"),
           ("vs_teacher", "vs teacher"), ("p50_ms_b1", "p50 ms"), ("p95_ms_b1", "p95 ms"),
           ("texts_per_s_b32", "texts/s b32"), ("size_mb", "MB"), ("parameters", "params"))


def frontier_report(rows: list[dict], stages: dict, teacher_score: Optional[float], recommendation: dict) -> dict:
    """The frontier.json content: rows (with ``pareto`` and ``vs_teacher``), stages, recommendation."""
    from textsift.engines.frontier import pareto_flags

    rows = [dict(r) for r in rows]
    for row, flag in zip(rows, pareto_flags(rows)):
        row["pareto"] = flag
        row["vs_teacher"] = round(row["score"] / teacher_score, 4) if teacher_score else None
    return {"candidates": rows, "teacher_score": teacher_score, "stages": stages,
            "recommendation": recommendation}


def markdown(report: dict) -> str:
    rows = report["candidates"]
    lines = ["| | " + " | ".join(title for _, title in COLUMNS) + " |", "|---|" + "---|" * len(COLUMNS)]
    for r in sorted(rows, key=lambda r: r["p50_ms_b1"]):
        lines.append(f"| {'★' if r['pareto'] else ''} | " + " | ".join(_cell(key, r.get(key)) for key, _ in COLUMNS)
                     + " |")
    out = ["# Compression frontier", "", "★ = Pareto-optimal (no other candidate is at least as accurate, as fast "
           "and as small, and better on one of them). Latency: p50/p95 at batch 1; throughput at batch 32; "
           "measured on this machine in the same run.", "", *lines, ""]
    skipped = {n: s for n, s in report["stages"].items() if s["status"] in ("failed", "skipped")}
    if skipped:
        out += ["Not on the frontier:", ""] + [f"- {n}: {s['status']} ({s['reason']})" for n, s in skipped.items()] + [""]
    out += [f"**Recommendation:** {report['recommendation']['message']}", ""]
    return "\n".join(out)


def _cell(key: str, value) -> str:
    if value is None:
        return "-"
    if key == "score":
        return f"{100 * value:.2f}%"
    if key == "vs_teacher":
        return f"{100 * value:.1f}%"
    if key == "parameters":
        return f"{value / 1e6:.2f}M" if value >= 1e5 else f"{value:,}"
    return str(value)


def summary(report: dict, run_dir: Path) -> str:
    """A few lines: the frontier (fastest first), failures, the recommendation and where the files are."""
    rows = sorted(report["candidates"], key=lambda r: r["p50_ms_b1"])
    lines = [f"frontier of {len(rows)} candidates (★ = Pareto-optimal; test {rows[0]['metric'] if rows else ''}, "
             "p50 latency at batch 1, size on disk):"]
    width = max([len(r["name"]) for r in rows] + [9])
    for r in rows:
        vs = f" ({100 * r['vs_teacher']:.1f}% of teacher)" if r.get("vs_teacher") else ""
        lines.append(f"  {'★' if r['pareto'] else ' '} {r['name']:<{width}} {100 * r['score']:6.2f}%{vs:<22} "
                     f"{r['p50_ms_b1']:8.2f} ms {r['size_mb']:8.2f} MB  {r['backend']}")
    for name, s in report["stages"].items():
        if s["status"] in ("failed", "skipped"):
            lines.append(f"  ✗ {name}: {s['status']}: {s['reason']}")
    lines.append(f"recommendation: {report['recommendation']['message']}")
    lines.append(f"files: {run_dir}/frontier.md, frontier.json, frontier.png")
    return "\n".join(lines)


def write_frontier(report: dict, run_dir: Path) -> None:
    from textsift.rundir import write_json
    from textsift.engines.checkpoint import atomic_write

    run_dir = Path(run_dir)
    write_json(run_dir / "frontier.json", report)
    atomic_write(run_dir / "frontier.md", markdown(report))
    plot_frontier(report, run_dir / "frontier.png")


def plot_frontier(report: dict, path: Path) -> None:
    """Accuracy vs p50 latency (log x), marker area ~ size on disk, Pareto points filled and joined."""
    from textsift.reporting.plots import _new_figure

    rows = report["candidates"]
    fig = _new_figure((8, 5.5))
    ax = fig.add_subplot(1, 1, 1)
    ax.set_xscale("log")
    biggest = max([r["size_mb"] for r in rows] + [1e-9])
    for r in rows:
        area = 40 + 900 * r["size_mb"] / biggest
        ax.scatter([r["p50_ms_b1"]], [100 * r["score"]], s=area, alpha=0.75 if r["pareto"] else 0.35,
                   color="tab:blue" if r["pareto"] else "tab:gray", edgecolors="black", linewidths=0.6, zorder=3)
    envelope = _accuracy_envelope(rows)
    if len(envelope) > 1:  # the best accuracy reachable at each latency (the 2-D view of the frontier)
        ax.step([r["p50_ms_b1"] for r in envelope], [100 * r["score"] for r in envelope], where="post",
                color="tab:blue", linewidth=0.8, linestyle="--", zorder=2, label="best accuracy at this latency")
    budget = report["recommendation"]["budget"].get("max_latency_ms")
    if budget:
        ax.axvline(budget, color="tab:red", linewidth=0.8, linestyle=":", label=f"budget {budget:g} ms")
    if budget or len(envelope) > 1:
        ax.legend(loc="lower right", fontsize=8)
    ax.set_xlabel("p50 latency at batch 1 (ms, log scale)")
    ax.set_ylabel(f"test {rows[0]['metric'] if rows else 'accuracy'} (%)")
    ax.set_title("Candidates: filled = Pareto-optimal, marker area ~ size on disk")
    ax.grid(True, which="both", alpha=0.3)
    if rows:
        ax.margins(x=0.15, y=0.12)
        _place_labels(fig, ax, rows)
    fig.savefig(path, dpi=110)


def _accuracy_envelope(rows: list[dict]) -> list[dict]:
    """Rows, fastest first, each more accurate than every faster one."""
    out = []
    for r in sorted(rows, key=lambda r: (r["p50_ms_b1"], -r["score"])):
        if not out or r["score"] > out[-1]["score"]:
            out.append(r)
    return out


def _place_labels(fig, ax, rows: list[dict]) -> None:
    """Label each point, trying a few offsets and keeping the first that overlaps no label placed yet."""
    renderer = fig.canvas.get_renderer()
    placed = []
    offsets = [(8, 6), (8, -14), (-8, 6), (-8, -14), (10, 18), (10, -26), (-10, 18), (-10, -26), (14, 30)]
    for r in sorted(rows, key=lambda r: (r["p50_ms_b1"], -r["score"])):
        text = None
        for dx, dy in offsets:
            if text is not None:
                text.remove()
            text = ax.annotate(r["name"], (r["p50_ms_b1"], 100 * r["score"]), xytext=(dx, dy),
                               textcoords="offset points", fontsize=8, ha="left" if dx > 0 else "right",
                               arrowprops={"arrowstyle": "-", "color": "0.6", "linewidth": 0.5})
            box = text.get_window_extent(renderer)
            if not any(box.overlaps(other) for other in placed):
                break
        placed.append(text.get_window_extent(renderer))
