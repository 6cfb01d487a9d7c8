"""``ggt score --compare``: finished reports side by side, the best per column in bold.

Ranking rule (eval/README.md, "Comparing"): what is ranked is the mean over *all* pairs,
not the mean of the finite values that report.md prints.
  * Finite means compare as they are, in the metric's direction.
  * A best-possible infinity (+inf for higher-is-better: PSNR of an exact prediction) makes
    the mean over all pairs that infinity, so it ranks above every finite mean; between two
    such, more exact pairs rank higher, then the mean of the finite rest.
  * A worst-possible infinity ranks below every finite mean, likewise.
  * NaN (or both infinities) has no mean over all pairs: the cell is shown, never bolded.
  * A PARTIAL report scored fewer pairs, so it is never bolded either.
Every cell shows †k for k non-finite per-image scores, in every table.
"""

from __future__ import annotations

import io

from ..atomic import write_bytes
from .metric_facts import RANKED
from .report import ARROW, _figure, _fmt, bars, cell
from .summary import COMPARE_FIELDS, ReportError, read_summary


def read(paths: list[str]) -> list[dict]:
    return [read_summary(p, COMPARE_FIELDS) for p in paths]


def rank_key(v: dict | None, better: str, partial: bool = False) -> tuple | None:
    """Where one mean stands (a larger key is better), or None when it cannot be ranked."""
    if not v or partial or better not in RANKED:     # an unknown direction is never ranked
        return None
    k = v.get("nonfinite", 0)
    if k and not all(name in v for name in ("posinf", "neginf", "nan")):
        return None                     # a summary that does not say which infinities: unknown
    higher = better == "higher"
    best, worst = (v.get("posinf", 0), v.get("neginf", 0)) if higher else (v.get("neginf", 0), v.get("posinf", 0))
    if v.get("nan", 0) or (best and worst) or (v.get("mean") is None and not k):
        return None
    mean = v.get("mean") or 0.0         # None only when every pair was the same infinity
    signed = mean if higher else -mean
    return (1, best, signed) if best else (-1, -worst, signed) if worst else (0, 0, signed)


def _row_cells(values: list[dict | None], better: str, partial: list[bool]) -> list[str]:
    """Each submission's cell for one metric, the best (two or more rankable) in bold."""
    keys = [rank_key(v, better, p) for v, p in zip(values, partial)]
    known = [k for k in keys if k is not None]
    top = max(known) if len(known) > 1 else None
    return [f"**{cell(v)}**" if k is not None and k == top else cell(v) for v, k in zip(values, keys)]


def _with_sets(s: dict) -> dict:
    """A copy of a summary with its set metrics (FID) among the overall numbers, for comparing."""
    sets = s.get("sets", {})
    return {**s, "metrics": {**s["metrics"], **{k: {"better": v["better"]} for k, v in sets.items()}},
            "overall": {**s["overall"], **{k: {"mean": v["value"]} for k, v in sets.items()}}}


def _check_comparable(summaries: list[dict]) -> None:
    first = summaries[0]["fingerprint"]
    for s in summaries[1:]:
        fp = s["fingerprint"]
        for what, a, b in (("protocol", first["protocol_sha256"], fp["protocol_sha256"]),
                           ("test set", first["test_set"]["sha256"], fp["test_set"]["sha256"])):
            if a != b:
                raise ReportError(f"{s['_path']}: scored under a different {what} than "
                                  f"{summaries[0]['_path']}; the numbers are not comparable")
    directions: dict[str, tuple[str, str]] = {}
    for s in summaries:
        for n, m in s["metrics"].items():
            better, where = directions.setdefault(n, (m["better"], s["_path"]))
            if better != m["better"]:
                raise ReportError(f"{s['_path']}: metric {n!r} is {m['better']}-is-better here, "
                                  f"{better}-is-better in {where}")


