"""Quality control: ordered, configurable stages, each recording a score and a verdict per pair.

Stages (defaults chosen for real-world photos and their generated targets):

  validity   HQ decodes, keeps the LQ's aspect ratio (within 4%), is not blank (luminance
             std above 2 levels), adds no uniform border (at most 2% of a side more than
             the LQ has). 4% because providers answer fixed sizes: Gemini's per-aspect
             sizes differ from the nominal ratio by up to 2.8% (1184x864 for 4:3) or 3.6%
             (1152x896, in other listings); OpenAI's are exact to 16 px when the backend
             asks for the LQ's aspect (it does by default). A target of another size is
             then resized to the LQ's size, whole (Lanczos up, area down), so the pair is
             pixel-aligned: providers fill the requested frame with the whole scene, so a
             plain resize undoes the few-percent stretch, where a centre crop would cut
             content off one axis. Misplaced content is fidelity's job to catch.
  fidelity   structure at low resolution: rank (Spearman) correlation of the two 64-px
             luminance images, insensitive to brightening and contrast changes, which
             restoration is meant to make; fail below 0.6, review below 0.75. Colour
             drift: mean chroma distance (CIELAB a*b*) at 32 px; fail above 25, review
             above 15 (a just-noticeable difference is about 2.3).
  quality    a no-reference IQA metric of the evaluation suite (pyiqa) on HQ and LQ; the
             gain (in the metric's "better" direction) must reach the metric's margin;
             a gain between 0 and the margin goes to review. See ``qc_quality.py``.
  judge      optional: a VLM scores degradation removal and fidelity (0-100) looking at
             LQ and HQ side by side; fail below 50, review below 70 (either score).
  review     the manual queue: ``flagged`` (default) sends pairs some stage marked for
             review; ``all`` every pair that passed; ``none`` nobody (flags then pass).

The first ``fail`` stops the pipeline (later stages, some paid, are skipped) unless
``stop_at_fail`` is false (``ggt synth compare`` scores everything).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import yaml

from ..errors import GGTError
from ..eval.metric_facts import FACTS


class QCConfigError(GGTError):
    """A QC configuration file is malformed."""


@dataclass(frozen=True)
class Validity:
    aspect_tolerance: float = 0.04       # see the module docstring: providers' fixed sizes
    min_std: float = 2.0            # 8-bit levels
    max_border: float = 0.02        # fraction of a side
    match_size: bool = True


@dataclass(frozen=True)
class Fidelity:
    size: int = 64
    fail_structure: float = 0.6
    review_structure: float = 0.75
    colour_size: int = 32
    fail_colour_drift: float = 25.0
    review_colour_drift: float = 15.0


@dataclass(frozen=True)
class Quality:
    metrics: tuple[str, ...] = ("musiq", "piqe")    # the first one that runs here is used
    margin: float | None = None                     # None: the metric's default (qc_quality.py)
    device: str = "cpu"


@dataclass(frozen=True)
class Judge:
    vlm: str = "gemini"
    model: str | None = None
    fail_score: float = 50.0
    review_score: float = 70.0


@dataclass(frozen=True)
class Review:
    mode: str = "flagged"           # none | flagged | all

    def __post_init__(self) -> None:
        if self.mode not in ("none", "flagged", "all"):
            raise QCConfigError(f"review mode must be none, flagged or all, got {self.mode!r}")


_STAGE_CLASSES = {"validity": Validity, "fidelity": Fidelity, "quality": Quality, "judge": Judge,
                  "review": Review}


@dataclass(frozen=True)
class QCConfig:
    stages: tuple[tuple[str, Any], ...] = (("validity", Validity()), ("fidelity", Fidelity()),
                                           ("quality", Quality()), ("review", Review()))
    stop_at_fail: bool = True

    def __post_init__(self) -> None:
        names = [n for n, _ in self.stages]
        if len(set(names)) != len(names):
            raise QCConfigError(f"QC stages repeat: {names}")
        if "review" in names and names[-1] != "review":
            raise QCConfigError("the review stage must come last (it acts on the other stages' flags)")

    def stage(self, name: str) -> Any:
        return dict(self.stages).get(name)

    def describe(self) -> dict:
        return {"stages": [{n: _as_dict(s)} for n, s in self.stages], "stop_at_fail": self.stop_at_fail}

    def fingerprint(self) -> str:
        import hashlib

        return hashlib.sha256(json.dumps(self.describe(), sort_keys=True).encode()).hexdigest()[:16]

    def with_judge(self, vlm: str, model: str | None = None) -> QCConfig:
        staged = [(n, s) for n, s in self.stages if n not in ("judge", "review")]
        tail = [(n, s) for n, s in self.stages if n == "review"]
        return QCConfig(tuple(staged + [("judge", Judge(vlm=vlm, model=model))] + tail), self.stop_at_fail)

    def with_review(self, mode: str) -> QCConfig:
        staged = [(n, s) for n, s in self.stages if n != "review"]
        return QCConfig(tuple(staged + [("review", Review(mode))]), self.stop_at_fail)


def _as_dict(stage: Any) -> dict:
    return {f.name: (list(v) if isinstance(v := getattr(stage, f.name), tuple) else v) for f in fields(stage)}


def load_config(path: str | None) -> QCConfig:
    """A QC YAML file: ``stages:`` a list of ``{name: {settings}}`` in order; ``stop_at_fail``."""
    if path is None:
        return QCConfig()
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise QCConfigError(f"{path}: cannot read the QC configuration ({e})") from None
    if not isinstance(data, dict) or set(data) - {"stages", "stop_at_fail"}:
        raise QCConfigError(f"{path}: expected a mapping with 'stages' (and 'stop_at_fail')")
    stages = []
    for i, item in enumerate(data.get("stages") or []):
        name, settings = _stage_item(item, f"{path}: stages[{i}]")
        try:
            value = _STAGE_CLASSES[name](**{k: tuple(v) if isinstance(v, list) else v
                                            for k, v in (settings or {}).items()})
        except TypeError as e:
            raise QCConfigError(f"{path}: stage {name!r}: {e}") from None
        stages.append((name, value))
    return QCConfig(tuple(stages), bool(data.get("stop_at_fail", True)))


def _stage_item(item: Any, where: str) -> tuple[str, dict]:
    if isinstance(item, str):
        item = {item: {}}
    if not isinstance(item, dict) or len(item) != 1:
        raise QCConfigError(f"{where}: each stage is a name or {{name: {{settings}}}}, got {item!r}")
    (name, settings), = item.items()
    if name not in _STAGE_CLASSES:
        raise QCConfigError(f"{where}: unknown stage {name!r}; expected one of {list(_STAGE_CLASSES)}")
    if settings is not None and not isinstance(settings, dict):
        raise QCConfigError(f"{where}: settings of {name!r} must be a mapping")
    return name, settings or {}


@dataclass
class StageResult:
    stage: str
    verdict: str
    scores: dict[str, float] = field(default_factory=dict)
    note: str = ""

    def summary(self) -> str:
        scores = ", ".join(f"{k}={v:.4g}" for k, v in self.scores.items())
        return f"{self.stage} {self.verdict}" + (f" ({scores})" if scores else "") + (f": {self.note}" if self.note else "")

    def as_dict(self) -> dict:
        return {"stage": self.stage, "verdict": self.verdict, "scores": self.scores, "note": self.note}


def final_verdict(results: list[StageResult]) -> str:
    """accepted, rejected or review, from the stages' verdicts."""
    verdicts = [r.verdict for r in results]
    if "fail" in verdicts:
        return "rejected"
    return "review" if verdicts and verdicts[-1] == "review" and results[-1].stage == "review" else "accepted"


