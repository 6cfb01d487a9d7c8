"""The D/F judge, defined once for synthesis QC (qc_quality.py) and ``ggt score --judge`` (eval/judge.py).

A VLM looks at a degraded photo and a restoration of it and scores two things, each 0-100,
higher is better: D, how much of the degradation was removed, and F, how faithfully the
input's content was kept. DF = sqrt(D * F) per image, the geometric mean HarnessIR uses
(PolyU-VCLab/HarnessIR harness/dfscore.py): a result cannot buy a good DF with one axis
alone, since regenerating the scene wins D and loses F, and returning the input wins F and
loses D.

Our own prompt, ``ggt-df-v1`` (:data:`JUDGE_INSTRUCTION`), shows the two photos side by side
in one PNG (:func:`side_by_side`) and asks for ``removal`` and ``fidelity``. An answer is read
by :func:`parse_scores` whatever the prompt: a score that is not a number in 0-100 makes the
answer unreadable; it is never clamped, since clamping would dress "the model ignored the
scale" up as a judgement (HarnessIR discards such scores too).
"""

from __future__ import annotations

import hashlib
import io
import math
from dataclasses import dataclass

import numpy as np

GGT_PROMPT = "ggt-df-v1"
JUDGE_INSTRUCTION = (
    "The image shows two photos side by side: LEFT is a degraded real-world photo, RIGHT is a "
    "restoration of it. Score the RIGHT photo from 0 to 100 on two things and answer in JSON: "
    "removal (how completely noise, blur, rain, haze, snow, darkness, fading and artefacts are "
    "removed) and fidelity (how faithfully it keeps the left photo's content, layout, text, faces "
    "and colours, without invented or missing objects); add a one-sentence reason.")
JUDGE_SCHEMA = {"type": "object", "properties": {
    "removal": {"type": "number"}, "fidelity": {"type": "number"}, "reason": {"type": "string"}},
    "required": ["removal", "fidelity", "reason"]}
GGT_KEYS = ("removal", "fidelity")      # the answer's fields holding D and F under ggt-df-v1
SCALE_MAX = 100


def instruction_sha256() -> str:
    """What the protocol pins for ggt-df-v1: an edit of the instruction must come with a new name."""
    return hashlib.sha256(JUDGE_INSTRUCTION.encode()).hexdigest()


@dataclass(frozen=True)
class Scores:
    d: float
    f: float
    reason: str

    @property
    def df(self) -> float:
        return df_score(self.d, self.f)


def df_score(d: float, f: float) -> float:
    """The per-image composite: the geometric mean of D and F (both 0-100)."""
    return math.sqrt(d * f)


def parse_scores(text: str, keys: tuple[str, str] = GGT_KEYS, reason_keys: tuple[str, ...] = ("reason",)
                 ) -> Scores | str:
    """D and F from a VLM's JSON answer, or why the answer cannot be read (a sentence).

    >>> parse_scores('{"removal": 80, "fidelity": 45, "reason": "clean"}').df
    60.0
    >>> print(parse_scores('{"removal": 180, "fidelity": 45}'))
    removal is 180, not a number from 0 to 100
    """
    from .prompts import parse_vlm_answer

    answer = parse_vlm_answer(text)
    if not answer:
        return f"not a JSON object: {text[:120]!r}"
    values = []
    for key in keys:
        v = answer.get(key)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= SCALE_MAX:
            return f"{key} is {v!r}, not a number from 0 to {SCALE_MAX}" if key in answer else f"no {key} in {text[:120]!r}"
        values.append(float(v))
    reason = " ".join(str(answer[k]) for k in reason_keys if answer.get(k))
    return Scores(values[0], values[1], reason[:300])


def side_by_side(lq: np.ndarray, hq: np.ndarray, side: int = 768) -> bytes:
    """LQ left, HQ right, each at most ``side`` px tall, as PNG: what the judge looks at."""
    from PIL import Image

    h = min(side, lq.shape[0])
    pics = [Image.fromarray(a).resize((max(1, round(a.shape[1] * h / a.shape[0])), h)) for a in (lq, hq)]
    canvas = Image.new("RGB", (pics[0].width + pics[1].width + 8, h), (255, 255, 255))
    canvas.paste(pics[0], (0, 0))
    canvas.paste(pics[1], (pics[0].width + 8, 0))
    buf = io.BytesIO()
    canvas.save(buf, format="PNG")
    return buf.getvalue()
