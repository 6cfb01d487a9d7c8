"""Paid calls: journalled, retried, rate-limited and budgeted the same way for every provider.

``Caller.call`` is the only path by which a request reaches a provider:

1. A call whose fingerprint the journal holds as ``ok`` or ``refused`` is not sent:
   its saved answer is returned (an interrupted run resumes without paying twice).
2. Before sending, the budget is checked: money spent (journal) + what calls in
   flight may cost + this call's estimate must stay within ``budget``. The estimate
   is the backend's ``estimate_cost()`` if it has one, else the highest cost seen for
   this kind of call; so the first wave of calls can pass the cap by at most
   ``concurrency`` calls when neither is known.
3. The attempt is journalled as ``sent`` (committed) before the request leaves.
4. :class:`TransientError` (429, 5xx, timeout) is retried with exponential backoff and
   full jitter, never sooner than the provider's ``retry_after``, up to ``max_attempts``
   per run; a refusal is final; :class:`BackendError` (and anything unexpected) is
   recorded and not retried.
The concurrency limit is a semaphore around the request only; backoff sleeps outside it.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ..atomic import publish_file
from ..errors import GGTError
from .backend import BackendError, TransientError
from .journal import Journal, PaidCall, fingerprint


class BudgetReached(GGTError):
    """The next call would pass ``--budget``."""

    exit_code = 3


class Stopped(Exception):
    """The run is stopping (signal or budget): no new request is sent."""


class PairFailed(Exception):
    """This pair's call failed for good in this run (recorded; a later run tries again)."""


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 60.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Full-jitter exponential backoff, at least the provider's retry_after."""
        cap = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return max(retry_after or 0.0, rng.uniform(0, cap))


@dataclass
class Answer:
    """What a paid call gave: ``status`` ok/refused, the model, a result file or text, its facts."""

    status: str
    model: str
    detail: str
    response: dict
    result_file: str | None = None
    reused: bool = False


class Caller:
    def __init__(self, journal: Journal, results_dir: str, *, concurrency: int, retry: RetryPolicy,
                 budget: float | None = None, currency: str = "USD", seed: int = 0):
        self.journal, self.results_dir, self.retry = journal, results_dir, retry
        self.budget, self.currency = budget, currency
        self.slots = asyncio.Semaphore(concurrency)
        self.stopping = asyncio.Event()
        self.stop_reason: str | None = None
        self.in_flight_cost = 0.0
        self.max_seen: dict[str, float] = {}     # answers not yet in the journal count too
        self.rng = random.Random(seed)

    def stop(self, reason: str) -> None:
        if not self.stopping.is_set():
            self.stop_reason = reason
            self.stopping.set()

    async def call(self, key: str, kind: str, fp_parts: tuple, provider: str, model: str, request: dict,
                   send: Callable[[], Awaitable[Any]], estimate: float | None = None) -> Answer:
        fp = fingerprint(kind, provider, model, *fp_parts)
        hit = self._reuse(self.journal.paid(fp))
        if hit is not None:
            return hit
        last = ""
        for attempt in range(1, self.retry.max_attempts + 1):
            self._check(kind, estimate)         # fail fast, before waiting for a slot
            est = 0.0
            try:
                async with self.slots:      # the limit covers the request only, not saving or sleeping
                    self._check(kind, estimate)
                    est = self._estimate(kind, estimate)
                    self.in_flight_cost += est      # until its cost is in the journal
                    call_id = self.journal.start_call(key, kind, fp, self.journal.attempts(fp) + 1,
                                                      provider, model, request)
                    result = await self._send(call_id, send)
                    if not isinstance(result, TransientError):    # its real price, before the slot frees
                        self.in_flight_cost += float(result.cost) - est
                        est = float(result.cost)
                        self.max_seen[kind] = max(self.max_seen.get(kind, 0.0), est)
                if not isinstance(result, TransientError):
                    return await self._record(call_id, fp, result)
            finally:
                self.in_flight_cost -= est
            self.journal.end_call(call_id, "transient", http_status=result.status,
                                  retry_after=result.retry_after, detail=str(result)[:500])
            last = str(result)
            if attempt < self.retry.max_attempts:
                await asyncio.sleep(self.retry.delay(attempt, result.retry_after, self.rng))
        raise PairFailed(f"{kind}: gave up after {self.retry.max_attempts} attempts ({last})")

    def _estimate(self, kind: str, estimate: float | None) -> float:
        if estimate is not None:
            return estimate
        return max(self.journal.max_cost(kind), self.max_seen.get(kind, 0.0))

    def _check(self, kind: str, estimate: float | None) -> None:
        if self.stopping.is_set():
            raise Stopped(self.stop_reason)
        if self.budget is None:
            return
        est = self._estimate(kind, estimate)
        spent = self.journal.spent(self.currency)
        if spent + self.in_flight_cost + est > self.budget + 1e-12:
            self.stop(f"budget of {self.budget:g} {self.currency} reached ({spent:.4f} spent)")
            raise Stopped(self.stop_reason)

    async def _send(self, call_id: int, send: Callable[[], Awaitable[Any]]) -> Any:
        """The provider's answer, or the TransientError to retry; anything else is final."""
        try:
            return await send()
        except TransientError as e:
            return e
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 (BackendError, or an SDK error no backend mapped)
            kind = "" if isinstance(e, BackendError) else f"{type(e).__name__}: "
            self.journal.end_call(call_id, "error", detail=f"{kind}{e}"[:1000])
            raise PairFailed(f"{kind}{e}") from None

    async def _record(self, call_id: int, fp: str, result: Any) -> Answer:
        status = getattr(result, "status", "ok")
        image, text = getattr(result, "image", None), getattr(result, "text", None)
        response = {"meta": getattr(result, "meta", {})}
        if text is not None:
            response["text"] = text
        path = sha = None
        if status == "ok" and image:
            path, sha = await asyncio.to_thread(self._save, fp, image)   # on disk before "ok" is
        self.journal.end_call(call_id, status, model=result.model, cost=float(result.cost),
                              currency=result.currency, cost_estimated=int(bool(result.cost_estimated)),
                              detail=getattr(result, "detail", "")[:1000], response=response,
                              result_file=path, result_sha256=sha)
        if status == "ok" and image is None and text is None:
            raise PairFailed("the provider answered ok with no image")
        return Answer(status, result.model, getattr(result, "detail", ""), response, path)

    def _save(self, fp: str, data: bytes) -> tuple[str, str]:
        sha = hashlib.sha256(data).hexdigest()
        rel = f"{fp[:2]}/{fp}"
        path = os.path.join(self.results_dir, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "wb") as f:
            f.write(data)
        publish_file(tmp, path)
        return rel, sha

    def _reuse(self, paid: PaidCall | None) -> Answer | None:
        if paid is None:
            return None
        if paid.status == "ok" and paid.result_file:
            path = os.path.join(self.results_dir, paid.result_file)
            if not os.path.isfile(path) or _sha(path) != paid.result_sha256:
                return None     # the saved image is gone or changed: the call must be made again
        return Answer(paid.status, paid.model, paid.detail, paid.response, paid.result_file, reused=True)


def _sha(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
