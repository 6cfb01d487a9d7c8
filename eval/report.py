"""Reports: per-image tables, a self-describing summary, a Markdown table, plots, comparisons.

A report folder holds
  per_image.parquet, per_image.csv   id, category, one column per metric (protocol names), note
  summary.json                        means overall and per category, fingerprint, everything needed
                                      to judge whether two reports are comparable
  report.md                           the table to paste into a paper
  plots/per_category.png, plots/distribution.png
Non-finite scores (NaN, inf) are never averaged silently: means use the finite
values only, and the count (by kind) and the ids of the others are reported next to them.
The folder is written whole beside OUT and swapped in (report_folder.py).
Side-by-side comparisons are in compare.py; reading summary.json is summary.py.
"""

from __future__ import annotations

import json
import math
import os
import platform
from collections.abc import Sequence
from datetime import datetime, timezone

from .. import __version__
from . import judge_report
from .protocol import Protocol, evaluate_derived
from .report_folder import write_folder
from .summary import (  # noqa: F401 (read_summary: one reader, re-exported)
    REPORT_FORMAT,
    ReportError,
    absdiff_name,
    category_order,
    read_summary,
)
from .summary import mean_entry as _mean

# '?': the direction is unknown (AFINE-NR in HarnessIR): reported, never ranked or bolded.
ARROW = {"higher": "↑", "lower": "↓", "unknown": "?"}


def _means(rows: list[dict], names: list[str]) -> dict:
    return {n: _mean([r[n] for r in rows]) for n in names}


def _derived(protocol: Protocol, means: dict, where: str, flagged: list) -> dict:
    """Derived scores from ``means``; a non-finite one (0/0, overflow) is None, and listed in ``flagged``."""
    out = {}
    for name, expr in protocol.usable_derived():
        vals = {k: v["mean"] for k, v in means.items()}
        value = None if any(v is None for v in vals.values()) else evaluate_derived(expr, vals)
        if value is not None and not math.isfinite(value):
            flagged.append({"where": where, "name": name, "value": str(value)})
            value = None
        out[name] = value
    return out


def _set_score(protocol: Protocol, name: str, v: dict) -> dict:
    """A set metric's entry; a value that is not finite (FID of a set of fewer than two
    images is undefined) is null with the reason, since summary.json holds finite numbers only."""
    entry = {**v, "better": protocol.metric(name).better, "note": protocol.metric(name).note}
    if not math.isfinite(entry["value"]):
        entry["undefined"] = (f"{entry['value']}: needs at least 2 images in each set "
                              f"({entry.get('n')} predictions, {entry.get('n_reference')} ground truths)")
        entry["value"] = None
    return entry


