"""The QC stages that score with models: a no-reference IQA metric (quality gain) and a VLM judge.

Quality uses the evaluation suite's own pyiqa wrapper (``eval.metrics.Scorer``) and
metric facts (``eval/metric_facts.py``): a metric of the ``ggt`` protocol (musiq, maniqa, clipiqa, topiq_nr,
niqe) brings its direction and weight files from there; ``piqe`` and ``entropy`` are
the classical no-reference metrics that run offline. The config lists metrics in order
of preference; the first whose weight files are in place is used, and the record names
it (``qc_quality_<metric>_hq``), so a fallback is never silent. Nothing is downloaded.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..errors import GGTError
from ..eval.metric_facts import FACTS, OFFLINE_NR, RANKED
from .df_judge import JUDGE_INSTRUCTION, JUDGE_SCHEMA, parse_scores, side_by_side  # noqa: F401 (the pipeline's names)
from .qc import Judge, Quality, StageResult, band

if TYPE_CHECKING:     # for annotations: at run time eval.protocol is imported when a metric is chosen
    from ..eval.protocol import MetricSpec


@dataclass(frozen=True)
class Chosen:
    spec: MetricSpec
    skipped: tuple[str, ...]  # preferred metrics that could not run here, with the reason


def choose_metric(names: tuple[str, ...]) -> Chosen:
    """The first metric in ``names`` that can run here (weights present), and why others could not."""
    from ..eval import protocol, weights
    from ..eval.protocol import MetricSpec

    proto = protocol.load("ggt")
    skipped: list[str] = []
    for name in names:
        if name in OFFLINE_NR:
            return Chosen(MetricSpec(name=name, pyiqa=name, kind="NR", better=FACTS[name].better), tuple(skipped))
        try:
            spec = proto.metric(name)
        except GGTError:
            skipped.append(f"{name}: not a no-reference metric of the ggt protocol or {sorted(OFFLINE_NR)}")
            continue
        if spec.kind != "NR":
            skipped.append(f"{name}: a {spec.kind} metric, not no-reference")
            continue
        if spec.better not in RANKED:        # a gain needs a sign: AFINE-NR's is not established
            skipped.append(f"{name}: its direction is {spec.better}, so no gain can be judged by it")
            continue
        missing = weights.resolve(spec)[1]
        if missing:
            skipped.append(f"{name}: weight files missing ({missing[0]})")
            continue
        return Chosen(spec, tuple(skipped))
    raise GGTError("QC quality: none of the metrics " + ", ".join(names) + " can run here:\n  "
                   + "\n  ".join(skipped) + "\nadd piqe (runs offline) to the stage's metrics")


class NRScorer:
    """One metric, built once per process, scoring one image at a time under a lock (pyiqa state)."""

    def __init__(self, cfg: Quality):
        from ..eval.metrics import Scorer

        self.cfg = cfg
        self.chosen = choose_metric(cfg.metrics)
        self.scorer = Scorer(self.chosen.spec, cfg.device)
        self.lock = threading.Lock()
        facts = FACTS.get(self.chosen.spec.name)
        self.margin = cfg.margin if cfg.margin is not None else facts.margin if facts else 0.0

    def score(self, rgb: np.ndarray) -> float:
        import torch

        x = torch.from_numpy(np.array(rgb, copy=True)).permute(2, 0, 1)[None].float() / 255.0
        with self.lock:
            return float(self.scorer(x)[0])

    def check(self, lq: np.ndarray, hq: np.ndarray) -> StageResult:
        spec = self.chosen.spec
        lq_s, hq_s = self.score(lq), self.score(hq)
        gain = (hq_s - lq_s) if spec.higher_is_better else (lq_s - hq_s)
        scores = {f"{spec.name}_lq": round(lq_s, 6), f"{spec.name}_hq": round(hq_s, 6), "gain": round(gain, 6)}
        if not all(map(math.isfinite, (lq_s, hq_s))):
            return StageResult("quality", "review", {}, f"{spec.name} gave a non-finite score")
        verdict = band(gain, 0.0, self.margin) if self.margin > 0 else ("pass" if gain >= 0 else "fail")
        note = f"{spec.name} ({spec.better} is better) gain {gain:.4g}, margin {self.margin:g}"
        if self.chosen.skipped:
            note += "; fell back from " + ", ".join(s.split(":")[0] for s in self.chosen.skipped)
        return StageResult("quality", verdict, scores, note)


def judge_result(cfg: Judge, text: str, model: str) -> StageResult:
    scores = parse_scores(text)
    if isinstance(scores, str):
        return StageResult("judge", "review", {}, f"{model}: unreadable answer ({scores})")
    values = {"removal": scores.d, "fidelity": scores.f, "geomean": round(scores.df, 4)}
    verdict = band(min(scores.d, scores.f), cfg.fail_score, cfg.review_score)
    return StageResult("judge", verdict, values, f"{model}: {scores.reason[:200]}")
