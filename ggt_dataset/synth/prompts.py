"""Prompts for the restoring model: fixed per category, or adapted to each image.

  fixed      one template per category (``TEMPLATES``), always followed by ``FIDELITY``,
             the constraints that keep the target a faithful ground truth.
  adaptive   the template is filled with what is wrong with this image. With a VLM
             (``vision``), the VLM looks at the LQ photo, names its content and
             degradations and writes the instruction; its structured answer is kept
             with the pair. Offline (no VLM), a heuristic analyser (:func:`analyse`)
             measures noise, blur, haze, darkness, compression and fading.

Whatever the VLM writes, ``FIDELITY`` is appended by us: the constraints are not the
VLM's to drop. The analyser cannot see rain or snow (no cheap estimate is reliable);
those categories come from folder names, ``--category`` or the VLM's description.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any, cast

import numpy as np

from ..errors import GGTError
from ..schema import CATEGORIES

FIDELITY = ("Keep everything else exactly as it is: the same content, framing, layout and "
            "perspective; do not add, remove or move any object or person; keep faces and "
            "identities, any text with its exact spelling, and the original colours and lighting "
            "intent. Return a photorealistic photograph of the same size, with no border, caption "
            "or watermark.")

TEMPLATES: dict[str, str] = {
    "mixed": "Restore this real-world photo: remove {degradations} and recover natural, sharp detail.",
    "rain": "Remove every rain streak, raindrop and rain-induced haze from this photo, and "
            "{degradations_clause}recover the detail hidden behind them.",
    "haze": "Remove the haze and fog from this photo, restoring clear visibility, natural contrast "
            "and true colours in the distance; also {degradations_clause}recover fine detail.",
    "snow": "Remove all falling snowflakes and snow streaks (not snow lying on the ground) from this "
            "photo, and {degradations_clause}recover the detail behind them.",
    "low_light": "Turn this low-light photo into a well-exposed one with natural brightness, remove "
                 "the noise this brings out, and {degradations_clause}keep light sources and night "
                 "mood plausible.",
    "old_photo": "Restore this old photograph: remove scratches, dust, stains, creases and fading, "
                 "{degradations_clause}recover detail; a black-and-white photo stays black-and-white.",
}
assert set(TEMPLATES) == set(CATEGORIES)

# Analyser thresholds: severity in [0, 1] above which a degradation is named in the prompt.
NAMED = 0.3
_SEVERITY_WORDS = ((0.7, "severe"), (0.45, "moderate"), (0.0, "mild"))

VLM_INSTRUCTION = (
    "You prepare an image-restoration request. Look at this low-quality photo and answer in JSON "
    "with: content (one sentence: what the photo shows, including any text and faces), category "
    "(one of: " + ", ".join(CATEGORIES) + "), degradations (a list of {type, severity: mild|moderate"
    "|severe}), and prompt (one or two sentences instructing an image-editing model to remove exactly "
    "these degradations from this photo, naming its content). Do not ask for any other change.")
VLM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "content": {"type": "string"},
        "category": {"type": "string", "enum": list(CATEGORIES)},
        "degradations": {"type": "array", "items": {"type": "object", "properties": {
            "type": {"type": "string"}, "severity": {"type": "string"}}}},
        "prompt": {"type": "string"},
    },
    "required": ["content", "category", "degradations", "prompt"],
}


@dataclass(frozen=True)
class Analysis:
    """Degradation severities in [0, 1], from cheap pixel statistics."""

    noise: float
    blur: float
    haze: float
    darkness: float
    compression: float
    fading: float

    def named(self) -> list[tuple[str, str]]:
        """(degradation, severity word) for those worth naming, strongest first."""
        words = {"noise": "noise", "blur": "blur", "haze": "haze", "darkness": "underexposure",
                 "compression": "compression artefacts", "fading": "fading"}
        found = sorted(((v, k) for k, v in asdict(self).items() if v >= NAMED), reverse=True)
        return [(words[k], next(w for t, w in _SEVERITY_WORDS if v >= t)) for v, k in found]

    def category(self) -> str:
        """The analyser's category for an image no folder or option names."""
        if self.darkness >= 0.5:
            return "low_light"
        if self.haze >= 0.5:
            return "haze"
        if self.fading >= 0.5:
            return "old_photo"
        return "mixed"


def _clip(x: float) -> float:
    return float(min(1.0, max(0.0, x)))