def band(value: float, fail: float, review: float, higher_is_better: bool = True) -> str:
    """pass / review / fail for a score with a fail bound and a review bound."""
    sign = 1 if higher_is_better else -1
    if sign * value < sign * fail:
        return "fail"
    return "review" if sign * value < sign * review else "pass"


# -- validity -------------------------------------------------------------------------
def check_validity(cfg: Validity, lq: np.ndarray, hq: np.ndarray) -> tuple[StageResult, np.ndarray]:
    """The result and the HQ to keep (resized to the LQ's size when ``match_size``)."""
    import cv2

    (lh, lw), (hh, hw) = lq.shape[:2], hq.shape[:2]
    drift = abs((hw / hh) / (lw / lh) - 1.0)
    scores = {"aspect_drift": round(drift, 6), "scale": round(hw / lw, 6)}
    if drift > cfg.aspect_tolerance:
        return StageResult("validity", "fail", scores, f"aspect {hw}x{hh} vs LQ {lw}x{lh}"), hq
    note = ""
    if (hh, hw) != (lh, lw) and cfg.match_size:
        hq = cv2.resize(hq, (lw, lh), interpolation=cv2.INTER_LANCZOS4 if hw < lw else cv2.INTER_AREA)
        note = f"resized from {hw}x{hh} to {lw}x{lh}"
    std = float(cv2.cvtColor(hq, cv2.COLOR_RGB2GRAY).std())
    border = max(0.0, _border(hq) - _border(lq))
    scores.update(std=round(std, 4), border=round(border, 6))
    if std < cfg.min_std:
        return StageResult("validity", "fail", scores, "blank image"), hq
    if border > cfg.max_border:
        return StageResult("validity", "fail", scores, f"added border ({border:.1%} of a side)"), hq
    return StageResult("validity", "pass", scores, note), hq