def summarize(result, protocol: Protocol, *, refs, preds, device: str, weight_files: dict,
              label: str, kernels: dict | None = None) -> dict:
    import torch

    from .metrics import pyiqa_version
    from .selfcheck import state as selfcheck_state

    names = [m.name for m in protocol.metrics if m.kind != "SET"]
    cats = category_order(result.rows)
    per_cat = {c: _means([r for r in result.rows if r["category"] == c], names) for c in cats}
    overall = _means(result.rows, names)
    ref = {}
    for metric, scores in result.reference.items():
        ref[metric] = {"overall": _mean([scores[r["id"]] for r in result.rows]),
                       "per_category": {c: _mean([scores[r["id"]] for r in result.rows
                                                  if r["category"] == c]) for c in cats},
                       "cache": result.reference_cache.get(metric)}
    absdiff = {}
    for metric in result.reference:
        col = absdiff_name(metric)
        absdiff[metric] = {"overall": _mean([r[col] for r in result.rows]),
                           "per_category": {c: _mean([r[col] for r in result.rows if r["category"] == c])
                                            for c in cats}}
    m = result.match
    flagged: list[dict] = []
    return {
        "format": "ggt-score", "format_version": REPORT_FORMAT,
        "label": label,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "partial": not m.complete or bool(result.failed),
        "restricted_to": list(protocol.restricted_to) if protocol.restricted_to else None,
        "submission": {"source": preds.source, "kind": preds.kind, "matched_by": preds.matched_by},
        "counts": {"test_set": len(refs.ids), "scored": len(result.rows), "missing": m.missing,
                   "extra": m.extra, "duplicates": m.duplicates, "failed": result.failed},
        "fingerprint": {
            "protocol": protocol.name, "protocol_version": protocol.version,
            "protocol_sha256": protocol.sha256(),
            "test_set": {"source": refs.source, "split": refs.split, "sha256": refs.fingerprint,
                         "pairs": len(refs.ids), "revision": refs.revision},
            "versions": {"ggt-100k": __version__, "pyiqa": pyiqa_version(), "torch": torch.__version__,
                         "python": platform.python_version()},
            "device": device,
            "selfcheck": selfcheck_state(device),   # this install's calibration check (eval/selfcheck.py)
            "kernels": kernels or {},        # metric -> the code that computed it (metrics.kernels)
            "weights": {k: [{"file": r.weight.file, "sha256": r.sha256} for r in v]
                        for k, v in weight_files.items() if v},
        },
        "protocol": protocol.describe(),
        "metrics": {mm.name: {"kind": mm.kind, "better": mm.better, "pyiqa": mm.pyiqa, "note": mm.note}
                    for mm in protocol.metrics if mm.kind != "SET"},
        "sets": {k: _set_score(protocol, k, v) for k, v in result.sets.items()},
        "overall": overall,
        "per_category": per_cat,
        "derived": {"overall": _derived(protocol, overall, "overall", flagged),
                    "per_category": {c: _derived(protocol, v, c, flagged) for c, v in per_cat.items()},
                    "nonfinite": flagged},
        "reference": ref,
        # per NR metric: mean |prediction - ground truth| of its score; per-image columns <m>_absdiff
        "absdiff": absdiff,
        "nonfinite": [{"id": r["id"], "metric": n, "value": str(r[n])}
                      for r in result.rows for n in names if not math.isfinite(r[n])],
        "conversions": sum(1 for r in result.rows if r["note"]),
        "seconds": {k: round(v, 3) for k, v in result.seconds.items()},
    }


def _fmt(v, digits: int = 4) -> str:
    if v is None:
        return "—"
    return f"{v:.{digits}f}"


def cell(v: dict | None) -> str:
    """One mean as every table shows it: the mean of the finite values, and †k when k
    per-image scores were not finite (all of them +inf: "inf †k")."""
    if not v:
        return "—"
    k = v.get("nonfinite", 0)
    text = _fmt(v.get("mean"))
    if v.get("mean") is None and k:
        text = next((name for name in ("posinf", "neginf") if v.get(name) == k), None) or "—"
        text = {"posinf": "inf", "neginf": "-inf"}.get(text, text)
    return text + (f" †{k}" if k else "")


def _listed(items: list[str], limit: int) -> str:
    return ", ".join(items[:limit]) + (f", ... ({len(items) - limit} more in summary.json)"
                                       if len(items) > limit else "")


def _left_out(counts: dict, limit: int = 20) -> list[str]:
    """What a partial report left out, by name: a count alone sends the reader to summary.json."""
    lines = [f"- {what}: {_listed(counts[key], limit)}" for what, key in (("missing", "missing"), ("extra", "extra"))
             if counts[key]]
    lines += [f"- duplicate {pair_id}: {', '.join(files)}" for pair_id, files in list(counts["duplicates"].items())[:limit]]
    lines += [f"- unscorable: {why}" for why in counts["failed"][:limit]]
    if len(counts["failed"]) > limit:
        lines.append(f"- ... and {len(counts['failed']) - limit} more unscorable (summary.json lists them all)")
    return lines + [""] if lines else []


