"""Means from a per-image table, and claimed means against found ones: what submit and verify check.

A report's means come from its per-image table (``eval/report.py``'s ``_mean``: finite
values only, non-finite ones counted); recomputing them here with the same function is
how a table that was edited after scoring, or a mean edited in the record, shows up.
"""

from __future__ import annotations

import hashlib
import math

from ..eval.report import _mean  # the one definition of a mean as reports store it


def output_hashes(preds) -> dict[str, str]:
    """sha256 of every output's bytes as submitted, by id (``eval.predictions.Predictions``)."""
    return {pair_id: hashlib.sha256(preds.read(pair_id)).hexdigest() for pair_id in sorted(preds.names)}


def table_means(path: str, metrics: list[str]) -> tuple[dict, dict, list[str]]:
    """``overall``, ``per_category`` and the ids, recomputed from a per-image Parquet table."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    missing = [m for m in ["id", "category", *metrics] if m not in table.column_names]
    if missing:
        raise ValueError(f"no column {', '.join(missing)}")
    rows = table.select(["id", "category", *metrics]).to_pylist()
    values = {m: [math.nan if r[m] is None else r[m] for r in rows] for m in metrics}
    cats = list(dict.fromkeys(r["category"] for r in rows))
    per_cat = {c: {m: _mean([v for v, r in zip(values[m], rows) if r["category"] == c]) for m in metrics}
               for c in cats}
    return {m: _mean(values[m]) for m in metrics}, per_cat, [r["id"] for r in rows]


def differences(claimed: tuple[dict, dict], found: tuple[dict, dict], tolerance: dict[str, float]) -> list[dict]:
    """Each mean or count of ``claimed`` (overall, per_category) that ``found`` does not match.

    A mean differs when ``|claimed - found| > tolerance[metric]``; counts (n, nonfinite) and
    a mean present on one side only always differ. Categories or metrics missing on either
    side are listed too.
    """
    out = []
    places = [("overall", claimed[0], found[0])]
    cats = list(dict.fromkeys([*claimed[1], *found[1]]))
    places += [(f"per_category.{c}", claimed[1].get(c, {}), found[1].get(c, {})) for c in cats]
    for where, want, got in places:
        for metric in dict.fromkeys([*want, *got]):
            a, b = want.get(metric), got.get(metric)
            tol = tolerance.get(metric, 0.0)
            if a is None or b is None:
                out.append({"where": where, "metric": metric, "claimed": a and a.get("mean"),
                            "found": b and b.get("mean"), "diff": None, "tolerance": tol})
                continue
            diff = None if a["mean"] is None or b["mean"] is None else abs(a["mean"] - b["mean"])
            counts = any(a.get(k) != b.get(k) for k in ("n", "nonfinite"))
            if counts or (diff is None and a["mean"] != b["mean"]) or (diff is not None and diff > tol):
                out.append({"where": where, "metric": metric, "claimed": a["mean"], "found": b["mean"],
                            "diff": diff, "tolerance": tol,
                            **({"counts": {k: [a.get(k), b.get(k)] for k in ("n", "nonfinite")}} if counts else {})})
    return out