def _border(rgb: np.ndarray, level: float = 3.0) -> float:
    """Widest run of near-uniform rows/columns at any edge, as a fraction of that side."""
    gray = rgb.astype(np.float32).mean(axis=2)
    widest = 0.0
    for lines in (gray, gray[::-1], gray.T, gray.T[::-1]):
        flat = lines.std(axis=1) < level
        run = int(np.argmin(flat)) if not flat.all() else len(flat)
        widest = max(widest, run / len(flat))
    return widest


# -- fidelity -------------------------------------------------------------------------
def _small(rgb: np.ndarray, side: int) -> np.ndarray:
    import cv2

    h, w = rgb.shape[:2]
    scale = side / min(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def structure(lq: np.ndarray, hq: np.ndarray, side: int = 64) -> float:
    """Spearman correlation of the two images' luminance at ``side`` px (1 = same layout)."""
    import cv2

    a = cv2.cvtColor(_small(lq, side), cv2.COLOR_RGB2GRAY).ravel().astype(np.float64)
    b = cv2.cvtColor(_small(hq, side), cv2.COLOR_RGB2GRAY).ravel().astype(np.float64)
    ra, rb = _ranks(a), _ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        return 1.0 if ra.std() == rb.std() else 0.0
    return float(np.corrcoef(ra, rb)[0, 1])


def _ranks(x: np.ndarray) -> np.ndarray:
    order = x.argsort(kind="stable")
    ranks = np.empty_like(x)
    ranks[order] = np.arange(len(x), dtype=np.float64)
    # ties share their mean rank, so a flat region does not invent structure
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return sums[inverse] / counts[inverse]


def colour_drift(lq: np.ndarray, hq: np.ndarray, side: int = 32) -> float:
    """Mean CIELAB chroma (a*, b*) distance between the two images at ``side`` px."""
    import cv2

    a = cv2.cvtColor(_small(lq, side).astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)[:, :, 1:]
    b = cv2.cvtColor(_small(hq, side).astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)[:, :, 1:]
    return float(np.sqrt(((a - b) ** 2).sum(axis=2)).mean())


def check_fidelity(cfg: Fidelity, lq: np.ndarray, hq: np.ndarray) -> StageResult:
    s, c = structure(lq, hq, cfg.size), colour_drift(lq, hq, cfg.colour_size)
    verdicts = [band(s, cfg.fail_structure, cfg.review_structure),
                band(c, cfg.fail_colour_drift, cfg.review_colour_drift,
                     higher_is_better=FACTS["fidelity_colour_drift"].higher_is_better)]
    verdict = "fail" if "fail" in verdicts else "review" if "review" in verdicts else "pass"
    return StageResult("fidelity", verdict, {"structure": round(s, 6), "colour_drift": round(c, 4)})


def check_review(cfg: Review, earlier: list[StageResult]) -> StageResult:
    flagged = [r.stage for r in earlier if r.verdict == "review"]
    if cfg.mode == "all" or (cfg.mode == "flagged" and flagged):
        return StageResult("review", "review", {}, "flagged by " + ", ".join(flagged) if flagged else "all")
    return StageResult("review", "pass", {}, "")
