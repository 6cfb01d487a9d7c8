"""``score()``: the one function behind ``ggt score`` and the ``evaluate`` module."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..ids import unique_names
from . import cache, metrics, report, report_folder, scoring, weights
from . import protocol as protocol_mod
from .judge import Judge, JudgeOptions
from .metrics import kernels
from .predictions import MAX_UNZIPPED_BYTES, open_predictions
from .references import open_references

if TYPE_CHECKING:
    from .fid import FIDScorer


def load_protocol(name_or_path: str, metric_names: list[str] | None = None) -> protocol_mod.Protocol:
    """The protocol, restricted to ``metric_names`` unless that is None (all of its metrics)."""
    proto = protocol_mod.load(name_or_path)
    if metric_names is None:
        return proto
    if not metric_names:        # an empty list is a mistake, never a way of saying "all"
        raise protocol_mod.ProtocolError(
            f"no metrics named; give some of protocol {proto.name!r}'s metrics "
            f"({', '.join(m.name for m in proto.metrics)}), or none at all for every one")
    return proto.subset(metric_names)


def available_metrics(protocol: str, weights_dir: str | None = None) -> list[str]:
    """``--metrics available``: the protocol's metrics whose weight files are all in place.

    The others are named on stderr, and the report says the protocol was restricted.
    """
    import sys

    if weights_dir:
        weights.use_weights_dir(weights_dir)
    proto = protocol_mod.load(protocol)
    ok = [m.name for m in proto.metrics if not weights.resolve(m)[1]]
    left = [m.name for m in proto.metrics if m.name not in ok]
    if not ok:
        raise weights.MissingWeightsError(f"no metric of protocol {proto.name!r} has its weight files "
                                          f"here; `ggt weights list {weights.cli_name(proto)}` shows them")
    if left:
        print(f"ggt score: leaving out {', '.join(left)}: weight files missing "
              f"(`ggt weights list {weights.cli_name(proto)}` shows which)", file=sys.stderr)
    return ok


def build_scorers(proto: protocol_mod.Protocol, device: str = "auto", weights_dir: str | None = None,
                  kernel: str = "fast") -> tuple[list[metrics.Scorer | FIDScorer], dict, str]:
    """Check pyiqa's version and every weight file first, then build the metrics.

    ``kernel``: ``fast`` runs our kernel where a metric has one (SSIM: eval/ssim.py), ``pyiqa``
    pyiqa's own code everywhere.
    """
    files, device = check_setup(proto, device, weights_dir)
    return make_scorers(proto, device, kernel), files, device


def check_setup(proto: protocol_mod.Protocol, device: str = "auto",
                weights_dir: str | None = None) -> tuple[dict, str]:
    """pyiqa's version, every weight file and the device: what fails in a second, before the
    inputs are opened (a Hub reference downloads) and the metrics built (models load)."""
    metrics.check_pyiqa(proto)
    if weights_dir:
        weights.use_weights_dir(weights_dir)
    files = weights.require(proto)          # fails, naming every missing file, before any work
    return files, metrics.resolve_device(device)


def make_scorers(proto: protocol_mod.Protocol, device: str, kernel: str = "fast") -> list[metrics.Scorer | FIDScorer]:
    from .fid import FIDScorer

    return [FIDScorer(spec, device) if spec.kind == "SET" else metrics.Scorer(spec, device, kernel=kernel)
            for spec in proto.metrics]


def device_label(device: str) -> str:
    import torch

    if device.startswith("cuda"):
        return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return "cpu"


def score(predictions: str, reference: str, *, out: str | None = None, split: str = "test",
          protocol: str = protocol_mod.DEFAULT_PROTOCOL, metrics: list[str] | None = None,
          device: str = "auto", batch_size: int = scoring.DEFAULT_BATCH, workers: int | None = None,
          allow_partial: bool = False, overwrite: bool = False, weights_dir: str | None = None,
          cache_dir: str | None = None, label: str | None = None, max_unzipped: int = MAX_UNZIPPED_BYTES,
          fid: bool = False, progress: bool = False, kernel: str = "fast",
          revision: str | None = None, judge: JudgeOptions | None = None, jpeg_decoder: str = "pillow") -> dict:
    """Score a submission and (with ``out``) write its report. Returns the summary dict.

    Args:
        predictions: a folder of images, a .zip, Parquet file(s) or a saved ``datasets`` dataset;
            each image is named by its pair id (``rain/chelsea_000.png``).
        reference: a ``ggt build`` output folder or a Hub dataset id.
        revision: a Hub reference's tag, branch or commit; the report records the commit.
        out: the report folder; None scores without writing. It is checked before any work:
            a new or empty folder, or an earlier report (replaced whole at the end).
        overwrite: let ``out`` replace a folder that is not a report (never the inputs).
        protocol: a shipped protocol name (``ggt``, ``ntire``) or a YAML path.
        metrics: restrict the protocol to these metrics (the report says so); ["available"]
            keeps those whose weight files are in place.
        fid: also compute the protocol's optional set metric (FID).
        kernel: ``fast`` (our SSIM kernel, equal to pyiqa's within 1e-10) or ``pyiqa`` (pyiqa's
            own code for every metric); the fingerprint records which computed each metric.
        jpeg_decoder: ``pillow`` (default) or ``device``: plain colour JPEGs decoded by torchvision
            on ``device`` (nvjpeg on CUDA, whose pixels can differ from Pillow's: eval/decode.py);
            the fingerprint's ``jpeg_decoder`` says so, and the reference cache is not used.
        judge: also score D, F and DF with a VLM (eval/judge.py): paid calls, cached per user
            under ``cache_dir``; the summary's ``judge`` section says what it cost and whether
            it is partial.
    """
    if out:
        report_folder.check_out(out, overwrite=overwrite,
                                inputs={"reference dataset": reference, "predictions": predictions})
    label = label or os.path.basename(os.path.normpath(predictions))
    [(summary, rows)], unweighted = _score([predictions], [label], reference, split=split, protocol=protocol,
                                           metrics=metrics, device=device, batch_size=batch_size,
                                           workers=workers, allow_partial=allow_partial,
                                           weights_dir=weights_dir, cache_dir=cache_dir,
                                           max_unzipped=max_unzipped, fid=fid, progress=progress,
                                           kernel=kernel, revision=revision, named=False, judge=judge,
                                           jpeg_decoder=jpeg_decoder)
    if out:
        report.write(out, summary, rows, unweighted)
    return summary


COMPARISON_FILES = ("comparison.md", "comparison.png")     # what ``ggt score --compare --out`` writes


def labels_for(predictions: list[str]) -> list[str]:
    """Each submission's name and report folder: its folder's (or file's) name, made unique
    in order with -2, -3, ... (``a/out``, ``b/out`` -> ``out``, ``out-2``)."""
    bases = []
    for path in predictions:
        base = os.path.basename(os.path.normpath(path))
        if base in ("", ".", ".."):            # "." names no folder: the folder it stands for
            base = os.path.basename(os.path.realpath(path)) or "predictions"
        bases.append(base)
    return unique_names(bases, "-")


def check_many_out(out: str, labels: list[str], predictions: list[str], reference: str,
                   overwrite: bool = False) -> None:
    """``out`` for several submissions: a new or empty folder, or an earlier such folder (only
    reports and the comparison), and each ``out/<label>`` as ``check_out`` allows a report."""
    inputs = {"reference dataset": reference, **{f"predictions {lb!r}": p for lb, p in zip(labels, predictions)}}
    report_folder.check_out(out, overwrite=True, inputs=inputs)    # a file, an input inside, permission
    if os.path.isdir(out) and not overwrite:
        for name in sorted(set(os.listdir(out)) - set(COMPARISON_FILES)):
            report_folder.check_out(os.path.join(out, name))         # refused unless an earlier report
    for lb in labels:
        report_folder.check_out(os.path.join(out, lb), overwrite=overwrite, inputs=inputs)


def score_many(predictions: list[str], reference: str, *, out: str | None = None, split: str = "test",
               protocol: str = protocol_mod.DEFAULT_PROTOCOL, metrics: list[str] | None = None,
               device: str = "auto", batch_size: int = scoring.DEFAULT_BATCH, workers: int | None = None,
               allow_partial: bool = False, overwrite: bool = False, weights_dir: str | None = None,
               cache_dir: str | None = None, max_unzipped: int = MAX_UNZIPPED_BYTES, fid: bool = False,
               progress: bool = False, kernel: str = "fast", revision: str | None = None,
               judge: JudgeOptions | None = None, jpeg_decoder: str = "pillow") -> list[dict]:
    """Score several submissions (checkpoints) in one pass over the ground truth. Returns their summaries.

    Each reference image is read and decoded once, and its no-reference scores and FID features
    computed once, for every submission. Each summary and per-image table is what ``score`` of
    that submission alone gives (apart from timings, creation time and reference-cache hits).
    Every submission's inputs are checked before any scoring: a problem in one stops all,
    naming it. Arguments as ``score``'s; with ``out``, the folder holds ``out/<label>/`` per
    submission (labels: ``labels_for``) and, for two or more, ``comparison.md`` and
    ``comparison.png`` as ``ggt score --compare`` writes them; it is replaced whole at the end.
    """
    labels = labels_for(predictions)
    if out:
        check_many_out(out, labels, predictions, reference, overwrite)
    scored, unweighted = _score(predictions, labels, reference, split=split, protocol=protocol, metrics=metrics,
                    device=device, batch_size=batch_size, workers=workers, allow_partial=allow_partial,
                    weights_dir=weights_dir, cache_dir=cache_dir, max_unzipped=max_unzipped, fid=fid,
                    progress=progress, kernel=kernel, revision=revision, named=True, judge=judge,
                    jpeg_decoder=jpeg_decoder)
    if out:
        report_folder.write_folder(out, lambda folder: _fill_many(folder, labels, scored, unweighted))
    return [summary for summary, _ in scored]


def _fill_many(folder: str, labels: list[str], scored: list[tuple[dict, list[dict]]],
               unweighted: list[str]) -> None:
    from ..atomic import write_text
    from . import compare

    for lb, (summary, rows) in zip(labels, scored):
        report.write(os.path.join(folder, lb), summary, rows, unweighted)
    if len(scored) > 1:
        summaries = compare.read([os.path.join(folder, lb) for lb in labels])
        write_text(os.path.join(folder, "comparison.md"), compare.compare(summaries))
        compare.plot(summaries, os.path.join(folder, "comparison.png"))


def _score(predictions: list[str], labels: list[str], reference: str, *, split: str, protocol: str,
           metrics: list[str] | None, device: str, batch_size: int, workers: int | None, allow_partial: bool,
           weights_dir: str | None, cache_dir: str | None, max_unzipped: int, fid: bool, progress: bool,
           kernel: str, revision: str | None, named: bool,
           judge: JudgeOptions | None = None,
           jpeg_decoder: str = "pillow") -> tuple[list[tuple[dict, list[dict]]], list[str]]:
    """(summary, per-image rows) per submission, and the metrics that ran without weights (never
    written); ``named``: errors name each submission by its label."""
    if metrics == ["available"]:
        metrics = available_metrics(protocol, weights_dir)
    proto = load_protocol(protocol, metrics)
    if fid:
        proto = proto.with_optional([m.name for m in proto.optional if m.kind == "SET"])
    # before any scoring: a bad judge option, a missing API key or a wrong prompt file fails first
    judged = Judge(judge, proto, cache_dir or cache.default_dir()) if judge else None
    files, device = check_setup(proto, device, weights_dir)
    preds = [open_predictions(p, max_unzipped) for p in predictions]
    refs = open_references(reference, split, revision)       # a bad input fails before models load
    scorers = make_scorers(proto, device, kernel)
    results = scoring.run_many(preds, refs, proto, scorers, labels=labels if named else None,
                              allow_partial=allow_partial, batch_size=batch_size,
                              workers=workers, cache_dir=cache_dir,
                              progress=progress, jpeg_decoder=jpeg_decoder)
    unweighted = [s.name for s in scorers if s.unweighted]
    out = []
    for p, lb, result in zip(preds, labels, results):
        summary = report.summarize(result, proto, refs=refs, preds=p, device=device_label(device),
                                   weight_files=files, label=lb, kernels=kernels(scorers))
        if jpeg_decoder != "pillow":        # absent: every image was decoded by Pillow
            summary["fingerprint"]["jpeg_decoder"] = f"torchvision decode_jpeg on {device_label(device)}"
        if judged:
            _add_judge(judged, summary, result.rows, refs, p)
        out.append((summary, result.rows))
    return out, unweighted


def _add_judge(judged: Judge, summary: dict, rows: list[dict], refs, preds) -> None:
    """Judge the scored pairs; their rows get the judge's columns, the summary its section."""
    from . import judge_report

    pairs = ((pid, lq, preds.read(pid)) for pid, lq in refs.iter_lq({r["id"] for r in rows}))
    outcome = judged.run(pairs, {r["id"]: r["category"] for r in rows})
    for r in rows:
        r.update(outcome.rows[r["id"]])
    summary["judge"] = judge_report.section(judged.describe(), outcome, rows, judged.options.budget)
    summary["fingerprint"]["judge"] = judge_report.fingerprint(summary["judge"])
