"""What the fake API server says: requests parsed, and answers in each API's documented shape.

Split from ``fake_server.py`` (which serves, scripts faults and logs): this module knows the
Gemini ``generateContent`` and OpenAI ``images/edits`` / ``chat/completions`` request and
response bodies, error bodies (google.rpc.Status, OpenAI ``{"error": ...}``), token usage
and the providers' output sizes.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import io
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from PIL import Image, ImageOps

# google-genai 3.x calls /v1/ by default (GOOGLE_AI_API_DEFAULT_VERSION); older SDKs and
# the REST docs use /v1beta/. Both are answered.
_GEMINI_PATH = re.compile(r"^/(v1|v1beta|v1alpha)/models/(?P<model>[^/:]+):generateContent$")
# What the fake reports as token usage: Gemini's documented 1120 tokens for a 1K image,
# and OpenAI-like counts; only their being positive matters to tests.
_IMAGE_OUT_TOKENS = 1120
_IMAGE_IN_TOKENS = 258

# With ``provider_sizes=True`` the answer has the size the real service gives, not the input's.
# Gemini image models answer a fixed size per ImageConfig.aspect_ratio (1K; the table Google's
# image-generation page gave for gemini-2.5-flash-image, as cited by the review; not confirmed
# from Google's page here, and other listings give e.g. 1152x896 for 4:3); no aspect: 1:1.
GEMINI_SIZES = {"1:1": (1024, 1024), "2:3": (832, 1248), "3:2": (1248, 832), "3:4": (864, 1184),
                "4:3": (1184, 864), "4:5": (896, 1152), "5:4": (1152, 896), "9:16": (768, 1344),
                "16:9": (1344, 768), "21:9": (1536, 672)}
# OpenAI GPT image models: the requested WIDTHxHEIGHT, or for "auto" (and no size) the
# standard size nearest the input's aspect.
OPENAI_STANDARD_SIZES = ((1024, 1024), (1536, 1024), (1024, 1536))


@dataclass
class Parsed:
    api: str
    model: str
    image: bytes | None
    prompt: str
    wants_image: bool = True
    json_schema: dict[str, Any] | None = None
    body: dict[str, Any] = field(default_factory=dict)


def parse_request(path: str, headers: Any, body: bytes) -> Parsed | None:
    m = _GEMINI_PATH.match(path)
    if m:
        return _parse_gemini(m.group("model"), json.loads(body or b"{}"))
    path = path.removeprefix("/v1")      # OpenAI routes answer with or without the /v1 prefix
    if path == "/images/edits":
        return _parse_openai_edit(headers.get("Content-Type", ""), body)
    if path == "/chat/completions":
        return _parse_openai_chat(json.loads(body or b"{}"))
    return None


def _parse_gemini(model: str, req: dict[str, Any]) -> Parsed:
    image, texts = None, []
    for content in req.get("contents", []):
        for part in content.get("parts", []):
            inline = part.get("inlineData") or part.get("inline_data")
            if inline and image is None:
                image = _b64(inline["data"])
            if "text" in part:
                texts.append(part["text"])
    cfg = req.get("generationConfig", {})
    modalities = [m.upper() for m in cfg.get("responseModalities", [])]
    schema = cfg.get("responseJsonSchema") or cfg.get("responseSchema")
    return Parsed("gemini", model, image, "\n".join(texts), wants_image="IMAGE" in modalities,
                   json_schema=schema if cfg.get("responseMimeType") == "application/json" else None, body=req)


def _b64(text: str) -> bytes:
    """Standard or URL-safe base64, padded or not (google-genai sends URL-safe without padding)."""
    text = text.strip()
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_" if "-" in text or "_" in text else None)


def _parse_openai_edit(content_type: str, body: bytes) -> Parsed:
    if "multipart/form-data" not in content_type:
        raise ValueError(f"images/edits expects multipart/form-data, got {content_type!r}")
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    # keyed by the part's name as get_param gives it: a str, a tuple for an RFC 2231 name*=, None without one
    fields: dict[Any, str] = {}
    files: dict[Any, bytes] = {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        # a leaf part decodes to bytes, a multipart one to None (typeshed also allows a Message)
        decoded = part.get_payload(decode=True)
        payload = decoded if isinstance(decoded, bytes) else b""
        if part.get_filename():
            files.setdefault(name, payload)
        else:
            fields[name] = payload.decode()
    image = files.get("image") or files.get("image[]")
    if image is None:
        raise ValueError("images/edits: no image file part in the form")
    return Parsed("openai-images", fields.get("model", ""), image, fields.get("prompt", ""), body=dict(fields))


def _parse_openai_chat(req: dict[str, Any]) -> Parsed:
    image, texts = None, []
    for message in req.get("messages", []):
        content = message.get("content")
        items: list[Any] = content if isinstance(content, list) else [{"type": "text", "text": content or ""}]
        for item in items:
            if item.get("type") == "image_url" and image is None:
                url = item["image_url"]["url"]
                image = _b64(url.split(",", 1)[1]) if url.startswith("data:") else None
            elif item.get("type") == "text":
                texts.append(item["text"])
    fmt = req.get("response_format") or {}
    schema = fmt.get("json_schema", {}).get("schema") if fmt.get("type") == "json_schema" else None
    return Parsed("openai-chat", req.get("model", ""), image, "\n".join(texts), wants_image=False,
                   json_schema=schema, body=req)


# -- answers --------------------------------------------------------------------------------
def provider_size(parsed: Parsed) -> tuple[int, int] | None:
    if parsed.api == "gemini":
        image_config = parsed.body.get("generationConfig", {}).get("imageConfig", {})
        return GEMINI_SIZES.get(image_config.get("aspectRatio") or "1:1", GEMINI_SIZES["1:1"])
    if parsed.api != "openai-images" or not parsed.image:
        return None
    size = str(parsed.body.get("size") or "auto")
    if "x" in size:
        w, h = size.split("x")
        return int(w), int(h)
    with Image.open(io.BytesIO(parsed.image)) as im:
        aspect = im.width / im.height
    return min(OPENAI_STANDARD_SIZES, key=lambda s: abs(s[0] / s[1] - aspect))


def restored_png(image: bytes, size: tuple[int, int] | None = None) -> bytes:
    """The fake's "restoration": Pillow autocontrast of the input (stretched to ``size``), as PNG."""
    with Image.open(io.BytesIO(image)) as im:
        out = ImageOps.autocontrast(im.convert("RGB"), cutoff=1)
    if size is not None and out.size != size:
        out = out.resize(size, Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    out.save(buf, format="PNG")
    return buf.getvalue()


def _malformed_png() -> bytes:
    return b"\x89PNG\r\n\x1a\n" + b"\x00not-an-image" * 16   # a PNG signature and then garbage


def _answer_text(parsed: Parsed) -> str:
    if parsed.json_schema is not None:
        return json.dumps(_instance(parsed.json_schema))
    return "A photo with haze and low contrast; remove the haze and restore natural colours."


def _instance(schema: dict[str, Any]) -> Any:
    """A small value that conforms to a JSON schema (the subset structured output uses)."""
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type", "object")
    kind = kind[0] if isinstance(kind, list) else kind
    kind = kind.lower()
    if kind == "object":
        return {k: _instance(v) for k, v in schema.get("properties", {}).items()}
    if kind == "array":
        return [_instance(schema.get("items", {"type": "string"}))]
    lo, hi = schema.get("minimum", 0), schema.get("maximum", 1)
    return {"string": "fake", "integer": int(hi), "number": (lo + hi) / 2, "boolean": True}.get(kind)


def _gemini_usage(parsed: Parsed, image_out: bool, text_tokens: int = 0) -> dict[str, Any]:
    prompt_text = max(1, len(parsed.prompt.split()))
    prompt_image = _IMAGE_IN_TOKENS if parsed.image else 0
    out: list[dict[str, Any]] = [{"modality": "IMAGE", "tokenCount": _IMAGE_OUT_TOKENS}] if image_out else []
    if text_tokens:
        out.append({"modality": "TEXT", "tokenCount": text_tokens})
    cand = sum(d["tokenCount"] for d in out)
    return {"promptTokenCount": prompt_text + prompt_image, "candidatesTokenCount": cand,
            "totalTokenCount": prompt_text + prompt_image + cand,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt_text}]
            + ([{"modality": "IMAGE", "tokenCount": prompt_image}] if prompt_image else []),
            "candidatesTokensDetails": out}


