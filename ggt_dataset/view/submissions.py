"""The models a viewer shows side by side: N labelled submissions, each with outputs, scores or both.

One submission is the plain case (N=1): its columns keep their names (``psnr``,
``has_prediction``) and its image role is ``pred``. With more, each gets a tag made from
its label, and its columns and role carry it: ``psnr:identity``, ``has_prediction:identity``,
``pred:identity``. Between two submissions A and B, on a metric both rank the same way,
``psnr:A-vs-B`` is how far A beats B on each image, in the metric's direction (positive: A
is better; ``lpips:A-vs-B`` is B's LPIPS minus A's), so sorting it descending lists the
pairs where A beats B most. Comparisons are derived columns: computed on first use, kept
in the index's bounded cache.

A submission comes from ``--predictions`` and ``--report`` (paired in the order given; a
report alone shows the outputs it scored when they are on disk) or from a record in a
results repo (``--submissions``: its per-image table, and its outputs when the repo holds
them).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..errors import GGTError
from ..ids import unique_names
from .index import Column, PairIndex
from .overlays import Outputs, Report, attach_predictions, attach_record, attach_report


@dataclass
class Submission:
    label: str
    outputs: Outputs | None = None
    report: Report | None = None
    tag: str | None = None                  # None when it is the only one
    columns: dict[str, str] = field(default_factory=dict)      # metric -> its column's name in the index

    def name(self, base: str) -> str:
        """The name of this submission's ``base`` column or role (see the module's docstring)."""
        return base if self.tag is None else f"{base}:{self.tag}"

    @property
    def role(self) -> str:
        return self.name("pred")

    def describe(self) -> dict:
        return {"role": self.role, "label": self.label, "name": "output" if self.tag is None else self.label,
                "has": self.name("has_prediction") if self.outputs else None, "metrics": list(self.columns.values())}


@dataclass(frozen=True)
class Comparison:
    """``a``'s margin over ``b`` on ``metric``, per image: positive where ``a`` is better."""

    name: str
    metric: str
    a: Submission
    b: Submission
    better: str                             # the metric's direction

    def values(self, index: PairIndex, rows=slice(None)) -> np.ndarray:
        a = index.columns[self.a.columns[self.metric]].values[rows]
        b = index.columns[self.b.columns[self.metric]].values[rows]
        return a - b if self.better == "higher" else b - a

    def describe(self) -> dict:
        return {"name": self.name, "metric": self.metric, "a": self.a.label, "b": self.b.label}


class SubmissionError(GGTError):
    """The submissions asked for do not fit together (counts, models, labels)."""


def _tags(labels: list[str]) -> list[str | None]:
    """Short names for column names and URLs: letters, digits, _ and . (no -: it separates A-vs-B)."""
    if len(labels) == 1:
        return [None]
    bases = [re.sub(r"[^A-Za-z0-9_.]+", "_", label).strip("_.") or f"s{i + 1}" for i, label in enumerate(labels)]
    return list(unique_names(bases, "_"))


def _scored_outputs(path: str, report_dir: str) -> str | None:
    """The report's scored outputs: as recorded, else relative to the report's folder or its parents."""
    if os.path.isabs(path):
        return path if os.path.exists(path) else None
    tries = [path] + [os.path.join(base, path) for base in
                      (report_dir, os.path.dirname(report_dir), os.path.dirname(os.path.dirname(report_dir)))]
    return next((t for t in tries if os.path.exists(t)), None)


def _from_options(index: PairIndex, predictions: list[str], reports: list[str],
                  log: Callable[[str], None]) -> list[tuple[Submission, str | None]]:
    """(submission with its report, its outputs' path) for each --predictions/--report, paired in order."""
    if predictions and reports and len(predictions) != len(reports):
        raise SubmissionError(f"{len(predictions)} --predictions and {len(reports)} --report: give one --report "
                              "per --predictions, in the same order (or reports alone: each names its outputs)")
    out = []
    for i in range(max(len(predictions), len(reports))):
        pred = predictions[i] if predictions else None
        rep = attach_report(index, reports[i]) if reports else None
        if rep and pred is None and rep.submission:
            pred = _scored_outputs(rep.submission, os.path.dirname(rep.path))
            log(f"ggt view: showing the scored outputs from {pred} (report {rep.label}'s submission)" if pred
                else f"ggt view: report {rep.label}'s outputs ({rep.submission}) are not on disk here; pass --predictions")
        label = rep.label if rep else os.path.basename(os.path.normpath(pred or "")) or "output"
        out.append((Submission(label, report=rep), pred))
    return out


