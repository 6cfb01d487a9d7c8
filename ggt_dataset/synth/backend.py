"""The one interface every image-editing backend and every VLM implements.

A backend turns (LQ image, prompt) into a restored image. It does not retry,
sleep or count money: the engine does that from what the backend reports,
so that every provider is journalled, retried and budgeted the same way.

Contract:
- ``edit`` returns an :class:`EditResult`. A refusal (safety filter, policy) is a
  result with ``status="refused"``, never an exception: it is final and journalled.
- A failure worth retrying (HTTP 429, 5xx, timeout, connection reset) raises
  :class:`TransientError`, with ``retry_after`` when the provider said so.
- Anything else (bad key, bad request, malformed image in the response, an answer
  with no image that is not a refusal) raises :class:`BackendError`; the engine
  records it and does not retry it in this run (the pair is tried on the next run).
- ``estimate_cost(request)`` (optional) returns an upper estimate of one call's cost,
  so that a budget holds from the first call; ``price_known`` (optional, default
  true) is false when the backend cannot price its calls (``--budget`` then needs
  ``--price``).
- ``cost`` is in the provider's currency (``currency``), as the provider prices
  it for this call (estimated from its published price table when the response
  carries no price; ``cost_estimated`` says which).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from ..errors import GGTError

Status = Literal["ok", "refused"]


@dataclass(frozen=True)
class EditRequest:
    pair_id: str            # the LQ image's id (relative path without extension)
    image: bytes            # the LQ file's bytes, as read from disk
    mime: str               # "image/png", "image/jpeg", ...
    prompt: str
    width: int
    height: int
    seed: int | None = None


@dataclass(frozen=True)
class EditResult:
    status: Status
    image: bytes | None                 # encoded image (PNG/JPEG/WebP) when status == "ok"
    model: str                          # the exact model id that answered
    cost: float = 0.0
    currency: str = "USD"
    cost_estimated: bool = False
    detail: str = ""                    # refusal reason, finish reason, ...
    meta: dict[str, Any] = field(default_factory=dict)   # JSON-able response facts, no image bytes


class BackendError(GGTError):
    """A failure that retrying in this run will not fix (bad key, bad request, unreadable response).

    ``cost`` is what the provider billed for it when the answer said (a text-only answer
    to an edit, say); the journal records it.
    """

    def __init__(self, message: str, *, cost: float = 0.0, currency: str = "USD"):
        super().__init__(message)
        self.cost, self.currency = cost, currency


class Declined(BackendError):
    """A VLM answered with no content: it refused, its safety filter blocked the request, or it
    stopped before writing anything. Billed all the same (``cost``)."""


class AuthError(BackendError):
    """The provider refused the credentials (a wrong or revoked API key): every later call would
    fail the same way, so the run stops sending after the first."""


class TransientError(Exception):
    """A failure that may pass: HTTP 429, 5xx, a timeout, a dropped connection."""

    provider_failing = True     # counts toward RetryPolicy.stop_after (a lost Ray worker does not)

    def __init__(self, message: str, retry_after: float | None = None, status: int | None = None):
        super().__init__(message)
        self.retry_after, self.status = retry_after, status


@runtime_checkable
class Backend(Protocol):
    name: str                   # "gemini", "openai", "diffusers", "classical"
    model: str                  # model id sent to the provider (or the local model)
    foundation_model: bool      # False for the classical baseline: reports say "baseline"

    async def edit(self, request: EditRequest) -> EditResult: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class VisionReply:
    text: str
    model: str
    cost: float = 0.0
    currency: str = "USD"
    cost_estimated: bool = False
    meta: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class VisionModel(Protocol):
    """A VLM that looks at an image and answers an instruction (adaptive prompts, QC judge)."""

    name: str
    model: str

    async def ask(self, image: bytes, mime: str, instruction: str,
                  json_schema: dict[str, Any] | None = None, *,
                  more_images: tuple[tuple[bytes, str], ...] = (), system: str | None = None) -> VisionReply:
        """``image`` first, then ``more_images`` ((bytes, mime) each), in that order; ``system``: a
        system instruction sent before them (HarnessIR's D/F prompt is one)."""
        ...

    async def aclose(self) -> None: ...