def gemini_answer(parsed: Parsed, kind: str | None, size: tuple[int, int] | None = None) -> dict[str, Any]:
    base = {"modelVersion": parsed.model, "responseId": f"fake-{time.monotonic_ns()}"}
    if kind == "block_prompt":     # the documented shape of a blocked prompt: no candidates
        return {**base, "promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
                "usageMetadata": _gemini_usage(parsed, False)}
    if kind == "refuse":           # the candidate stops on IMAGE_SAFETY with no image part
        return {**base, "candidates": [{"finishReason": "IMAGE_SAFETY", "index": 0,
                                        "finishMessage": "Unable to show the generated image: it may "
                                                         "violate Google's Generative AI policies."}],
                "usageMetadata": _gemini_usage(parsed, False)}
    if not parsed.wants_image or kind == "text_only":
        text = _answer_text(parsed)
        part = [{"text": text}]
        return {**base, "candidates": [{"content": {"role": "model", "parts": part}, "finishReason": "STOP",
                                        "index": 0}],
                "usageMetadata": _gemini_usage(parsed, False, len(text.split()))}
    data = _malformed_png() if kind == "malformed" else restored_png(parsed.image or b"", size)
    parts = [{"inlineData": {"mimeType": "image/png", "data": base64.b64encode(data).decode()}}]
    return {**base, "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP",
                                    "index": 0}],
            "usageMetadata": _gemini_usage(parsed, True)}


