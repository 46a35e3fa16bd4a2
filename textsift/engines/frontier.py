"""The accuracy / latency / size frontier of measured candidates, and a recommendation for a budget.

A candidate is on the (Pareto) frontier when no other candidate is at least as good on all three axes —
test metric (higher is better), p50 latency at batch 1 and size on disk (lower is better) — and strictly
better on one. Candidates with identical values on all three axes do not dominate each other, so both
stay on the frontier.
"""
from __future__ import annotations

from typing import Optional, Sequence

from textsift.errors import TextsiftError

# (row key, +1 when higher is better, -1 when lower is better)
AXES = (("score", 1), ("p50_ms_b1", -1), ("size_mb", -1))


def dominates(a: dict, b: dict) -> bool:
    """``a`` is at least as good as ``b`` on every axis and strictly better on at least one."""
    better_or_equal = all(sign * a[key] >= sign * b[key] for key, sign in AXES)
    strictly = any(sign * a[key] > sign * b[key] for key, sign in AXES)
    return better_or_equal and strictly


def pareto_flags(rows: Sequence[dict]) -> list[bool]:
    """For each row, whether it is on the frontier (dominated by no other row)."""
    return [not any(dominates(other, row) for j, other in enumerate(rows) if j != i) for i, row in enumerate(rows)]


def recommend(rows: Sequence[dict], max_latency_ms: Optional[float] = None,
              min_score: Optional[float] = None) -> dict:
    """The best candidate for a budget: with ``max_latency_ms``, the most accurate one whose p50 latency
    fits (ties: faster, then smaller); with ``min_score`` only, the fastest one at or above the floor
    (ties: more accurate, then smaller); with both, the most accurate one meeting both.

    Returns ``{"choice": name or None, "message": str, "budget": {...}}``; the message says why nothing
    fits when nothing does (and what comes closest)."""
    if min_score is not None and not 0 <= min_score <= 1:
        raise TextsiftError(f"--min-accuracy: expected a fraction between 0 and 1 (0.9 = 90%), got {min_score}")
    if max_latency_ms is not None and max_latency_ms <= 0:
        raise TextsiftError(f"--max-latency-ms: expected a positive number of milliseconds, got {max_latency_ms}")
    budget = {"max_latency_ms": max_latency_ms, "min_accuracy": min_score}
    if max_latency_ms is None and min_score is None:
        return {"choice": None, "message": "no budget given (--max-latency-ms, --min-accuracy)", "budget": budget}
    if not rows:
        return {"choice": None, "message": "no candidate was measured", "budget": budget}
    fits = [r for r in rows if (max_latency_ms is None or r["p50_ms_b1"] <= max_latency_ms)
            and (min_score is None or r["score"] >= min_score)]
    wanted = " and ".join(w for w in (f"p50 <= {max_latency_ms:g} ms" if max_latency_ms is not None else "",
                                      f"accuracy >= {100 * min_score:.1f}%" if min_score is not None else "") if w)
    if not fits:
        fastest = min(rows, key=lambda r: r["p50_ms_b1"])
        best = max(rows, key=lambda r: r["score"])
        return {"choice": None, "budget": budget,
                "message": f"no candidate has {wanted}: the fastest is {fastest['name']} "
                           f"({fastest['p50_ms_b1']:g} ms, {100 * fastest['score']:.1f}%), the most accurate "
                           f"{best['name']} ({best['p50_ms_b1']:g} ms, {100 * best['score']:.1f}%)"}
    if max_latency_ms is not None:
        pick = min(fits, key=lambda r: (-r["score"], r["p50_ms_b1"], r["size_mb"]))
        why = "the most accurate"
    else:
        pick = min(fits, key=lambda r: (r["p50_ms_b1"], -r["score"], r["size_mb"]))
        why = "the fastest"
    return {"choice": pick["name"], "budget": budget,
            "message": f"{pick['name']}: {why} with {wanted} ({100 * pick['score']:.2f}% {pick.get('metric', '')}"
                       f", p50 {pick['p50_ms_b1']:g} ms, {pick['size_mb']:g} MB)".replace(" ,", ",")}