def analyse(rgb: np.ndarray) -> Analysis:
    """Estimate degradations of an 8-bit RGB image (reuses the classical restorer's estimators)."""
    import cv2

    from ..restore import dark_channel, noise_sigma

    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    sharp = float(cv2.Laplacian(gray, cv2.CV_64F).var())
    g = gray.astype(np.float64) / 255.0
    sat = float(cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)[:, :, 1].mean()) / 255.0
    return Analysis(
        noise=_clip(noise_sigma(gray) / 15.0),
        blur=_clip((3.0 - np.log10(sharp + 1.0)) / 2.0),
        haze=_clip((float(dark_channel(rgb.astype(np.float32) / 255.0).mean()) - 0.2) / 0.4),
        darkness=_clip((0.4 - g.mean()) / 0.3),
        compression=_clip(_blockiness(gray) - 1.0),
        fading=_clip(((0.25 - sat) / 0.2 + (0.2 - g.std()) / 0.15) / 2.0),
    )


def _blockiness(gray: np.ndarray) -> float:
    """Mean step across 8-px block edges over the mean step elsewhere (1 = no JPEG blocks)."""
    d = np.abs(np.diff(gray.astype(np.float64), axis=1))
    if d.shape[1] < 16:
        return 1.0
    edge = d[:, 7::8].mean()
    inner = np.delete(d, np.s_[7::8], axis=1).mean()
    return float(edge / inner) if inner > 0 else 1.0


def fill(category: str, named: list[tuple[str, str]]) -> str:
    """The category's template with the named degradations, then the fidelity constraints."""
    listed = ", ".join(f"{w} {d}" for d, w in named)
    text = TEMPLATES[category].format(
        degradations=listed or "noise, blur, compression artefacts and colour casts",
        degradations_clause=f"remove the {listed}, " if listed else "")
    return f"{text} {FIDELITY}"


@dataclass(frozen=True)
class PromptInput:
    category: str
    rgb: np.ndarray = field(repr=False)
    analysis: dict | None = None        # the analyser's result when the scan already ran it


# The engine's journalled, retried, budgeted way to ask a VLM: (kind, instruction, schema) -> reply.
AskVLM = Callable[[str, str, "dict | None"], Awaitable[Any]]


class FixedPrompter:
    name = "fixed"
    vision = None

    async def prompt(self, item: PromptInput, ask: AskVLM | None = None) -> tuple[str, dict]:
        return fill(item.category, []), {"prompter": "fixed"}


class AdaptivePrompter:
    """A VLM writes the instruction when ``vision`` is given; otherwise the analyser fills the template."""

    def __init__(self, vision=None):
        self.vision = vision
        self.name = f"adaptive:{vision.name}:{vision.model}" if vision else "adaptive:heuristic"

    async def prompt(self, item: PromptInput, ask: AskVLM | None = None) -> tuple[str, dict]:
        import asyncio

        analysis = Analysis(**item.analysis) if item.analysis else await asyncio.to_thread(analyse, item.rgb)
        meta: dict[str, Any] = {"prompter": self.name, "analysis": asdict(analysis)}
        if self.vision is None or ask is None:
            return fill(item.category, analysis.named()), meta
        reply = await ask("prompt", VLM_INSTRUCTION, VLM_SCHEMA)
        # the reply's text, or the reply itself when it is the text (getattr with a default types as Any | None)
        answer = parse_vlm_answer(cast(str, getattr(reply, "text", reply)))
        meta["vlm"] = {"model": getattr(reply, "model", ""), "answer": answer}
        if not answer.get("prompt"):
            meta["vlm"]["fallback"] = "the VLM's answer held no prompt; the analyser's prompt is used"
            return fill(item.category, analysis.named()), meta
        return f"{answer['prompt'].strip()} {FIDELITY}", meta


def parse_vlm_answer(text: str) -> dict:
    """The VLM's JSON answer (a ```json fence tolerated); {} when it is not JSON."""
    body = text.strip()
    if body.startswith("```"):
        body = body.strip("`").removeprefix("json").strip()
    try:
        answer = json.loads(body)
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}


PROMPTERS = ("fixed", "adaptive")


def make_prompter(name: str, vision=None):
    if name == "fixed":
        return FixedPrompter()
    if name == "adaptive":
        return AdaptivePrompter(vision)
    raise GGTError(f"--prompter {name!r}: expected one of {', '.join(PROMPTERS)}")
