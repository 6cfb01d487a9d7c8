"""``ggt synth compare``: several backends and prompters on one probe set, ranked.

As the paper compared nine models before choosing one: every (backend, prompter)
combination runs the full pipeline on PROBE_DIR into ``OUT/<backend>-<prompter>/``
(its own journal, so a rerun reuses every paid answer), with QC scoring every stage
(``stop_at_fail`` off, no review queue). The table ranks them by the evaluation
suite's no-reference quality of the targets and its gain over the LQ, fidelity
(structure, colour drift), the judge's scores when a judge runs, and the share QC
accepted: each column is ranked in its metric's direction, and the mean rank orders
the table.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace

from ..atomic import write_json, write_text
from ..errors import GGTError
from ..eval.metric_facts import FACTS
from .engine import SynthConfig, synthesize
from .journal import Journal
from .out_raw import STATE_DIR

# quality_hq goes the way of the metric the run used; every other column the way eval/metric_facts.py says
COLUMNS = ("quality_hq", "quality_gain", "fidelity_structure", "fidelity_colour_drift", "judge_removal",
           "judge_fidelity", "accepted")


def _scores(out_raw: str) -> dict[str, float | str]:
    journal = Journal(os.path.join(out_raw, STATE_DIR, "journal.sqlite"))
    try:
        sums: dict[str, list[float]] = {}
        n = accepted = 0
        for row in journal.rows(("accepted", "rejected", "review")):
            n += 1
            accepted += row["state"] == "accepted"
            for stage in json.loads(row["qc"] or "[]"):
                for name, value in stage["scores"].items():
                    sums.setdefault(f"{stage['stage']}_{name}", []).append(float(value))
    finally:
        journal.close()
    means = {k: sum(v) / len(v) for k, v in sums.items() if v}
    out: dict[str, float | str] = {"pairs": n, "accepted": accepted / n if n else 0.0}
    for key, value in means.items():
        if key.startswith("quality_") and key.endswith("_hq"):
            out["quality_hq"], out["quality_metric"] = value, key[len("quality_"):-len("_hq")]
        elif key in COLUMNS:
            out[key] = value
    return out


def rank(rows: list[dict], quality_higher: bool) -> list[dict]:
    """Mean rank over the columns every row has, each in its metric's direction (1 = best)."""
    cols = [c for c in COLUMNS if all(c in r for r in rows)]
    for row in rows:
        row["ranks"] = {}
    for col in cols:
        higher = quality_higher if col == "quality_hq" else FACTS[col].higher_is_better
        order = sorted(rows, key=lambda r: -r[col] if higher else r[col])
        for i, row in enumerate(order, 1):
            row["ranks"][col] = i
    for row in rows:
        row["mean_rank"] = sum(row["ranks"].values()) / len(cols) if cols else 0.0
    return sorted(rows, key=lambda r: (r["mean_rank"], r["name"]))


def compare(probe_dir: str, out: str, *, backends: list[str], prompters: list[str],
            base: SynthConfig | None = None, progress: bool = False) -> str:
    """Run every combination on ``probe_dir`` into ``out``; returns the ranked table (also compare.md)."""
    if not backends or not prompters:
        raise GGTError("compare needs at least one backend and one prompter")
    base = base or SynthConfig()
    qc = replace(base.qc.with_review("none"), stop_at_fail=False)
    rows, quality = [], None
    for backend in backends:
        for prompter in prompters:
            name = f"{backend}-{prompter}"
            cfg = replace(base, backend=backend, prompter=prompter, qc=qc, model=None if len(backends) > 1 else base.model)
            report = synthesize(probe_dir, os.path.join(out, name), cfg, progress=progress)
            row = {"name": name, "backend": backend, "prompter": prompter, "spent": report["spent"],
                   "currency": report["currency"], **_scores(os.path.join(out, name))}
            quality = quality or report.get("quality_metric")
            rows.append(row)
    ranked = rank(rows, quality_higher=(quality or {}).get("better", "higher") == "higher")
    write_json(os.path.join(out, "compare.json"), {"quality_metric": quality, "rows": ranked})
    table = _table(ranked, quality)
    write_text(os.path.join(out, "compare.md"), table + "\n")
    return table


def _table(rows: list[dict], quality: dict | None) -> str:
    cols = [c for c in COLUMNS if all(c in r for r in rows)]
    metric = (quality or {}).get("used", "?")
    head = ["rank", "backend-prompter", *(f"{c} ({metric}, {quality['better']} better)" if c == "quality_hq"
                                           and quality else c for c in cols), "spent"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for i, r in enumerate(rows, 1):
        cells = [str(i), r["name"], *(f"{r[c]:.4g}" for c in cols), f"{r['spent']:g} {r['currency']}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
