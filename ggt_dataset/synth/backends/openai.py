"""GPT-Image-2 as a restoration backend, through the ``openai`` SDK's image edit endpoint.

GGT-100K compared nine editors, GPT-Image-2 among them; this backend makes the same
comparison possible on your own photos. One call is
``AsyncOpenAI(...).images.edit(model=..., image=..., prompt=...)``; GPT image models
always answer with ``data[0].b64_json`` and a ``usage`` block of text and image tokens
(https://platform.openai.com/docs/api-reference/images/createEdit).

Model id: ``gpt-image-2`` is in the SDK's ``ImageModel`` literal (openai 3.57, with the
snapshot ``gpt-image-2-2026-04-21``; newer ``gpt-image-2.5-*``/``2.6-*`` ids exist too) and
on OpenAI's model pages; ``model=`` switches it.

Errors follow backend.py's contract: RateLimitError, 5xx, timeouts and connection errors
are transient; a request the safety system rejects (HTTP 400 with code
``moderation_blocked`` or ``content_policy_violation``) is a ``refused`` result; any other
status error is final. ``max_retries=0``: the engine retries and journals, not the SDK.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
import time
from typing import Any

from ..backend import AuthError, BackendError, EditRequest, EditResult, TransientError
from ._common import (
    Price,
    Priced,
    api_key,
    check_image,
    parse_retry_after,
    price_for,
    require,
)

DEFAULT_MODEL = "gpt-image-2"
ENV_KEYS = ("OPENAI_API_KEY",)
REFUSAL_CODES = {"moderation_blocked", "content_policy_violation", "image_content_policy_violation"}

# USD per 1M tokens, standard tier, from https://openai.com/api/pricing/ as transcribed by
# independent listings (2026-05..2026-10; the page itself was not readable from here),
# checked 2026-11-26:
#   gpt-image-2: text input $5.00, image input $8.00, image output $30.00, text output $10.00;
#   gpt-5.4-mini (the default VLM): input $0.75, output $4.50; gpt-5.5: input $5.00, output $30.00.
PRICES: dict[str, Price] = {
    "gpt-image-2": Price(text_input=5.00, image_input=8.00, text_output=10.00, image_output=30.00),
    "gpt-5.4-mini": Price(text_input=0.75, text_output=4.50),
    "gpt-5.5": Price(text_input=5.00, text_output=30.00),
}


# What an edit's cost estimate assumes (an upper bound, so that --budget holds from the first
# call): output image tokens scale with pixels from GPT image models' published counts for
# 1024x1024 (low 272, medium 1056, high 4160; "auto" or unset counted as high); the input
# image at most 1445 tokens (85 + 170 per 512-px tile of an image fitted to 2048 px with a
# 768-px short side, 8 tiles); the prompt at one token per 2 characters. Not confirmed for
# gpt-image-2 from OpenAI's own page; the journal uses the highest cost seen, if higher.
OUT_TOKENS_PER_MEGAPIXEL = {"low": 272, "medium": 1056, "high": 4160}
IMAGE_IN_TOKENS = 1445
STANDARD_SIZES = ((1024, 1024), (1536, 1024), (1024, 1536))
# Models that take any WIDTHxHEIGHT (both divisible by 16, aspect 1:3..3:1; the SDK's
# images.edit ``size`` docstring, openai 3.57); others get the nearest standard size.
FREE_SIZE_MODELS = ("gpt-image-2",)
_TARGET_PIXELS = 1536 * 1024


def request_size(model: str, width: int, height: int) -> str:
    """The ``size`` to ask for so the answer keeps the LQ's aspect: exact (to 16 px) where the
    model allows free sizes, else the standard size of the nearest aspect."""
    import math

    aspect = min(3.0, max(1 / 3, width / height))
    if any(model == m or model.startswith((m + "-", m + ".")) for m in FREE_SIZE_MODELS):
        w = round(math.sqrt(_TARGET_PIXELS * aspect) / 16) * 16
        h = round(w / aspect / 16) * 16
        return f"{w}x{h}"
    w, h = min(STANDARD_SIZES, key=lambda s: abs(math.log(s[0] / s[1] / aspect)))
    return f"{w}x{h}"


def make_client(key: str, base_url: str | None, timeout: float) -> Any:
    """An ``AsyncOpenAI`` with the SDK's retries off (the engine owns retries)."""
    openai = require("openai", "the openai backend")
    return openai.AsyncOpenAI(api_key=key, base_url=base_url, timeout=timeout, max_retries=0)


def map_error(e: BaseException, model: str) -> BaseException:
    """The backend.py exception for an SDK error (the error itself if it is not one)."""
    import openai

    if isinstance(e, openai.APIConnectionError):       # APITimeoutError is a subclass
        return TransientError(f"OpenAI {model}: {type(e).__name__}: {e}")
    if not isinstance(e, openai.APIStatusError):
        return e
    status = e.status_code
    what = f"OpenAI {model}: HTTP {status} {e.code or ''} {_message(e)}".strip()
    if isinstance(e, openai.RateLimitError) or status in (408, 409) or status >= 500:
        return TransientError(what, retry_after=parse_retry_after(e.response.headers), status=status)
    if status in (401, 403):
        return AuthError(f"{what} (check OPENAI_API_KEY)")
    return BackendError(f"{what} (the request was rejected; it will not be retried)")


