"""GGT IQA: the ``ggt score`` protocols as an ``evaluate`` metric.

    import evaluate
    metric = evaluate.load("eval/ggt_iqa")          # offline, from this folder
    metric.compute(predictions=[pil, ...], references=[pil, ...], metrics=["psnr", "ssim"])

Same protocol files, decode rules and engine as ``ggt score``, so the numbers are the same.
"""

import datasets
import evaluate
from ggt_dataset.eval import api, report, scoring
from ggt_dataset.eval.memory import in_memory
from ggt_dataset.eval.metrics import kernels

_DESCRIPTION = """Full-reference and no-reference image quality under a pinned GGT protocol
(pyiqa metrics with fixed colour space, border crop, size-mismatch policy and aggregation).
See cards/metric_card.md."""

_KWARGS = """
Args:
    predictions: list of PIL images (restored outputs).
    references: list of PIL images (ground truth), same order.
    protocol: "ggt" (default), "ntire", or a path to a protocol YAML.
    metrics: optional subset of the protocol's metrics, e.g. ["psnr", "ssim"]; None (default)
        runs them all, an empty list is an error.
    categories: optional list of category names, one per pair, for per-category means.
    device: "auto" (default), "cpu" or "cuda".
    allow_partial: score the pairs that can be scored and leave out the others (a size
        mismatch beyond the protocol's limit, an unreadable image); default False, an error.
Returns:
    one mean per metric (finite values only), "per_category" means, "nonfinite" counts,
    "failed" (the pairs left out under allow_partial, with the reason), and the protocol's
    name, version and sha256.
"""

_CITATION = """@article{kong2026ggt,
  title={GGT-100K: Generative Ground Truth for Real-World Image Restoration},
  author={Kong and others},
  year={2026}
}"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS)
class GgtIqa(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION, citation=_CITATION, inputs_description=_KWARGS,
            features=datasets.Features({"predictions": datasets.Image(), "references": datasets.Image()}),
            reference_urls=["https://github.com/chaofengc/IQA-PyTorch"])

    def _compute(self, predictions, references, protocol="ggt", metrics=None, categories=None,
                 device="auto", allow_partial=False):
        proto = api.load_protocol(protocol, metrics)
        scorers, files, device = api.build_scorers(proto, device)
        preds, refs = in_memory(predictions, references, categories)
        result = scoring.run(preds, refs, proto, scorers, progress=False, allow_partial=allow_partial,
                            partial_option="allow_partial=True")
        summary = report.summarize(result, proto, refs=refs, preds=preds, device=device,
                                   weight_files=files, label="evaluate", kernels=kernels(scorers))
        out = {name: v["mean"] for name, v in summary["overall"].items()}
        out.update(summary["derived"]["overall"])
        out["per_category"] = {c: {n: v["mean"] for n, v in m.items()}
                               for c, m in summary["per_category"].items()}
        out["nonfinite"] = {n: v["nonfinite"] for n, v in summary["overall"].items()}
        out["failed"] = summary["counts"]["failed"]        # left out under allow_partial
        out["protocol"] = proto.name
        out["protocol_version"] = proto.version
        out["protocol_sha256"] = proto.sha256()
        return out
