"""The GGT-100K evaluation suite: pinned IQA protocols over the test set (``ggt score``).

    from ggt_dataset.eval import score
    summary = score("outputs/", "ggt-100k/", out="report/", metrics=["psnr", "ssim"])

Modules, one step each: protocol (YAML -> frozen dataclass), predictions and
references (where the images come from), decode (bytes -> RGB by documented
rules), weights (what learned metrics need), metrics (pyiqa, pinned), engine
(decode once, batch, run every metric), cache (ground-truth scores kept across
submissions), report (tables, summary, plots, comparison), baselines.
"""

from .api import build_scorers, score

__all__ = ["build_scorers", "score"]