def _absdiff_table(summary: dict) -> list[str]:
    """Per category, each no-reference metric's mean |prediction - ground truth| (lower is closer)."""
    gaps = summary.get("absdiff") or {}
    if not gaps:
        return []
    names = list(gaps)
    lines = [("Closeness to the ground truth's own no-reference score: the mean over pairs of "
              "|prediction − ground truth| (lower is closer; a prediction scoring above its ground "
              "truth may be hallucinating detail). Per image: the `<metric>_absdiff` columns."), "",
             "| category | " + " | ".join(f"{n} \\|Δ\\| ↓" for n in names) + " |",
             "|" + "---|" * (len(names) + 1)]
    for cat in summary["per_category"]:
        lines.append(f"| {cat} | " + " | ".join(cell(gaps[n]["per_category"].get(cat)) for n in names) + " |")
    lines.append("| **overall** | " + " | ".join(cell(gaps[n]["overall"]) for n in names) + " |")
    return lines + [""]


def markdown(summary: dict) -> str:
    names = list(summary["metrics"])
    better = {n: summary["metrics"][n]["better"] for n in names}
    derived = list(summary["derived"]["overall"])
    fp = summary["fingerprint"]
    lines = [f"# {summary['label']}: protocol `{fp['protocol']}` v{fp['protocol_version']}", ""]
    if summary["partial"]:
        c = summary["counts"]
        lines += [(f"> **PARTIAL**: {c['scored']} of {c['test_set']} test pairs scored "
                  f"({len(c['missing'])} missing, {len(c['extra'])} extra, {len(c['duplicates'])} "
                  f"duplicate, {len(c['failed'])} unscorable). Not comparable with complete reports."), ""]
        lines += _left_out(c)
    if summary["restricted_to"]:
        lines += [(f"> Restricted to metrics {', '.join(summary['restricted_to'])} (--metrics); the "
                  f"protocol has more."), ""]
    head = ["category", "pairs"] + [f"{n} {ARROW[better[n]]}" for n in names] + derived
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def row(label: str, means: dict, der: dict) -> str:
        n = max((v["n"] + v["nonfinite"] for v in means.values()), default=0)
        cells = [cell(means[k]) for k in names]
        return "| " + " | ".join([label, str(n)] + cells + [_fmt(der.get(d)) for d in derived]) + " |"

    for cat, means in summary["per_category"].items():
        lines.append(row(cat, means, summary["derived"]["per_category"][cat]))
    lines.append(row("**overall**", summary["overall"], summary["derived"]["overall"]))
    if summary["reference"]:
        ref = summary["reference"]
        cells = [_fmt(ref[n]["overall"]["mean"]) if n in ref else "" for n in names]
        lines.append("| *ground truth* | " + str(summary["counts"]["scored"]) + " | "
                     + " | ".join(cells) + " |" + " |" * len(derived))
    lines.append("")
    lines += _absdiff_table(summary)
    for name, v in summary.get("sets", {}).items():
        lines += [(f"**{name}** {ARROW[v['better']]} over the set ({v['n']} predictions vs their ground "
                  f"truths): **{_fmt(v['value'])}**{' (undefined: ' + v['undefined'] + ')' if v.get('undefined') else ''}. "
                  f"{v['note']}"), ""]
    if summary.get("judge"):
        lines += judge_report.markdown(summary["judge"], cell)
    if summary["nonfinite"]:
        lines += [f"† non-finite scores left out of the mean ({len(summary['nonfinite'])}): "
                  + ", ".join(f"{x['id']} {x['metric']}={x['value']}" for x in summary["nonfinite"][:10])
                  + (" ..." if len(summary["nonfinite"]) > 10 else ""), ""]
    if summary["derived"].get("nonfinite"):
        lines += ["‡ derived scores that are not finite, left blank: "
                  + ", ".join(f"{x['name']} ({x['where']}) = {x['value']}" for x in summary["derived"]["nonfinite"]),
                  ""]
    lines += ["Means per image; overall is the mean over all pairs. "
              + " ".join(f"**{n}**: {summary['metrics'][n]['note'].rstrip('.')}." for n in names
                         if summary["metrics"][n]["note"]), ""]
    lines += [_preprocessing(summary["protocol"], fp.get("kernels") or {}), ""]
    lines += _unranked(summary) + _differences(summary["protocol"])
    v = fp["versions"]
    lines += [(f"Protocol sha256 `{fp['protocol_sha256'][:16]}`, test set `{fp['test_set']['split']}` "
              f"sha256 `{fp['test_set']['sha256'][:16]}` ({fp['test_set']['pairs']} pairs), "
              f"ggt-100k {v['ggt-100k']}, pyiqa {v['pyiqa']}, torch {v['torch']}, device {fp['device']}."),
              f"{summary['conversions']} prediction(s) needed a conversion (see the `note` column).", ""]
    return "\n".join(lines)