def openai_error(message: str, type_: str, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


def _moderation_blocked() -> tuple[int, dict[str, Any]]:
    # The answer OpenAI's image endpoints give when the safety system rejects a request.
    return 400, openai_error("Your request was rejected as a result of our safety system. "
                              "Your request may contain content that is not allowed by our safety system.",
                              "image_generation_user_error", "moderation_blocked")


def openai_image_answer(parsed: Parsed, kind: str | None,
                         size: tuple[int, int] | None = None) -> tuple[int, dict[str, Any]]:
    if kind in ("refuse", "block_prompt"):
        return _moderation_blocked()
    data = _malformed_png() if kind == "malformed" else restored_png(parsed.image or b"", size)
    text_tokens = max(1, len(parsed.prompt.split()))
    usage = {"input_tokens": text_tokens + _IMAGE_IN_TOKENS, "output_tokens": _IMAGE_OUT_TOKENS,
             "total_tokens": text_tokens + _IMAGE_IN_TOKENS + _IMAGE_OUT_TOKENS,
             "input_tokens_details": {"image_tokens": _IMAGE_IN_TOKENS, "text_tokens": text_tokens},
             "output_tokens_details": {"image_tokens": _IMAGE_OUT_TOKENS, "text_tokens": 0}}
    return 200, {"created": int(time.time()), "data": [{"b64_json": base64.b64encode(data).decode()}],
                 "background": "opaque", "output_format": "png", "quality": "medium",
                 "size": f"{size[0]}x{size[1]}" if size else "1024x1024",
                 "usage": usage}


def openai_chat_answer(parsed: Parsed, kind: str | None) -> tuple[int, dict[str, Any]]:
    refused = kind in ("refuse", "block_prompt")
    text = None if refused else _answer_text(parsed)
    message = {"role": "assistant", "content": text,
               "refusal": "I'm sorry, I can't help with that image." if refused else None}
    prompt_tokens = max(1, len(parsed.prompt.split())) + (_IMAGE_IN_TOKENS if parsed.image else 0)
    completion = len((text or "").split()) or 1
    return 200, {"id": f"chatcmpl-fake{time.monotonic_ns()}", "object": "chat.completion",
                 "created": int(time.time()), "model": parsed.model,
                 "choices": [{"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}],
                 "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion,
                           "total_tokens": prompt_tokens + completion}}


def http_fault(api: str, status: int, retry_after: float | None) -> tuple[int, dict[str, Any]]:
    if api == "gemini":         # google.rpc.Status, as the Gemini API sends it
        status_name, message = {
            429: ("RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
            500: ("INTERNAL", "An internal error has occurred. Please retry or report in "
                              + "https://developers.generativeai.google/guide/troubleshooting"),
            503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
            400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
        }[status]
        error: dict[str, Any] = {"code": status, "message": message, "status": status_name}
        if status == 429 and retry_after is not None:
            error["details"] = [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                                 "retryDelay": f"{fmt_seconds(retry_after)}s"}]
        return status, {"error": error}
    return status, {
        429: openai_error("Rate limit reached for requests. Please try again later.", "requests",
                           "rate_limit_exceeded"),
        500: openai_error("The server had an error while processing your request. Sorry about that!",
                           "server_error", None),
        503: openai_error("The engine is currently overloaded, please try again later.", "server_error",
                           None),
        400: openai_error("Invalid value for 'size'.", "invalid_request_error", "invalid_value"),
    }[status]


def bad_key(api: str) -> tuple[int, dict[str, Any]]:
    if api == "gemini":         # the Gemini API answers a wrong key with 400 API_KEY_INVALID
        return 400, {"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.",
                               "status": "INVALID_ARGUMENT",
                               "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                            "reason": "API_KEY_INVALID", "domain": "googleapis.com"}]}}
    return 401, openai_error("Incorrect API key provided.", "invalid_request_error", "invalid_api_key")


def fmt_seconds(value: float | None) -> str:
    return "" if value is None else (str(int(value)) if float(value).is_integer() else f"{value:g}")
