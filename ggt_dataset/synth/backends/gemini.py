"""Nano Banana 2 (Gemini 3.1 Flash Image) as a restoration backend, through ``google-genai``.

GGT-100K's HQ targets were made with Nano-Banana-2. One call sends the LQ image as an
inline part plus the prompt to ``client.aio.models.generate_content`` with
``response_modalities=["TEXT", "IMAGE"]`` and reads the image part of the answer
(https://ai.google.dev/gemini-api/docs/image-generation, "Image editing").

Model id: the Gemini API models page and changelog list Nano Banana 2 as
``gemini-3.1-flash-image`` (GA on 2026-05-28; the ``-preview`` id was shut down on
2026-06-25). Third-party notes (LiteLLM discussion #44983, Oct 2026) report a
``gemini-nano-banana-2.1`` and a shutdown of ``gemini-3.1-flash-image`` on 2026-10-29;
Google's own pages as indexed here do not confirm either, so the default stays the
documented id and ``model=`` switches it.

Errors follow backend.py's contract: the SDK's ``errors.APIError`` carries the HTTP
code (429/5xx/408 transient, other 4xx final), transport timeouts and resets are
transient, and a refusal is a result, never an exception. The SDK's own retries are
switched off (``HttpRetryOptions(attempts=1)``) because the engine retries and journals.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any, TypedDict

from ..backend import AuthError, BackendError, EditRequest, EditResult, TransientError
from ._common import (
    Price,
    Priced,
    api_key,
    check_image,
    parse_duration,
    parse_retry_after,
    price_for,
    provider_errors,
    require,
)

DEFAULT_MODEL = "gemini-3.1-flash-image"
ENV_KEYS = ("GEMINI_API_KEY", "GOOGLE_API_KEY")   # the order google-genai itself reads them

# USD per 1M tokens, Gemini Developer API paid tier, standard (not batch) rates, from
# https://ai.google.dev/gemini-api/docs/pricing as transcribed on 2026-07..2026-10 by several
# independent listings (the page itself was not readable from here), checked 2026-11-26:
#   gemini-3.1-flash-image: input $0.50 (text/image), output $3.00 text+thinking, $60 image
#     (1120 tokens = $0.067 for a 1K image);
#   gemini-3-pro-image: input $2.00, output $12.00 text+thinking, $120 image ($0.134 per 1K image);
#   gemini-3.5-flash (the default VLM): input $1.50, output $9.00.
PRICES: dict[str, Price] = {
    "gemini-3.1-flash-image": Price(text_input=0.50, text_output=3.00, image_output=60.0),
    "gemini-3-pro-image": Price(text_input=2.00, text_output=12.00, image_output=120.0),
    "gemini-3.5-flash": Price(text_input=1.50, text_output=9.00),
}

# What an edit's cost estimate assumes (an upper bound, so that --budget holds from the first
# call): image output tokens per ImageConfig.image_size, the larger of Nano Banana 2's and
# Nano Banana Pro's published counts (1K 1120 both; 2K 1680 / 1120; 4K 2520 / 2000; the
# pricing listings above, unconfirmed on Google's page); the input image at Gemini 3's default
# media resolution, 1120 tokens; the prompt at one token per 2 characters; and 1000 tokens of
# text and thinking output. The journal then uses the highest cost seen, if higher.
IMAGE_OUT_TOKENS = {None: 1120, "512": 747, "1K": 1120, "2K": 1680, "4K": 2520}
IMAGE_IN_TOKENS = 1120
TEXT_OUT_ALLOWANCE = 1000

# Finish reasons that mean "the safety or policy system refused": final, journalled as
# refused. Any other answer without an image (STOP with text only, MAX_TOKENS, OTHER,
# RECITATION, NO_IMAGE, ...) is a BackendError: not retried in this run, tried again on the
# next. From google.genai.types.FinishReason (google-genai 3.x).
REFUSAL_REASONS = frozenset({"SAFETY", "IMAGE_SAFETY", "PROHIBITED_CONTENT", "IMAGE_PROHIBITED_CONTENT",
                             "BLOCKLIST", "SPII", "MODEL_ARMOR"})

# Aspect ratios the image models accept (ImageConfig.aspect_ratio; image-generation docs).
ASPECT_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
_TRANSIENT_CODES = {408, 429}


def make_client(key: str, base_url: str | None, timeout: float) -> Any:
    """A ``google.genai.Client`` with SDK retries off and the timeout in milliseconds."""
    genai = require("google.genai", "the gemini backend")
    from google.genai import types

    options = types.HttpOptions(timeout=int(timeout * 1000), base_url=base_url,
                                retry_options=types.HttpRetryOptions(attempts=1))
    return genai.Client(api_key=key, http_options=options)


def transport_errors() -> tuple[type[BaseException], ...]:
    """Connection-level failures of whichever HTTP stack the SDK picked (aiohttp or httpx)."""
    found: list[type[BaseException]] = [TimeoutError, asyncio.TimeoutError, ConnectionError]
    for module, name in (("aiohttp", "ClientError"), ("httpx2", "TransportError"), ("httpx", "TransportError")):
        try:
            found.append(getattr(__import__(module), name))
        except (ImportError, AttributeError):
            pass
    return tuple(found)


def map_error(e: BaseException, model: str) -> BaseException:
    """The backend.py exception for an SDK or transport error (the error itself if unknown)."""
    from google.genai import errors

    if isinstance(e, errors.APIError):
        code = int(e.code or 0)
        what = f"Gemini {model}: HTTP {code} {e.status or ''} {e.message or ''}".strip()
        if code in _TRANSIENT_CODES or code >= 500:
            return TransientError(what, retry_after=_retry_after(e), status=code)
        # a wrong key is 400 API_KEY_INVALID on the Gemini API, 401/403 behind proxies
        if code in (401, 403) or (code == 400 and "key" in str(e.message).lower()):
            return AuthError(f"{what} (check GEMINI_API_KEY)")
        return BackendError(f"{what} (the request was rejected; it will not be retried)")
    if isinstance(e, transport_errors()):
        return TransientError(f"Gemini {model}: {type(e).__name__}: {e or 'timed out'}")
    return e


def _retry_after(e: Any) -> float | None:
    seconds = parse_retry_after(getattr(e.response, "headers", None))
    if seconds is not None:
        return seconds
    details = (e.details or {}).get("error", e.details) if isinstance(e.details, dict) else {}
    for d in details.get("details", []) if isinstance(details, dict) else []:
        if str(d.get("@type", "")).endswith("google.rpc.RetryInfo"):
            return parse_duration(d.get("retryDelay"))
    return None


def usage_cost(usage: Any, price: Price | None, image_answer: bool) -> tuple[float, dict[str, int]]:
    """Cost of one call from ``usage_metadata``; image output tokens at the image rate."""
    if usage is None:
        return 0.0, {}
    cand = usage.candidates_token_count or 0
    details = usage.candidates_tokens_details or []
    image_out = sum(d.token_count or 0 for d in details if str(getattr(d.modality, "value", d.modality)) == "IMAGE")
    if image_answer and not details:
        image_out = cand                         # no breakdown: price it all as image (upper bound)
    text_out = cand - image_out + (usage.thoughts_token_count or 0)
    tokens = {"prompt": usage.prompt_token_count or 0, "image_out": image_out, "text_out": text_out}
    if price is None:
        return 0.0, tokens
    return price.cost(text_in=tokens["prompt"], text_out=text_out, image_out=image_out), tokens


def nearest_aspect(width: int, height: int) -> str:
    """The supported aspect ratio closest to width:height (in log space), so output keeps its shape."""
    target = math.log(width / height)
    return min(ASPECT_RATIOS, key=lambda r: abs(math.log(int(r.split(":")[0]) / int(r.split(":")[1])) - target))


class _Answered(TypedDict):
    """The EditResult fields an answer has whether it holds an image or a refusal."""

    model: str
    cost: float
    cost_estimated: bool
    meta: dict[str, Any]


class GeminiBackend(Priced):
    """Image editing with a Gemini image model (default: Nano Banana 2).

    Args:
        model: Gemini model id (default ``gemini-3.1-flash-image``).
        api_key: the key; default ``$GEMINI_API_KEY``, else ``$GOOGLE_API_KEY``.
        base_url: API root override (a proxy, or ``FakeAPIServer.gemini_base_url`` in tests).
        timeout: seconds per request before it counts as a transient failure.
        image_size: ``"1K"``, ``"2K"`` or ``"4K"``; None leaves the model's default.
        match_aspect: ask for the supported aspect ratio nearest the LQ image's.
        price: a :class:`Price` for a model missing from :data:`PRICES`.
    """

    name = "gemini"
    foundation_model = True

    def __init__(self, model: str | None = None, *, api_key: str | None = None, base_url: str | None = None,
                 timeout: float = 120.0, image_size: str | None = None, match_aspect: bool = True,
                 price: Price | None = None):
        self.model = model or DEFAULT_MODEL
        self.image_size, self.match_aspect = image_size, match_aspect
        self._price = price_for(PRICES, self.model, price)
        self._client = make_client(resolve_key(api_key), base_url, timeout)

    def estimate_cost(self, request: EditRequest) -> float | None:
        """An upper estimate of one edit's cost (assumptions above :data:`IMAGE_OUT_TOKENS`)."""
        if self._price is None:
            return None
        return self._price.cost(text_in=len(request.prompt) // 2 + 16, image_in=IMAGE_IN_TOKENS,
                                text_out=TEXT_OUT_ALLOWANCE,
                                image_out=IMAGE_OUT_TOKENS.get(self.image_size, max(IMAGE_OUT_TOKENS.values())))

    async def edit(self, request: EditRequest) -> EditResult:
        from google.genai import types

        contents = [types.Part.from_bytes(data=request.image, mime_type=request.mime),
                    types.Part.from_text(text=request.prompt)]
        started = time.monotonic()
        with provider_errors(map_error, self.model):
            response = await self._client.aio.models.generate_content(
                model=self.model, contents=contents, config=self._config(request))
        return self._result(response, time.monotonic() - started)

    def _config(self, request: EditRequest) -> Any:
        from google.genai import types

        aspect = nearest_aspect(request.width, request.height) if self.match_aspect else None
        image_config = (types.ImageConfig(aspect_ratio=aspect, image_size=self.image_size)
                        if aspect or self.image_size else None)
        return types.GenerateContentConfig(response_modalities=["TEXT", "IMAGE"], seed=request.seed,
                                           image_config=image_config)

    def _result(self, response: Any, seconds: float) -> EditResult:
        candidate = response.candidates[0] if response.candidates else None
        parts = (candidate.content.parts or []) if candidate is not None and candidate.content else []
        image = next((p.inline_data for p in parts
                      if p.inline_data and (p.inline_data.mime_type or "").startswith("image/")), None)
        cost, tokens = usage_cost(response.usage_metadata, self._price, image is not None)
        finish = enum_name(getattr(candidate, "finish_reason", None))
        meta = {"finish_reason": finish, "tokens": tokens, "seconds": round(seconds, 3),
                "response_id": response.response_id, "price_known": self.price_known}
        answered_by = response.model_version or self.model
        common: _Answered = {"model": answered_by, "cost": cost, "cost_estimated": True, "meta": meta}
        if image is not None and image.data:
            width, height, fmt = check_image(image.data, f"Gemini {answered_by}", cost)
            meta.update(width=width, height=height, format=fmt)
            return EditResult(status="ok", image=image.data, detail=finish or "", **common)
        detail = refusal_detail(response, candidate, parts)
        feedback = response.prompt_feedback
        if (feedback is not None and feedback.block_reason) or finish in REFUSAL_REASONS:
            return EditResult(status="refused", image=None, detail=detail, **common)
        raise BackendError(f"Gemini {answered_by} answered without an image and without a safety refusal "
                           f"({detail[:300]}); the pair is tried again on the next run", cost=cost)

    async def aclose(self) -> None:
        await self._client.aio.aclose()


def resolve_key(explicit: str | None) -> str:
    return api_key(explicit, ENV_KEYS, "Gemini")


def enum_name(value: Any) -> str | None:
    return None if value is None else str(getattr(value, "value", value))


def refusal_detail(response: Any, candidate: Any, parts: list[Any]) -> str:
    """Why no image came back: the prompt block reason, else the finish reason and any text."""
    feedback = response.prompt_feedback
    if feedback is not None and feedback.block_reason:
        message = f": {feedback.block_reason_message}" if feedback.block_reason_message else ""
        return f"prompt blocked: {enum_name(feedback.block_reason)}{message}"
    if candidate is None:
        return "no candidates and no block reason in the response"
    text = " ".join(p.text for p in parts if p.text and not p.thought)
    message = candidate.finish_message or text or "no image part in the response"
    return f"{enum_name(candidate.finish_reason) or 'NO_IMAGE'}: {message}"