def refusal_reason(e: BaseException) -> str | None:
    """The safety system's message when ``e`` is a content-policy rejection, else None."""
    import openai

    if isinstance(e, openai.BadRequestError) and (e.code in REFUSAL_CODES or _body(e).get("code") in REFUSAL_CODES):
        return f"{e.code or _body(e).get('code')}: {_message(e)}"
    return None


def _body(e: Any) -> dict[str, Any]:
    body = e.body if isinstance(e.body, dict) else {}
    return body.get("error", body) if isinstance(body.get("error", body), dict) else {}


def _message(e: Any) -> str:
    return str(_body(e).get("message") or e.message)


class OpenAIImageBackend(Priced):
    """Image editing with an OpenAI GPT image model (default ``gpt-image-2``).

    Args:
        model: image model id.
        api_key: the key; default ``$OPENAI_API_KEY``.
        base_url: API root override, e.g. ``FakeAPIServer.openai_base_url`` (ends in ``/v1``).
        timeout: seconds per request before it counts as a transient failure.
        quality: ``"low"``, ``"medium"``, ``"high"`` or ``"auto"``; None leaves the API default.
        size: ``"1024x1024"``, ``"auto"``, ...; None: the LQ's aspect (:func:`request_size`), so
            that validity QC's aspect check passes (``auto`` answers 1024x1024, 1536x1024 or
            1024x1536, which a 4:3 photo does not fit).
        price: a :class:`Price` for a model missing from :data:`PRICES`.
    """

    name = "openai"
    foundation_model = True

    def __init__(self, model: str | None = None, *, api_key: str | None = None, base_url: str | None = None,
                 timeout: float = 180.0, quality: str | None = None, size: str | None = None,
                 price: Price | None = None):
        self.model = model or DEFAULT_MODEL
        self.quality, self.size = quality, size
        self._price = price_for(PRICES, self.model, price)
        self._client = make_client(resolve_key(api_key), base_url, timeout)

    def _size(self, request: EditRequest) -> str:
        return self.size or request_size(self.model, request.width, request.height)

    def estimate_cost(self, request: EditRequest) -> float | None:
        """An upper estimate of one edit's cost (assumptions above :data:`OUT_TOKENS_PER_MEGAPIXEL`)."""
        if self._price is None:
            return None
        size = self._size(request)
        w, h = (int(v) for v in size.split("x")) if "x" in size else max(STANDARD_SIZES, key=lambda s: s[0] * s[1])
        per_mp = OUT_TOKENS_PER_MEGAPIXEL.get(self.quality or "high", OUT_TOKENS_PER_MEGAPIXEL["high"])
        return self._price.cost(text_in=len(request.prompt) // 2 + 16, image_in=IMAGE_IN_TOKENS,
                                image_out=-(-per_mp * w * h // (1024 * 1024)))

    async def edit(self, request: EditRequest) -> EditResult:
        extra = {"size": self._size(request), **({"quality": self.quality} if self.quality else {})}
        started = time.monotonic()
        try:
            response = await self._client.images.edit(
                model=self.model, image=(_filename(request), request.image, request.mime),
                prompt=request.prompt, n=1, output_format="png", **extra)
        except Exception as e:
            reason = refusal_reason(e)
            if reason is not None:
                return EditResult(status="refused", image=None, model=self.model, detail=reason,
                                  cost_estimated=True, meta={"seconds": round(time.monotonic() - started, 3)})
            mapped = map_error(e, self.model)
            if mapped is e:
                raise
            raise mapped from e
        return self._result(response, time.monotonic() - started)

    def _result(self, response: Any, seconds: float) -> EditResult:
        cost, tokens = _usage_cost(response.usage, self._price)     # first: a bad answer is billed too
        item = response.data[0] if response.data else None
        if item is None or not item.b64_json:
            raise BackendError(f"OpenAI {self.model}: the answer has no data[0].b64_json "
                               f"(data={len(response.data or [])} items); expected one base64 image", cost=cost)
        try:
            image = base64.b64decode(item.b64_json, validate=True)
        except (binascii.Error, ValueError) as e:
            raise BackendError(f"OpenAI {self.model}: data[0].b64_json is not valid base64 ({e})",
                               cost=cost) from e
        width, height, fmt = check_image(image, f"OpenAI {self.model}", cost)
        meta = {"tokens": tokens, "seconds": round(seconds, 3), "width": width, "height": height, "format": fmt,
                "quality": response.quality, "size": response.size, "price_known": self.price_known}
        if item.revised_prompt:
            meta["revised_prompt"] = item.revised_prompt
        return EditResult(status="ok", image=image, model=self.model, cost=cost, cost_estimated=True, meta=meta)

    async def aclose(self) -> None:
        await self._client.close()


def _usage_cost(usage: Any, price: Price | None) -> tuple[float, dict[str, int]]:
    if usage is None:
        return 0.0, {}
    inp, out = usage.input_tokens_details, usage.output_tokens_details
    image_in = inp.image_tokens if inp else 0
    text_in = inp.text_tokens if inp else usage.input_tokens
    image_out = out.image_tokens if out else usage.output_tokens     # no breakdown: all image tokens
    text_out = out.text_tokens if out else 0
    tokens = {"text_in": text_in, "image_in": image_in, "text_out": text_out, "image_out": image_out}
    return (price.cost(**tokens) if price else 0.0), tokens


def _filename(request: EditRequest) -> str:
    stem = request.pair_id.replace("/", "_") or "image"
    return stem + (mimetypes.guess_extension(request.mime) or ".png")


def resolve_key(explicit: str | None) -> str:
    return api_key(explicit, ENV_KEYS, "OpenAI")
