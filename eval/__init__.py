"""The GGT-100K evaluation suite: pinned IQA protocols over the test set (``ggt score``).

    from ggt_dataset.eval import score
    summary = score("outputs/", "ggt-100k/", out="report/", metrics=["psnr", "ssim"])

Modules, one step each: protocol (YAML -> frozen dataclass), predictions and
references (where the images come from), decode (bytes -> RGB by documented
rules), weights (what learned metrics need), metrics (pyiqa, pinned), scoring
(decode once, batch, run every metric), cache (ground-truth scores kept across
submissions), report (tables, summary, plots, comparison), baselines.

``score`` and ``build_scorers`` are imported on first use: the API brings torch and
pyiqa, and importing any module of this package (``ggt score --help``, the viewer's
use of a report) runs this file first.
"""


def __getattr__(name: str):
    if name in ("build_scorers", "score"):   # PEP 562
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["build_scorers", "score"]
