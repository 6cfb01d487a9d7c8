"""Paid calls: journalled, retried, rate-limited and budgeted the same way for every provider.

``Caller.call`` is the only path by which a request reaches a provider:

1. A call whose fingerprint the journal holds as ``ok`` or ``refused`` is not sent:
   its saved answer is returned (an interrupted run resumes without paying twice).
   If its saved file is gone, the old row is marked ``stale`` and the call is made again.
2. Budget: each request reserves its estimate in the journal in the same transaction
   that records it as ``sent``, and is refused if spent + every reservation (all
   processes) + the estimate would pass ``budget``. The estimate is the larger of the
   backend's ``estimate_cost()`` and the highest cost seen for this kind of call; a
   kind with neither (no estimate, no answer yet) is sent one call at a time until one
   answers. The bound, precisely: spent <= budget + the sum, over calls in flight, of
   (real cost - estimate) where positive; with no estimate that is at most one call per
   kind per process (per Ray actor) over the budget, and nothing once a price is known
   and estimates are not below real prices.
3. The attempt is journalled as ``sent`` (committed) before the request leaves.
4. :class:`TransientError` (429, 5xx, timeout) is retried with exponential backoff and
   full jitter, never sooner than the provider's ``retry_after``, up to ``max_attempts``
   per run. A 429 or a ``retry_after`` moves a shared "not before" time, so every call
   backs off, not only the one that was told. A ``retry_after`` above ``max_delay`` gives
   the call up for this run (recorded). After ``stop_after`` (20) transient
   failures in a row (all calls together) the run stops sending: the provider is down or
   throttling. Backoff sleeps end at once when the run stops (Ctrl-C). A refusal is
   final; :class:`BackendError` (and anything unexpected) is recorded and not retried; an
   :class:`AuthError` (a wrong API key) also stops the run: every call would fail alike.
The concurrency limit is a semaphore around the request (and the shared back-off wait);
a call's own backoff sleep is outside it.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ..atomic import write_bytes
from ..errors import GGTError
from ..hashing import file_sha256
from .backend import AuthError, BackendError, Declined, TransientError
from .journal import Journal, PaidCall, fingerprint, result_rel


class BudgetReached(GGTError):
    """The next call would pass ``--budget``."""

    exit_code = 3


class Stopped(Exception):
    """The run is stopping (signal or budget): no new request is sent."""


class PairFailed(Exception):
    """This pair's call failed for good in this run (recorded; a later run tries again).

    ``declined``: the provider answered with no content (:class:`~.backend.Declined`, a refusal)."""

    declined = False


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 60.0
    stop_after: int = 20         # transient failures in a row (all calls) that stop the run

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
    result_sha256: str | None = None      # of the saved file, hashed once when saved


class Caller:
    def __init__(self, journal: Journal, results_dir: str, *, concurrency: int, retry: RetryPolicy,
                 budget: float | None = None, currency: str = "USD", seed: int = 0, keep_declined: bool = False):
        self.journal, self.results_dir, self.retry = journal, results_dir, retry
        # keep_declined: a VLM's Declined is journalled as 'refused', so it is final and never paid
        # for again (ggt score --judge); synthesis asks again on its next run.
        self.keep_declined = keep_declined
        self.budget, self.currency = budget, currency
        self.slots = asyncio.Semaphore(concurrency)
        self.stopping = asyncio.Event()
        self.stop_reason: str | None = None
        self.not_before = 0.0                   # loop time before which no request leaves (shared backoff)
        self.transient_run = 0                  # transient failures in a row, all calls together
        self.probes: dict[str, asyncio.Lock] = {}
        self.rng = random.Random(seed)

    def stop(self, reason: str) -> None:
        if not self.stopping.is_set():
            self.stop_reason = reason
            self.stopping.set()

    async def call(self, key: str, kind: str, fp_parts: tuple, provider: str, model: str, request: dict,
                   send: Callable[[], Awaitable[Any]], estimate: float | None = None) -> Answer:
        fp = fingerprint(kind, provider, model, *fp_parts)
        hit = await self._reuse(self.journal.paid(fp))
        if hit is not None:
            return hit
        last = ""
        for attempt in range(1, self.retry.max_attempts + 1):
            probe = await self._probe(kind, estimate)
            try:
                async with self.slots:      # the limit covers the request only, not saving or backoff
                    await self._wait_turn()     # a shared back-off: in the slot, so no waiter slips past
                    call_id = self._start(key, kind, fp, provider, model, request, estimate)
                    result = await self._send(call_id, send)
                    if not isinstance(result, TransientError) and self.budget is not None:
                        self.journal.hold(call_id, float(result.cost))   # its real price, until recorded
                if not isinstance(result, TransientError):
                    self.transient_run = 0
                    return await self._record(call_id, fp, result)
            finally:
                if probe is not None:
                    probe.release()
            last = self._transient(call_id, result)
            if result.retry_after is not None and result.retry_after > self.retry.max_delay:
                raise PairFailed(f"{kind}: the provider asked to wait {result.retry_after:g} s, more than "
                                 f"max_delay ({self.retry.max_delay:g} s); given up for this run ({last})")
            if attempt < self.retry.max_attempts:
                delay = self.retry.delay(attempt, result.retry_after, self.rng)
                if result.status == 429 or result.retry_after is not None:     # everyone backs off
                    self.not_before = max(self.not_before, asyncio.get_running_loop().time() + delay)
                else:
                    await self._sleep(delay)
        raise PairFailed(f"{kind}: gave up after {self.retry.max_attempts} attempts ({last})")

    def _start(self, key: str, kind: str, fp: str, provider: str, model: str, request: dict,
               estimate: float | None) -> int:
        if self.stopping.is_set():
            raise Stopped(self.stop_reason)
        reserve = max(estimate or 0.0, self.journal.max_cost(kind, self.currency))
        call_id = self.journal.start_call(key, kind, fp, provider, model, request, currency=self.currency,
                                          reserve=reserve, budget=self.budget)
        if call_id is None:     # the spend is reported at the end, once calls in flight have answered
            self.stop(f"budget of {self.budget:g} {self.currency} reached")
            raise Stopped(self.stop_reason)
        return call_id

    async def _probe(self, kind: str, estimate: float | None) -> asyncio.Lock | None:
        """Under a budget, a kind of call with no known cost goes one at a time until one answers."""
        if self.budget is None or estimate is not None or self.journal.cost_known(kind):
            return None
        lock = self.probes.setdefault(kind, asyncio.Lock())
        await lock.acquire()
        if self.journal.cost_known(kind):
            lock.release()
            return None
        return lock

    def _transient(self, call_id: int, error: TransientError) -> str:
        self.journal.end_call(call_id, "transient", http_status=error.status, retry_after=error.retry_after,
                              detail=str(error)[:500])
        self.transient_run += error.provider_failing
        if self.transient_run >= self.retry.stop_after:
            self.stop(f"{self.transient_run} transient failures in a row (last: {error}); the provider "
                      "is failing or throttling: run the same command again later")
        return str(error)

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake at once (raising Stopped) when the run stops."""
        try:
            await asyncio.wait_for(self.stopping.wait(), seconds)
        except TimeoutError:
            return
        raise Stopped(self.stop_reason)

    async def _wait_turn(self) -> None:
        while (left := self.not_before - asyncio.get_running_loop().time()) > 0:
            await self._sleep(left)
        if self.stopping.is_set():
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
            self.transient_run = 0          # the provider answered
            kind = "" if isinstance(e, BackendError) else f"{type(e).__name__}: "
            status = "refused" if self.keep_declined and isinstance(e, Declined) else "error"
            self.journal.end_call(call_id, status, detail=f"{kind}{e}"[:1000], cost=float(getattr(e, "cost", 0.0)),
                                  currency=getattr(e, "currency", None) or self.currency)
            if isinstance(e, AuthError):        # every other call would be refused the same way
                self.stop(f"the provider refused the credentials: {e}; fix the API key")
            failed = PairFailed(f"{kind}{e}")
            failed.declined = isinstance(e, Declined)
            raise failed from None

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
        if status == "ok" and not image and text is None:      # None, or b"": nothing was saved
            raise PairFailed("the provider answered ok with no image")
        return Answer(status, result.model, getattr(result, "detail", ""), response, path, sha)

    def _save(self, fp: str, data: bytes) -> tuple[str, str]:
        rel = result_rel(fp)
        write_bytes(os.path.join(self.results_dir, rel), data)
        return rel, hashlib.sha256(data).hexdigest()

    async def _reuse(self, paid: PaidCall | None) -> Answer | None:
        if paid is None:
            return None
        if paid.status == "ok" and paid.result_file:
            path = os.path.join(self.results_dir, paid.result_file)
            # hashed off the event loop: a re-run checks every saved image while other calls are in flight
            sha = await asyncio.to_thread(file_sha256, path) if os.path.isfile(path) else None
            problem = ("is missing" if sha is None else
                       "has changed (sha256 differs)" if sha != paid.result_sha256 else None)
            if problem:     # the saved image is gone or changed: say so, and make the call again
                self.journal.mark_stale(paid.id, f"result file {path} {problem}; the call was made again")
                return None
        return Answer(paid.status, paid.model, paid.detail, paid.response, paid.result_file, paid.result_sha256)

