"""VLM clients: look at an image, answer an instruction (adaptive prompts, the QC judge).

GGT-100K adapted each prompt to its image with a VLM (Gemini) and used one to screen
results. These two classes implement ..backend's :class:`VisionModel` over the same SDKs,
client settings and error mapping as the image backends, so a VLM call is retried,
journalled and priced like an edit. With ``json_schema`` the answer is structured output:

- Gemini: ``response_mime_type="application/json"`` with ``response_json_schema`` (the
  JSON-Schema form of ``response_schema``; https://ai.google.dev/gemini-api/docs/structured-output);
- OpenAI: ``chat.completions`` with the image as a ``data:`` URL and
  ``response_format={"type": "json_schema", ...}``
  (https://platform.openai.com/docs/guides/structured-outputs).

A VLM that declines to answer (blocked prompt, ``message.refusal``) raises
:class:`~..backend.Declined` (a BackendError): the VisionModel contract has no refused status,
and the caller falls back to its fixed prompt or to a human, or names the image as refused
(``ggt score --judge``). Several images go in the order given, after a ``system`` instruction
when there is one.
"""

from __future__ import annotations

import base64
import time
from typing import Any

from ..backend import Declined, VisionReply
from . import gemini as _gemini
from . import openai as _openai
from ._common import Price, Priced, price_for, provider_errors

DEFAULT_GEMINI_VISION = "gemini-3.5-flash"   # Gemini API models page: stable since 2026-05-19
DEFAULT_OPENAI_VISION = "gpt-5.4-mini"       # OpenAI models guide: the small model for cost/latency


class GeminiVision(Priced):
    """A Gemini model as a VLM. Args as :class:`~ggt_dataset.synth.backends.gemini.GeminiBackend`."""

    name = "gemini"

    def __init__(self, model: str | None = None, *, api_key: str | None = None, base_url: str | None = None,
                 timeout: float = 60.0, price: Price | None = None):
        self.model = model or DEFAULT_GEMINI_VISION
        self._price = price_for(_gemini.PRICES, self.model, price)
        self._client = _gemini.make_client(_gemini.resolve_key(api_key), base_url, timeout)

    async def ask(self, image: bytes, mime: str, instruction: str,
                  json_schema: dict[str, Any] | None = None, *,
                  more_images: tuple[tuple[bytes, str], ...] = (), system: str | None = None) -> VisionReply:
        from google.genai import types

        settings: dict[str, Any] = {"system_instruction": system} if system is not None else {}
        if json_schema is not None:
            settings.update(response_mime_type="application/json", response_json_schema=json_schema)
        config = types.GenerateContentConfig(**settings) if settings else None
        contents = [types.Part.from_bytes(data=data, mime_type=kind) for data, kind in ((image, mime), *more_images)]
        contents.append(types.Part.from_text(text=instruction))
        started = time.monotonic()
        with provider_errors(_gemini.map_error, self.model):
            response = await self._client.aio.models.generate_content(model=self.model, contents=contents,
                                                                      config=config)
        return self._reply(response, time.monotonic() - started)

    def _reply(self, response: Any, seconds: float) -> VisionReply:
        candidate = response.candidates[0] if response.candidates else None
        parts = (candidate.content.parts or []) if candidate is not None and candidate.content else []
        text = "".join(p.text for p in parts if p.text and not p.thought)
        cost, tokens = _gemini.usage_cost(response.usage_metadata, self._price, image_answer=False)
        if not text:            # billed all the same: the error carries the cost to the journal
            raise Declined(f"Gemini {self.model} gave no text: "
                               f"{_gemini.refusal_detail(response, candidate, parts)}", cost=cost)
        return VisionReply(text=text, model=response.model_version or self.model, cost=cost, cost_estimated=True,
                           meta={"tokens": tokens, "seconds": round(seconds, 3),
                                 "finish_reason": _gemini.enum_name(getattr(candidate, "finish_reason", None)),
                                 "price_known": self.price_known})

    async def aclose(self) -> None:
        await self._client.aio.aclose()


class OpenAIVision(Priced):
    """An OpenAI chat model as a VLM.

    ``strict_schema=True`` asks for strict structured output, which OpenAI accepts only for
    schemas whose objects all set ``additionalProperties: false`` and list every property
    in ``required``; the default (False) takes any schema and the caller validates.
    """

    name = "openai"

    def __init__(self, model: str | None = None, *, api_key: str | None = None, base_url: str | None = None,
                 timeout: float = 60.0, strict_schema: bool = False, price: Price | None = None):
        self.model = model or DEFAULT_OPENAI_VISION
        self.strict_schema = strict_schema
        self._price = price_for(_openai.PRICES, self.model, price)
        self._client = _openai.make_client(_openai.resolve_key(api_key), base_url, timeout)

    async def ask(self, image: bytes, mime: str, instruction: str,
                  json_schema: dict[str, Any] | None = None, *,
                  more_images: tuple[tuple[bytes, str], ...] = (), system: str | None = None) -> VisionReply:
        pictures = [{"type": "image_url", "image_url": {"url": f"data:{kind};base64,{base64.b64encode(data).decode()}"}}
                    for data, kind in ((image, mime), *more_images)]
        messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system is not None else []
        messages.append({"role": "user", "content": [{"type": "text", "text": instruction}, *pictures]})
        extra: dict[str, Any] = {}
        if json_schema is not None:
            extra["response_format"] = {"type": "json_schema", "json_schema": {
                "name": "answer", "schema": json_schema, "strict": self.strict_schema}}
        started = time.monotonic()
        with provider_errors(_openai.map_error, self.model):
            response = await self._client.chat.completions.create(model=self.model, messages=messages, **extra)
        return self._reply(response, time.monotonic() - started)

    def _reply(self, response: Any, seconds: float) -> VisionReply:
        choice = response.choices[0] if response.choices else None
        message = choice.message if choice else None
        usage = response.usage
        tokens = {"prompt": usage.prompt_tokens, "completion": usage.completion_tokens} if usage else {}
        cost = (self._price.cost(text_in=tokens["prompt"], text_out=tokens["completion"])
                if usage and self._price else 0.0)
        if choice is None or message is None or message.refusal or not message.content:   # billed all the same
            why = (message.refusal if message else None) or f"finish_reason={getattr(choice, 'finish_reason', None)}"
            raise Declined(f"OpenAI {self.model} gave no answer: {why}", cost=cost)
        return VisionReply(text=message.content, model=response.model or self.model, cost=cost, cost_estimated=True,
                           meta={"tokens": tokens, "seconds": round(seconds, 3), "finish_reason": choice.finish_reason,
                                 "price_known": self.price_known})

    async def aclose(self) -> None:
        await self._client.close()
