"""The judge's part of a report: its per-image columns, summary.json's ``judge`` section, report.md's table.

D, F and DF are means over the images the judge scored (higher is better). An image it
could not score is named with why: ``refused`` (the VLM declined), ``malformed`` (its answer
had no readable D or F in 0-100), ``failed`` (an error after retries), ``unjudged`` (the
run stopped first: the budget, or the provider failing). Any unjudged image makes the judge's
part PARTIAL; the report's other metrics are not affected.
"""

from __future__ import annotations

from collections import Counter

from .summary import category_order, mean_entry

SCORES = ("judge_d", "judge_f", "judge_df")
TEXTS = ("judge_status", "judge_note")
LABELS = {"judge_d": "D", "judge_f": "F", "judge_df": "DF"}
NOT_SCORED = ("refused", "malformed", "failed", "unjudged")


def section(described: dict, outcome, rows: list[dict], budget: float | None) -> dict:
    """summary.json's ``judge``; ``rows`` already carry the judge's columns."""
    cats = category_order(rows)
    counts = Counter(r["judge_status"] for r in rows)
    return {**described, "models_answered": sorted(outcome.models),
            "partial": counts["ok"] < len(rows), "stop_reason": outcome.stop_reason,
            "counts": {k: counts[k] for k in ("ok", *NOT_SCORED)},
            "spent": outcome.spent, "currency": "USD", "budget": budget, "requests_sent": outcome.sent,
            "overall": _means(rows), "per_category": {c: _means([r for r in rows if r["category"] == c]) for c in cats},
            "not_scored": [{"id": r["id"], "status": r["judge_status"], "note": r["judge_note"]}
                           for r in rows if r["judge_status"] != "ok"]}


def fingerprint(judge: dict) -> dict:
    """What the report's fingerprint records: provider, model as answered, prompt name and sha256."""
    keys = ("provider", "model_requested", "prompt", "prompt_sha256", "prompt_files")
    return {"model": ", ".join(judge["models_answered"]) or None, **{k: judge[k] for k in keys}}


def _means(rows: list[dict]) -> dict:
    return {n: mean_entry([r[n] for r in rows if r[n] is not None]) for n in SCORES}


def markdown(judge: dict, cell) -> list[str]:
    """report.md's lines for the judge; ``cell`` formats a mean as the other tables do."""
    c = judge["counts"]
    total = sum(c.values())
    lines = ["## VLM judge: D, F and DF = sqrt(D·F), 0-100, higher is better", ""]
    if judge["partial"]:
        why = [f"{c[k]} {k}" for k in NOT_SCORED if c[k]]
        stop = f" The run stopped: {judge['stop_reason']}." if judge["stop_reason"] else ""
        lines += [(f"> **PARTIAL** (judge columns only): {c['ok']} of {total} images scored by the judge "
                   f"({', '.join(why)}; named below).{stop} Run the same command again (with a higher "
                   "--judge-budget if it stopped there) to judge the rest: answers already paid for are "
                   "reused. The other metrics are complete."), ""]
    head = ["category", "judged"] + [f"{LABELS[n]} ↑" for n in SCORES]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for cat, means in [*judge["per_category"].items(), ("**overall**", judge["overall"])]:
        lines.append("| " + " | ".join([cat, str(means["judge_d"]["n"])] + [cell(means[n]) for n in SCORES]) + " |")
    lines += ["", (f"Judge: {judge['provider']} `{', '.join(judge['models_answered']) or judge['model_requested']}`, "
                   f"prompt `{judge['prompt']}` (sha256 `{judge['prompt_sha256'][:16]}`); it sees the input and the "
                   f"prediction, not the ground truth. D: degradation removed; F: fidelity to the input; DF per "
                   f"image, then averaged. Not part of any derived score. {judge['requests_sent']} request(s) sent, "
                   f"{judge['spent']:.4f} {judge['currency']} spent in this run"
                   + (f" (budget {judge['budget']:g})." if judge["budget"] is not None else ".")), ""]
    problems = judge["not_scored"]
    if problems:
        lines += [f"Not scored by the judge ({len(problems)}): "
                  + "; ".join(f"`{p['id']}` {p['status']} ({p['note']})" for p in problems[:20])
                  + (" ..." if len(problems) > 20 else ""), ""]
    return lines
