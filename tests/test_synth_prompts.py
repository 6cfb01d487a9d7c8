"""Prompts: fixed templates with fidelity constraints; the analyser; adaptive prompts from a VLM."""

from __future__ import annotations

import asyncio
import json

import numpy as np

from ggt_dataset.schema import CATEGORIES
from ggt_dataset.synth import prompts
from ggt_dataset.synth.prompts import FIDELITY, PromptInput


def _item(rgb, category="mixed"):
    return PromptInput(category, rgb)


def _scene(seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:96, 0:128]
    img = np.stack([x * 2, y * 2, (x + y)], axis=2) % 256
    return (img * 0.7 + 40 + rng.random(img.shape) * 4).clip(0, 255).astype(np.uint8)


def test_fixed_prompt_per_category_keeps_fidelity_constraints():
    for cat in CATEGORIES:
        text, meta = asyncio.run(prompts.FixedPrompter().prompt(_item(_scene(), cat)))
        assert text.endswith(FIDELITY) and "{" not in text and meta == {"prompter": "fixed"}
    assert "rain" in prompts.fill("rain", []) and "faces" in FIDELITY and "text" in FIDELITY


def test_analyser_sees_darkness_noise_and_picks_a_category():
    clean = prompts.analyse(_scene())
    dark = prompts.analyse((_scene() * 0.15).astype(np.uint8))
    noisy_img = (_scene() + np.random.default_rng(1).normal(0, 25, _scene().shape)).clip(0, 255).astype(np.uint8)
    noisy = prompts.analyse(noisy_img)
    assert dark.darkness > 0.5 and dark.category() == "low_light" and clean.darkness < 0.3
    assert noisy.noise > clean.noise and noisy.noise >= prompts.NAMED
    assert any(d == "noise" for d, _ in noisy.named())
    text, meta = asyncio.run(prompts.AdaptivePrompter().prompt(_item(noisy_img)))
    assert "noise" in text and text.endswith(FIDELITY) and meta["analysis"]["noise"] == noisy.noise


class _VLMReply:
    def __init__(self, text):
        self.text, self.model = text, "vlm-test"


def test_adaptive_with_vlm_stores_its_answer_and_appends_constraints():
    answer = {"content": "a cat on a sofa", "category": "low_light",
              "degradations": [{"type": "noise", "severity": "severe"}],
              "prompt": "Brighten this photo of a cat on a sofa and remove the heavy noise."}
    asked = []

    async def ask(kind, instruction, schema=None):
        asked.append((kind, schema))
        return _VLMReply("```json\n" + json.dumps(answer) + "\n```")

    vision = type("V", (), {"name": "gemini", "model": "m"})()
    p = prompts.make_prompter("adaptive", vision)
    text, meta = asyncio.run(p.prompt(_item(_scene()), ask))
    assert text == answer["prompt"] + " " + FIDELITY
    assert meta["vlm"]["answer"] == answer and asked == [("prompt", prompts.VLM_SCHEMA)]

    async def bad(kind, instruction, schema=None):
        return _VLMReply("I cannot help with that")

    text, meta = asyncio.run(p.prompt(_item(_scene()), bad))
    assert text.endswith(FIDELITY) and "fallback" in meta["vlm"]
