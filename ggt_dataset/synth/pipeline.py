"""One LQ photo through the pipeline: prompt -> edit -> quality control -> verdict in the journal.

The same :class:`Pipeline` runs under both engines (asyncio here, Ray actors there), so
their outputs are identical. Every paid step goes through :class:`~.calls.Caller`;
CPU steps (decoding, analysis, QC maths) run in threads so the event loop keeps the
provider busy. Files: the provider's answer is kept under ``.ggt-synth/results``
(the paid artefact, reused on resume); an accepted pair's HQ is linked (or, when QC
resized it, written) into the release by :mod:`.release`.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import GGTError
from . import qc as qc_mod
from .backend import EditRequest
from .calls import Answer, PairFailed
from .journal import KEPT, WAS_ACCEPTED, fingerprint
from .parts import Parts
from .prompts import PromptInput


def generator_label(backend: Any, model: str) -> str:
    label = f"{backend.name}:{model}"
    return label if backend.foundation_model else f"{label} (classical baseline, not a foundation model)"


class Pipeline:
    def __init__(self, parts: Parts):
        self.p = parts

    async def process(self, key: str) -> str:
        """Run one pair; returns its new state (pending when the run is stopping)."""
        from .calls import Stopped

        row = self.p.journal.pair(key)
        try:
            # the engine feeds keys it just listed, and only the run's scan (done by then) removes pairs
            assert row is not None, key
            return await self._process(row)
        except Stopped:
            return "pending"
        except (PairFailed, GGTError) as e:
            self.p.journal.update_pair(key, state="failed", reason=str(e)[:1000])
            return "failed"
        except Exception as e:  # noqa: BLE001 (one pair's surprise must not stop the other pairs' calls)
            where = os.path.join(self.p.lq_dir, key)
            self.p.journal.update_pair(key, state="failed", reason=f"{where}: {type(e).__name__}: {e}"[:1000])
            return "failed"

    async def _process(self, row: dict) -> str:
        from .inputs import decode_rgb, mime_of

        key, j = row["key"], self.p.journal
        data = await asyncio.to_thread(_read, os.path.join(self.p.lq_dir, key), row["lq_sha256"])
        rgb = await asyncio.to_thread(decode_rgb, data, key)
        mime = mime_of(data)
        if row["prompt"] is not None and self._edit_paid(row, row["prompt"]):
            prompt = row["prompt"]              # the prompt that was paid for, not a recomputed one
        else:
            known = json.loads(row["prompt_meta"]).get("analysis") if row["prompt_meta"] else None
            item = PromptInput(row["category"], rgb, known)
            prompt, meta = await self.p.prompter.prompt(item, self._asker(row, data, mime))
            j.update_pair(key, prompt=prompt, prompt_meta=meta)
        answer = await self._edit(row, data, mime, prompt)
        generator = generator_label(self.p.backend, answer.model)
        if answer.status == "refused":
            j.update_pair(key, state="refused", generator=generator, reason=f"refused: {answer.detail}"[:1000])
            return "refused"
        result_file = answer.result_file
        assert result_file is not None      # an ok edit answer is a saved image (Caller._record, Caller._reuse)
        hq_bytes = await asyncio.to_thread(_read_result, self.p.caller.results_dir, result_file)
        results, hq_file = await self._qc(row, rgb, hq_bytes, answer)
        state, decided_by = qc_mod.final_verdict(results), "qc"
        reason = "; ".join(r.summary() for r in results if r.verdict in ("fail", "review"))
        if state == "review" and row["decided_by"] in (WAS_ACCEPTED, KEPT):
            # accepted before: a review flag lists it in review.csv but leaves it in the release
            state, decided_by = "accepted", KEPT
            reason = f"accepted before, now flagged for review ({reason}); reject it in review.csv to drop it"
        j.update_pair(key, state=state, generator=generator, hq_file=hq_file[0], hq_sha256=hq_file[1],
                      qc=[r.as_dict() for r in results], reason=reason or None, decided_by=decided_by)
        return state

    def _edit_key(self, row: dict, prompt: str) -> tuple[tuple, int]:
        seed = int(fingerprint(row["key"], row["lq_sha256"])[:8], 16)
        return (row["lq_sha256"], prompt, seed), seed

    def _edit_paid(self, row: dict, prompt: str) -> bool:
        b = self.p.backend
        return self.p.journal.paid(fingerprint("edit", b.name, b.model, *self._edit_key(row, prompt)[0])) is not None

    async def _edit(self, row: dict, data: bytes, mime: str, prompt: str) -> Answer:
        b = self.p.backend
        parts, seed = self._edit_key(row, prompt)
        request = EditRequest(pair_id=row["key"], image=data, mime=mime, prompt=prompt,
                              width=row["lq_width"], height=row["lq_height"], seed=seed)
        estimate = b.estimate_cost(request) if hasattr(b, "estimate_cost") else None
        return await self.p.caller.call(
            row["key"], "edit", parts, b.name, b.model,
            {"prompt": prompt, "mime": mime, "width": request.width, "height": request.height, "seed": seed},
            lambda: b.edit(request), estimate)

    def _asker(self, row: dict, data: bytes, mime: str):
        vision = getattr(self.p.prompter, "vision", None)
        if vision is None:
            return None

        async def ask(kind: str, instruction: str, schema: dict | None = None):
            answer = await self.p.caller.call(
                row["key"], kind, (row["lq_sha256"], instruction, schema), vision.name, vision.model,
                {"instruction": instruction, "schema": schema}, lambda: vision.ask(data, mime, instruction, schema))
            return _Reply(answer.response.get("text", ""), answer.model)
        return ask

    async def _qc(self, row: dict, lq: np.ndarray, hq_bytes: bytes, answer: Answer):
        """Run the stages in order; returns their results and the HQ (file, sha256) to release."""
        from .inputs import decode_rgb

        results: list[qc_mod.StageResult] = []
        try:
            hq = await asyncio.to_thread(decode_rgb, hq_bytes, f"{answer.model} answer for {row['key']}")
        except GGTError as e:
            return [qc_mod.StageResult("validity", "fail", {}, f"unreadable image: {e}")], (None, None)
        hq_file = (answer.result_file, answer.result_sha256)
        answer_sha = hq_file[1]             # the provider's image, before any resize
        for name, cfg in self.p.qc.stages:
            result = await self._stage(name, cfg, row, lq, hq, results, answer_sha)
            if isinstance(result, tuple):
                result, kept = result
                if kept is not hq:
                    hq = kept
                    hq_file = await asyncio.to_thread(_save_png, self.p.caller.results_dir,
                                                      f"{answer.result_file}.resized.png", hq)
            results.append(result)
            if result.verdict == "fail" and self.p.qc.stop_at_fail:
                break
        return results, hq_file

    async def _stage(self, name: str, cfg: Any, row: dict, lq: np.ndarray, hq: np.ndarray,
                     earlier: list[qc_mod.StageResult], hq_sha256: str | None):
        if name == "validity":
            return await asyncio.to_thread(qc_mod.check_validity, cfg, lq, hq)
        if name == "fidelity":
            return await asyncio.to_thread(qc_mod.check_fidelity, cfg, lq, hq)
        if name == "quality":
            return await asyncio.to_thread((await self._nr(cfg)).check, lq, hq)
        if name == "judge":
            return await self._judge(cfg, row, lq, hq, hq_sha256)
        return qc_mod.check_review(cfg, earlier)

    async def _nr(self, cfg: Any):
        async with self.p.nr_lock:
            if self.p.nr is None:
                from .qc_quality import NRScorer

                self.p.nr = await asyncio.to_thread(NRScorer, cfg)
        return self.p.nr

    async def _judge(self, cfg: Any, row: dict, lq: np.ndarray, hq: np.ndarray,
                     hq_sha256: str | None) -> qc_mod.StageResult:
        from .qc_quality import (
            JUDGE_INSTRUCTION,
            JUDGE_SCHEMA,
            judge_result,
            side_by_side,
        )

        vision = self.p.judge_vision
        if vision is None:
            return qc_mod.StageResult("judge", "skip", {}, "no VLM configured for the judge")
        image = await asyncio.to_thread(side_by_side, lq, hq)
        answer = await self.p.caller.call(
            # identity: the two images' hashes and the instruction (the model is in every
            # fingerprint), not the side-by-side PNG's bytes, which an encoder update would change
            row["key"], "judge", (row["lq_sha256"], hq_sha256, JUDGE_INSTRUCTION), vision.name,
            vision.model, {"instruction": JUDGE_INSTRUCTION},
            lambda: vision.ask(image, "image/png", JUDGE_INSTRUCTION, JUDGE_SCHEMA))
        return judge_result(cfg, answer.response.get("text", ""), answer.model)


@dataclass(frozen=True)
class _Reply:
    text: str
    model: str


def _sha_bytes(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _read(path: str, sha256: str) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise GGTError(f"{path}: cannot be read ({e.strerror or e})") from None
    if _sha_bytes(data) != sha256:
        raise GGTError(f"{path}: changed since it was first scanned (sha256 differs); restore it, or "
                       "start a new OUT_RAW")
    return data


def _save_png(results_dir: str, rel: str, rgb: np.ndarray) -> tuple[str, str]:
    import io

    from PIL import Image

    from ..atomic import write_bytes

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    write_bytes(os.path.join(results_dir, rel), buf.getvalue())
    return rel, _sha_bytes(buf.getvalue())


def _read_result(results_dir: str, rel: str) -> bytes:
    with open(os.path.join(results_dir, rel), "rb") as f:
        return f.read()