def _unranked(summary: dict) -> list[str]:
    unknown = [n for n, m in summary["metrics"].items() if m["better"] == "unknown"]
    if not unknown:
        return []
    return [(f"? {', '.join(unknown)}: which way is better is not established (HarnessIR leaves it open), "
             "so it is reported but never ranked, bolded or used in a derived score."), ""]


def _differences(protocol: dict) -> list[str]:
    """Where the protocol departs from its source's way of scoring (its metadata.differences)."""
    items = protocol.get("differences") or []
    if not items:
        return []
    return [(f"Protocol `{protocol['name']}` v{protocol['version']} differs from HarnessIR "
             "(PolyU-VCLab/HarnessIR, harness/metrics.py) in these ways:"), ""] + [f"- {x}" for x in items] + [""]


def _preprocessing(protocol: dict, kernels: dict) -> str:
    """Every rule besides the metrics' own that changes the numbers, and what computed each metric."""
    size, crop = protocol["size_mismatch"], protocol["crop_border"]
    text = ((f"A {crop} px border is cropped from both images" if crop else "No border is cropped")
            + " before the full-reference metrics. "
            + {"crop": f"A prediction whose size differs from the ground truth's by up to {size['max_diff']} px per "
                       f"side is cropped with it to their common size from the {size['anchor']}; more is an error.",
               "resize": "A prediction whose size differs from the ground truth's is resized to it (bicubic, "
                         "OpenCV INTER_CUBIC).",
               "error": "A prediction whose size differs from the ground truth's is an error."}[size["policy"]])
    ours = {n: k for n, k in kernels.items() if k != "pyiqa"}
    if ours:
        text += (" Computed by pyiqa except " + ", ".join(f"{n} (`{k}`)" for n, k in ours.items())
                 + ": eval/ssim.py, pyiqa's maths within 1e-10 or the protocol's own convention.")
    return text


def _figure(n: int, width: float = 3.2):
    # The object API, not pyplot: no global state, and half a second less import per report.
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * n, 3.6))
    return fig, fig.subplots(1, n, squeeze=False)[0]


def bars(ax, x: list[float], means: list[dict | None], width: float = 0.8, **style) -> None:
    """Bars of the finite means, each labelled as the tables show it (value, †k, "inf")."""
    heights = [(v or {}).get("mean") for v in means]
    ax.bar(x, [h if h is not None else 0.0 for h in heights], width, **style)
    for xi, h, v in zip(x, heights, means):
        # a bar of height 0 for "every pair +inf" would read as the worst score: say it in text
        ax.annotate(cell(v), (xi, h if h is not None else 0.0), ha="center", va="bottom", fontsize=6,
                    rotation=90, xytext=(0, 2), textcoords="offset points")


