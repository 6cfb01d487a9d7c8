"""``ggt score --judge``: an optional VLM fidelity judge, D, F and DF = sqrt(D * F) per image.

D (degradation removed) and F (fidelity to the input kept) are scored 0-100 by a VLM that
sees the LQ input and the prediction, never the ground truth (as HarnessIR's VLM-DF); the
prompt is ours or HarnessIR's (judge_prompts.py), the model and prompt pinned by the protocol
and recorded in the report's fingerprint. They cost money, and are no part of any derived score.

Every call goes through the synthesis pipeline's :class:`~ggt_dataset.synth.calls.Caller`:
journalled, retried, priced and budgeted as ``ggt synth``'s are. The journal is a per-user
cache, ``<cache-dir>/judge/journal.sqlite``; a call is keyed by the kind ("judge"), provider,
model, prompt sha256, the text sent, and the input's and prediction's sha256, so scoring the
same predictions again, into any --out, pays nothing twice. A VLM's refusal is final, as a
refused edit is in ``ggt synth``: journalled as ``refused`` and reused; any other failure (an
error after retries) is journalled but not kept as an answer, so a later run asks again.

``--judge-budget`` counts this command's spending only, all its submissions together (the
journal's earlier spending is the baseline). The bound is the Caller's: until one judge call has answered, calls go one at a
time; after that each reserves the highest cost seen, so with prices in ggt's table (or
--judge-price) and answers of similar length, spent <= budget; the excess is at most what calls
in flight cost above that estimate. When the budget stops the run, the images not yet judged
are left unjudged and the report says PARTIAL for the judge columns; the other metrics are whole.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from dataclasses import dataclass, field

from ..synth.df_judge import parse_scores
from .judge_prompts import JudgeError, Prompt
from .judge_prompts import load as load_prompt

PROVIDERS = ("gemini", "openai")
CONCURRENCY = 8                 # judge calls in flight
KIND = "judge"


@dataclass(frozen=True)
class JudgeOptions:
    """What the user asked for: ``--judge PROVIDER`` and its settings."""

    provider: str
    model: str | None = None        # None: the protocol's model for the provider
    prompt: str = "ggt"
    budget: float | None = None     # USD for this run
    price: str | None = None        # TEXT_IN,TEXT_OUT in USD per 1M tokens, for a model not in ggt's table
    base_url: str | None = None


@dataclass
class Outcome:
    """The judge's run over one submission: per-image results and what it cost."""

    rows: dict[str, dict] = field(default_factory=dict)     # id -> judge_d, judge_f, judge_df, judge_status, judge_note
    stop_reason: str | None = None
    spent: float = 0.0
    sent: int = 0
    models: set[str] = field(default_factory=set)           # as the provider answered