def _from_results(index: PairIndex, results: str, models: list[str],
                  log: Callable[[str], None]) -> list[tuple[Submission, str | None]]:
    """A submission for each record in a results repo (only ``models``' when given)."""
    from ..benchmark.record import read_record
    from ..benchmark.results import Results

    repo = Results(results)
    records = [(rel, read_record(repo.local_path(rel))) for rel in repo.record_paths()]
    have = {r.model["id"] for _, r in records}
    missing = [m for m in models if m not in have]
    if missing:
        raise SubmissionError(f"{results}: no record for {', '.join(missing)} (it has: {', '.join(sorted(have)) or 'none'})")
    records = [(rel, r) for rel, r in records if not models or r.model["id"] in models]
    if not records:
        raise SubmissionError(f"{results}: no submission records under submissions/; is it a results repo?")
    twice = {m for m in have if sum(r.model["id"] == m for _, r in records) > 1}
    out = []
    for rel, record in records:
        rep, pred = attach_record(index, repo, rel)
        p = record.protocol
        label = record.model["id"] + (f" ({p['name']} v{p['version']})" if record.model["id"] in twice else "")
        elsewhere = (record.outputs or {}).get("repo")
        if elsewhere:               # a whole dataset repo, maybe large: not downloaded to be looked at
            log(f"ggt view: {label}'s outputs are in {elsewhere}, not in {results}; showing its scores only")
        if rep is None and pred is None:
            log(f"ggt view: {rel} has neither scores nor outputs in {results}; left out")
            continue
        if rep:
            rep.label = label
        out.append((Submission(label, report=rep), pred))
    return out


def open_submissions(index: PairIndex, predictions: list[str], reports: list[str], results: str | None = None,
                     models: list[str] | None = None, split: str | None = None,
                     log: Callable[[str], None] = print) -> list[Submission]:
    """Every submission asked for, joined onto ``index`` in the order given (options, then records)."""
    if models and not results:
        raise SubmissionError("--model chooses records of --submissions RESULTS; give --submissions too")
    found = _from_options(index, predictions, reports, log)
    if results:
        found += _from_results(index, results, models or [], log)
    for (sub, pred), tag in zip(found, _tags([s.label for s, _ in found])):
        sub.tag = tag
        if pred:
            sub.outputs = attach_predictions(index, pred, split or (sub.report.split if sub.report else "test"))
        _add_columns(index, sub, log)
    return [s for s, _ in found]


def _add_columns(index: PairIndex, sub: Submission, log: Callable[[str], None]) -> None:
    rep, out = sub.report, sub.outputs
    if rep and rep.unmatched:
        log(f"ggt view: {len(rep.unmatched)} rows of {rep.label}'s scores are not in {index.source.name} "
            f"(first: {rep.unmatched[0]})")
    if out and out.unmatched:
        log(f"ggt view: {len(out.unmatched)} of {sub.label}'s outputs are not in {index.source.name} "
            f"(first: {out.unmatched[0]})")
    if out:
        index.add_column(Column(sub.name("has_prediction"), out.has(index.num_rows), "metric", ["no", "yes"]))
    if rep is None:
        return
    for metric, values in rep.scores.items():
        column = Column(sub.name(metric), values, "metric", better=rep.better.get(metric))
        index.add_column(column)                 # renamed group:name if a data column has the name
        sub.columns[metric] = column.name


def _margin_column(c: Comparison, index: PairIndex) -> Callable[[], Column]:
    """The margin column of ``c``, made on first use (the index caches it within its budget)."""
    return lambda: Column(c.name, c.values(index), "compare", better="higher")


def comparisons(index: PairIndex, subs: list[Submission]) -> list[Comparison]:
    """A vs B for each two submissions (in the order given) and each metric both rank the same way.

    Both orders become derived columns of ``index`` (``psnr:B-vs-A`` sorts the other way
    round); the list holds A-vs-B only, A given first, which is what the page offers.
    """
    listed = []
    for i, a in enumerate(subs):
        for b in subs[i + 1:]:
            for metric in a.columns:
                better = a.report.better.get(metric) if a.report else None
                if not better or metric not in b.columns or better != (b.report.better.get(metric) if b.report else None):
                    continue
                pair = [Comparison(f"{metric}:{x.tag}-vs-{y.tag}", metric, x, y, better) for x, y in ((a, b), (b, a))]
                for c in pair:
                    index.derived[c.name] = _margin_column(c, index)
                listed.append(pair[0])
    return listed