def draw_plots(summary: dict, rows: list[dict], folder: str) -> None:
    """report.md's plots into ``folder``: per-category means and per-image distributions."""
    names = list(summary["metrics"])
    cats = list(summary["per_category"])
    fig, axes = _figure(len(names))
    for ax, n in zip(axes, names):
        bars(ax, list(range(len(cats))), [summary["per_category"][c][n] for c in cats], color="#4C72B0")
        overall = summary["overall"][n]
        if overall["mean"] is not None:
            ax.axhline(overall["mean"], color="#C44E52", lw=1, label=f"overall mean {cell(overall)}")
            # above the axes, where it covers no bar and no label
            ax.legend(fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
        ax.set_xticks(range(len(cats)), cats, rotation=45, ha="right", fontsize=8)
        ax.set_xlabel("category († non-finite scores, left out of the mean)", fontsize=7)
        ax.set_ylabel(f"mean {n} per image", fontsize=8)
        ax.margins(y=0.35)              # room for the labels above the bars
        ax.set_title(f"{n} {ARROW[summary['metrics'][n]['better']]}", pad=16)
    fig.suptitle(f"{summary['label']} — per category ({summary['fingerprint']['protocol']})")
    fig.tight_layout()
    fig.savefig(os.path.join(folder, "per_category.png"), dpi=110)
    fig, axes = _figure(len(names))
    for ax, n in zip(axes, names):
        data = [[r[n] for r in rows if r["category"] == c and math.isfinite(r[n])] for c in cats]
        ax.boxplot([d or [math.nan] for d in data], showfliers=True)
        left = [summary["per_category"][c][n]["nonfinite"] for c in cats]
        ticks = [f"{c}\nn={len(d)}" + (f" †{k}" if k else "") for c, d, k in zip(cats, data, left)]
        ax.set_xticks(range(1, len(cats) + 1), ticks, rotation=45, ha="right", fontsize=7)
        ax.set_xlabel("category (n finite scores; † non-finite, not drawn)", fontsize=7)
        ax.set_ylabel(f"{n} per image", fontsize=8)
        ax.set_title(f"{n} {ARROW[summary['metrics'][n]['better']]} per image")
    fig.tight_layout()
    fig.savefig(os.path.join(folder, "distribution.png"), dpi=110)


def write(out: str, summary: dict, rows: list[dict], unweighted: Sequence[str] = ()) -> None:
    """Write the whole report as the folder ``out``: the old one stays until the new one is whole."""
    if unweighted:
        raise ReportError(f"metrics {', '.join(unweighted)} ran without their pretrained weights; "
                          "their numbers are meaningless and never go into a report")

    def fill(folder: str) -> None:
        # The plots (matplotlib, most of a report's time) are drawn on a thread while the tables
        # are written here: the same function on the same inputs, so the same files.
        os.makedirs(os.path.join(folder, "plots"))
        plots = _Background(draw_plots, summary, rows, os.path.join(folder, "plots"))
        try:
            _tables(folder, summary, rows)
        finally:
            plots.thread.join()       # never left drawing into a folder that is being removed
        plots.join()

    write_folder(out, fill)


def _tables(folder: str, summary: dict, rows: list[dict]) -> None:
    """per_image.parquet and .csv, summary.json and report.md."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    names = list(summary["metrics"])
    cols = {"id": pa.array([r["id"] for r in rows], pa.string()),
            "category": pa.array([r["category"] for r in rows], pa.string())}
    names += [absdiff_name(n) for n in summary.get("absdiff", {})]
    cols.update({n: pa.array([r[n] for r in rows], pa.float64()) for n in names})
    cols["note"] = pa.array([r["note"] for r in rows], pa.string())
    if summary.get("judge"):        # null where the judge gave no score (judge_status says why)
        cols.update({n: pa.array([r[n] for r in rows], pa.float64()) for n in judge_report.SCORES})
        cols.update({n: pa.array([r[n] for r in rows], pa.string()) for n in judge_report.TEXTS})
    table = pa.table(cols)
    pq.write_table(table, os.path.join(folder, "per_image.parquet"))
    pacsv.write_csv(table, os.path.join(folder, "per_image.csv"))
    with open(os.path.join(folder, "summary.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1, allow_nan=False, default=str)
    with open(os.path.join(folder, "report.md"), "w", encoding="utf-8") as f:
        f.write(markdown(summary))


class _Background:
    """``fn(*args)`` on a thread; ``join()`` waits and raises what it raised (a failed plot fails the
    report, which ``write_folder`` then never swaps in)."""

    def __init__(self, fn, *args) -> None:
        import threading

        self.error: BaseException | None = None

        def run() -> None:
            try:
                fn(*args)
            except BaseException as e:  # noqa: BLE001 (re-raised by join, on the caller's thread)
                self.error = e
        self.thread = threading.Thread(target=run, name="ggt-report-plots", daemon=True)
        self.thread.start()

    def join(self) -> None:
        self.thread.join()
        if self.error is not None:
            raise self.error