class Judge:
    """Built before any scoring (a bad option, key or prompt fails first); ``run`` judges one submission."""

    def __init__(self, options: JudgeOptions, protocol, cache_dir: str):
        from ..synth.backends import make_vision
        from ..synth.parts import client_options
        from .judge_prompts import section

        if options.provider not in PROVIDERS:
            raise JudgeError(f"--judge {options.provider!r}: expected one of {', '.join(PROVIDERS)}")
        if options.budget is not None and not options.budget >= 0:
            raise JudgeError(f"--judge-budget {options.budget!r}: expected an amount >= 0 in USD")
        models = section(protocol)["models"]
        model = options.model or models.get(options.provider)
        if not model:
            raise JudgeError(f"protocol {protocol.name!r} pins no judge model for {options.provider}; pass --judge-model")
        self.options, self.folder = options, os.path.join(cache_dir, "judge")
        self.prompt: Prompt = load_prompt(protocol, options.prompt, os.path.join(self.folder, "prompts"))
        settings = client_options(options.base_url, judge_price=options.price)["judge"]
        # a client per run (each runs its own event loop); this first one checks the key and the price
        self.client = lambda: make_vision(options.provider, model, **settings)
        self.model = model
        self.cap: float | None = None       # the journal's spending at which the budget stops the command
        probe = self.client()               # a missing API key fails here
        asyncio.run(probe.aclose())
        if options.budget is not None and not getattr(probe, "price_known", True):
            raise JudgeError(f"--judge-budget needs the price of {options.provider} model {model!r}, which is not "
                             "in ggt's price table: pass --judge-price TEXT_IN,TEXT_OUT (USD per 1M tokens)")

    def describe(self) -> dict:
        return {"provider": self.options.provider, "model_requested": self.model,
                "prompt": self.prompt.name, "prompt_sha256": self.prompt.sha256, "prompt_files": list(self.prompt.files)}

    def run(self, pairs, categories: dict[str, str]) -> Outcome:
        """Judge ``pairs`` ((id, LQ bytes, prediction bytes), streamed) of the given categories."""
        return asyncio.run(self._run(pairs, categories))

    async def _run(self, pairs, categories: dict[str, str]) -> Outcome:
        from ..synth.calls import Caller, RetryPolicy
        from ..synth.journal import Journal

        journal = Journal(os.path.join(self.folder, "journal.sqlite"))
        currency = "USD"
        spent0, sent0 = journal.spent(currency), _calls(journal)
        if self.options.budget is not None and self.cap is None:       # one budget for the whole command
            self.cap = journal.committed(currency) + self.options.budget
        caller = Caller(journal, os.path.join(self.folder, "results"), concurrency=CONCURRENCY,
                        retry=RetryPolicy(), budget=self.cap, currency=currency, keep_declined=True)
        outcome, vision = Outcome(), self.client()
        try:
            await self._each(caller, vision, pairs, categories, outcome)
        finally:
            await vision.aclose()
            outcome.stop_reason = caller.stop_reason
            outcome.spent = round(journal.spent(currency) - spent0, 8)
            outcome.sent = _calls(journal) - sent0
            journal.close()
        return outcome

    async def _each(self, caller, vision, pairs, categories: dict[str, str], outcome: Outcome) -> None:
        """One task per pair, at most 2 x CONCURRENCY holding their images at once."""
        room = asyncio.Semaphore(2 * CONCURRENCY)
        tasks = []
        it = iter(pairs)
        while True:
            await room.acquire()
            item = await asyncio.to_thread(next, it, None)
            if item is None:
                break
            tasks.append(asyncio.create_task(self._guarded(room, caller, vision, item, categories[item[0]], outcome)))
        await asyncio.gather(*tasks)

    async def _guarded(self, room, caller, vision, item, category: str, outcome: Outcome) -> None:
        try:
            pair_id, lq, pred = item
            outcome.rows[pair_id] = await self._one(caller, vision, pair_id, lq, pred, category, outcome)
        finally:
            room.release()

    async def _one(self, caller, vision, pair_id: str, lq: bytes, pred: bytes, category: str,
                   outcome: Outcome) -> dict:
        from ..synth.calls import PairFailed, Stopped

        request = await asyncio.to_thread(self.prompt.request, category, lq, pred)
        parts = (self.prompt.sha256, request.sha256(), _sha(lq), _sha(pred))
        (image, mime), more = request.images[0], request.images[1:]
        try:
            answer = await caller.call(
                pair_id, KIND, parts, vision.name, vision.model, {"prompt": self.prompt.name, "id": pair_id},
                lambda: vision.ask(image, mime, request.text, self.prompt.schema, more_images=more,
                                   system=request.system))
        except Stopped as e:
            return _row("unjudged", str(e))
        except PairFailed as e:
            return _row("refused" if e.declined else "failed", str(e))
        if answer.status == "refused":          # a refusal journalled by an earlier run: final, not paid again
            return _row("refused", answer.detail)
        outcome.models.add(answer.model)
        scores = parse_scores(answer.response.get("text", ""), self.prompt.keys, self.prompt.reason_keys)
        if isinstance(scores, str):
            return _row("malformed", f"{answer.model}: unreadable answer ({scores})")
        return {"judge_d": scores.d, "judge_f": scores.f, "judge_df": scores.df, "judge_status": "ok",
                "judge_note": scores.reason}


def _row(status: str, note: str) -> dict:
    return {"judge_d": None, "judge_f": None, "judge_df": None, "judge_status": status, "judge_note": note[:300]}


def _calls(journal) -> int:
    return sum(n for by_status in journal.call_counts().values() for n in by_status.values())


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