def compare(summaries: list[dict]) -> str:
    """Submissions side by side; refuses ones scored under different protocols or test sets."""
    if len(summaries) < 2:
        raise ReportError("--compare needs at least two summary.json files")
    _check_comparable(summaries)
    first = summaries[0]["fingerprint"]
    summaries = [_with_sets(s) for s in summaries]
    names = list(dict.fromkeys(n for s in summaries for n in s["metrics"]))
    better = {n: s["metrics"][n]["better"] for s in summaries for n in s["metrics"]}
    derived = list(dict.fromkeys(d for s in summaries for d in s["derived"]["overall"]))
    partial = [s["partial"] for s in summaries]
    head = ["submission", "pairs"] + [f"{n} {ARROW[better[n]]}" for n in names] + derived
    lines = [(f"Protocol `{first['protocol']}` v{first['protocol_version']}, test set "
             f"`{first['test_set']['sha256'][:16]}`; best per column in bold (ranked by the mean "
             "over all pairs: an exact prediction's +inf PSNR counts as the best score, NaN and "
             "PARTIAL reports are not ranked)."), "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    columns = [_row_cells([s["overall"].get(n) for s in summaries], better[n], partial) for n in names]
    for i, s in enumerate(summaries):
        cells = [col[i] for col in columns] + [_fmt(s["derived"]["overall"].get(d)) for d in derived]
        label = s["label"] + (" (PARTIAL)" if s["partial"] else "")
        lines.append("| " + " | ".join([label, str(s["counts"]["scored"])] + cells) + " |")
    return "\n".join(lines + _by_category(summaries, better) + _footnote(summaries)) + "\n"


def _by_category(summaries: list[dict], better: dict) -> list[str]:
    """Per metric, categories down and submissions across: where each one wins."""
    cats = list(dict.fromkeys(c for s in summaries for c in s["per_category"]))
    partial = [s["partial"] for s in summaries]
    lines = []
    for n in (n for n in better if any(n in s["per_category"].get(c, {}) for s in summaries for c in cats)):
        lines += ["", f"**{n}** {ARROW[better[n]]} per category", "",
                  "| category | " + " | ".join(s["label"] for s in summaries) + " |",
                  "|" + "---|" * (len(summaries) + 1)]
        for c in cats:
            values = [s["per_category"].get(c, {}).get(n) for s in summaries]
            lines.append(f"| {c} | " + " | ".join(_row_cells(values, better[n], partial)) + " |")
    return lines


def _footnote(summaries: list[dict]) -> list[str]:
    """What each † stands for, per submission and metric (overall)."""
    parts = []
    for s in summaries:
        for n, v in s["overall"].items():
            kinds = [f"{v[k]} {word}" for k, word in (("posinf", "+inf"), ("neginf", "-inf"), ("nan", "NaN"))
                     if v.get(k)]
            if v.get("nonfinite"):
                parts.append(f"{s['label']} {n}: {', '.join(kinds) or str(v['nonfinite'])}")
    if not parts:
        return []
    return ["", "† per-image scores that are not finite, left out of the printed mean of the finite "
            "ones: " + "; ".join(parts) + "."]


def plot(summaries: list[dict], path: str) -> None:
    buf = io.BytesIO()
    figure(summaries).savefig(buf, format="png", dpi=110)
    write_bytes(path, buf.getvalue(), durable=False)


def figure(summaries: list[dict]):
    """Per metric, each category and the overall mean, one bar per submission."""
    from matplotlib import color_sequences

    summaries = [_with_sets(s) for s in summaries]
    names = list(dict.fromkeys(n for s in summaries for n in s["metrics"]))
    cats = list(dict.fromkeys(c for s in summaries for c in s["per_category"]))
    fig, axes = _figure(len(names), width=0.6 * (len(cats) + 1) * max(1.0, len(summaries) / 2) + 1.5)
    colours = color_sequences["tab10"]          # tab10's 10 colours (colormaps["tab10"].colors)
    width = 0.8 / len(summaries)
    for ax, n in zip(axes, names):
        groups = [c for c in cats if any(n in s["per_category"].get(c, {}) for s in summaries)] + ["overall"]
        for k, s in enumerate(summaries):
            means = [s["per_category"].get(c, {}).get(n) for c in groups[:-1]] + [s["overall"].get(n)]
            bars(ax, [g + (k - (len(summaries) - 1) / 2) * width for g in range(len(groups))], means,
                 width, color=colours[k % len(colours)], label=s["label"])
        ax.set_xticks(range(len(groups)), groups, rotation=45, ha="right", fontsize=8)
        ax.axvline(len(groups) - 1.5, color="#999999", lw=0.5)      # categories | overall
        better = next(s["metrics"][n]["better"] for s in summaries if n in s["metrics"])
        ax.set_ylabel(f"mean {n} per image", fontsize=8)
        ax.set_xlabel("bars: mean of the finite scores; † non-finite, left out (see the table)", fontsize=7)
        ax.margins(y=0.35)
        ax.set_title(f"{n} {ARROW[better]}")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="upper center", ncol=len(summaries), frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.92))      # the legend above the plots, over no bar
    return fig
