"""A local HTTP server that answers like the Gemini and OpenAI image APIs, for tests and benches.

The real SDK clients (google-genai, openai) are pointed at it with a base-URL override, so
tests exercise the same request building, response parsing and error classes a paid run
does, offline and in milliseconds. It answers:

- Gemini ``POST /v1/models/{model}:generateContent`` (google-genai 3.x; ``/v1beta/`` too),
  JSON with an inline image part, or text (JSON when the request asks for it);
- OpenAI ``POST /v1/images/edits`` (multipart, ``b64_json`` answer with ``usage``) and
  ``POST /v1/chat/completions``.

Response and error bodies follow the shapes in each API's reference (Gemini
GenerateContentResponse, google.rpc.Status errors; OpenAI ImagesResponse, ChatCompletion,
``{"error": {...}}``). The "restored" image is the input after Pillow's autocontrast, so
quality control has a real, related image to score.

Faults are scripted per request number (1-based, all endpoints together) or per input
image (by sha256), and each request is logged::

    with FakeAPIServer(latency=0.2) as server:
        server.add_fault("429", request=1, retry_after=2)
        server.add_fault("refuse", image=sha256_of_lq_bytes, times=None)   # always
        ... point a client at server.gemini_base_url / server.openai_base_url ...
        server.counts_by_image()   # {sha256: calls}
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import hashlib
import io
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Literal

from PIL import Image, ImageOps

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self needs Python 3.11

FaultKind = Literal["429", "500", "503", "hang", "refuse", "block_prompt", "malformed", "400", "401", "text_only"]
# text_only: Gemini answers STOP with a text part and no image (not a refusal)
FAULT_KINDS = ("429", "500", "503", "hang", "refuse", "block_prompt", "malformed", "400", "401", "text_only")

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
class RequestRecord:
    """One request the server received, and what it did with it."""

    n: int                      # 1-based arrival number across all endpoints
    api: str                    # "gemini", "openai-images", "openai-chat"
    path: str
    model: str
    image_sha256: str | None    # sha256 of the image bytes the client sent
    prompt: str
    fault: str | None           # the scripted fault that answered, None for a normal answer
    status: int = 0
    started: float = 0.0
    finished: float = 0.0


@dataclass
class _Script:
    kind: str
    retry_after: float | None
    times: int | None           # None: every matching request


@dataclass
class _Parsed:
    api: str
    model: str
    image: bytes | None
    prompt: str
    wants_image: bool = True
    json_schema: dict[str, Any] | None = None
    body: dict[str, Any] = field(default_factory=dict)


class FakeAPIServer:
    """Gemini- and OpenAI-shaped HTTP server on 127.0.0.1 and a random port.

    Args:
        latency: seconds each request waits before answering (simulates the provider).
        hang_seconds: how long a ``"hang"`` fault holds the connection (past the client's timeout).
        api_key: when set, other keys get the provider's bad-key answer (Gemini 400, OpenAI 401).
        provider_sizes: answer images in the sizes the real services return (:data:`GEMINI_SIZES`,
            OpenAI's requested or standard sizes) instead of the input's size.
    """

    def __init__(self, latency: float = 0.0, hang_seconds: float = 30.0, api_key: str | None = None,
                 provider_sizes: bool = False):
        self.latency, self.hang_seconds, self.api_key = latency, hang_seconds, api_key
        self.provider_sizes = provider_sizes
        self.requests: list[RequestRecord] = []
        self.max_in_flight = 0
        self._in_flight = 0
        self._by_request: dict[int, _Script] = {}
        self._by_image: dict[str, list[_Script]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> Self:
        handler = type("_Handler", (_Handler,), {"fake": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        # A short poll interval: stop() waits for the serve loop's next poll (0.5 s by default).
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="fake-api", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()        # releases hanging handlers
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("FakeAPIServer is not running: call start() or use it as a context manager")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def gemini_base_url(self) -> str:
        return self.base_url            # google-genai appends /v1/models/{model}:generateContent

    @property
    def openai_base_url(self) -> str:
        return self.base_url + "/v1"    # the openai SDK appends /images/edits, /chat/completions

    # -- scripting -------------------------------------------------------------------------
    def add_fault(self, kind: FaultKind, *, request: int | None = None, image: bytes | str | None = None,
                  times: int | None = 1, retry_after: float | None = None) -> None:
        """Answer request number ``request``, or the next ``times`` requests carrying ``image``
        (bytes or their sha256 hex; ``times=None``: all of them), with fault ``kind``."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; expected one of {', '.join(FAULT_KINDS)}")
        if (request is None) == (image is None):
            raise ValueError("add_fault needs exactly one of request= or image=")
        script = _Script(kind, retry_after, times)
        with self._lock:
            if request is not None:
                self._by_request[request] = script
            else:
                key = image if isinstance(image, str) else hashlib.sha256(image).hexdigest()
                self._by_image.setdefault(key, []).append(script)

    def counts_by_image(self) -> dict[str, int]:
        """How many requests carried each image, by the image's sha256."""
        counts: dict[str, int] = {}
        for r in list(self.requests):
            if r.image_sha256:
                counts[r.image_sha256] = counts.get(r.image_sha256, 0) + 1
        return counts

    # -- used by the handler ---------------------------------------------------------------
    def _admit(self, parsed: _Parsed, path: str) -> tuple[RequestRecord, _Script | None]:
        sha = hashlib.sha256(parsed.image).hexdigest() if parsed.image else None
        with self._lock:
            n = len(self.requests) + 1
            script = self._by_request.pop(n, None) or self._take_image_fault(sha)
            record = RequestRecord(n, parsed.api, path, parsed.model, sha, parsed.prompt,
                                   script.kind if script else None, started=time.monotonic())
            self.requests.append(record)
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        return record, script

    def _take_image_fault(self, sha: str | None) -> _Script | None:
        scripts = self._by_image.get(sha or "", [])
        if not scripts:
            return None
        script = scripts[0]
        if script.times is not None:
            script.times -= 1
            if script.times <= 0:
                scripts.pop(0)
        return script

    def _done(self, record: RequestRecord, status: int) -> None:
        with self._lock:
            self._in_flight -= 1
            record.status, record.finished = status, time.monotonic()


class _Handler(BaseHTTPRequestHandler):
    fake: FakeAPIServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass                                                   # tests stay quiet

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = self.path.split("?", 1)[0]
        try:
            parsed = _parse_request(path, self.headers, body)
        except ValueError as e:
            self._send(400, _openai_error(str(e), "invalid_request_error", None))
            return
        if parsed is None:
            self._send(404, {"error": {"code": 404, "message": f"no route for POST {path}", "status": "NOT_FOUND"}})
            return
        record, script = self.fake._admit(parsed, path)
        status = 599
        try:
            if self.fake.latency:
                self.fake._stopping.wait(self.fake.latency)
            status = self._answer(parsed, script)
        finally:
            self.fake._done(record, status)

    def _answer(self, parsed: _Parsed, script: _Script | None) -> int:
        if not self._key_ok(parsed.api):
            return self._send(*_bad_key(parsed.api))
        kind = script.kind if script else None
        if kind == "hang":
            self.fake._stopping.wait(self.fake.hang_seconds)
            self.close_connection = True
            return 0
        if kind in ("429", "500", "503", "400"):
            # OpenAI sends a Retry-After header; Google APIs put google.rpc.RetryInfo in the body.
            headers = ({"Retry-After": _fmt_seconds(script.retry_after)}
                       if script.retry_after is not None and parsed.api != "gemini" else {})
            return self._send(*_http_fault(parsed.api, int(kind), script.retry_after), headers=headers)
        if kind == "401":
            return self._send(*_bad_key(parsed.api))
        size = _provider_size(parsed) if self.fake.provider_sizes else None
        if parsed.api == "gemini":
            return self._send(200, _gemini_answer(parsed, kind, size))
        if parsed.api == "openai-images":
            return self._send(*_openai_image_answer(parsed, kind, size))
        return self._send(*_openai_chat_answer(parsed, kind))

    def _key_ok(self, api: str) -> bool:
        want = self.fake.api_key
        if want is None:
            return True
        if api == "gemini":
            got = self.headers.get("x-goog-api-key") or ""
        else:
            got = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
        return got == want

    def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> int:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass        # the client gave up (its timeout); nothing to answer
        return status


# -- request parsing ------------------------------------------------------------------------
def _parse_request(path: str, headers: Any, body: bytes) -> _Parsed | None:
    m = _GEMINI_PATH.match(path)
    if m:
        return _parse_gemini(m.group("model"), json.loads(body or b"{}"))
    path = path.removeprefix("/v1")      # OpenAI routes answer with or without the /v1 prefix
    if path == "/images/edits":
        return _parse_openai_edit(headers.get("Content-Type", ""), body)
    if path == "/chat/completions":
        return _parse_openai_chat(json.loads(body or b"{}"))
    return None


def _parse_gemini(model: str, req: dict[str, Any]) -> _Parsed:
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
    return _Parsed("gemini", model, image, "\n".join(texts), wants_image="IMAGE" in modalities,
                   json_schema=schema if cfg.get("responseMimeType") == "application/json" else None, body=req)


def _b64(text: str) -> bytes:
    """Standard or URL-safe base64, padded or not (google-genai sends URL-safe without padding)."""
    text = text.strip()
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_" if "-" in text or "_" in text else None)


def _parse_openai_edit(content_type: str, body: bytes) -> _Parsed:
    if "multipart/form-data" not in content_type:
        raise ValueError(f"images/edits expects multipart/form-data, got {content_type!r}")
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    fields: dict[str, str] = {}
    files: dict[str, bytes] = {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        if part.get_filename():
            files.setdefault(name, payload)
        else:
            fields[name] = payload.decode()
    image = files.get("image") or files.get("image[]")
    if image is None:
        raise ValueError("images/edits: no image file part in the form")
    return _Parsed("openai-images", fields.get("model", ""), image, fields.get("prompt", ""), body=dict(fields))


def _parse_openai_chat(req: dict[str, Any]) -> _Parsed:
    image, texts = None, []
    for message in req.get("messages", []):
        content = message.get("content")
        for item in content if isinstance(content, list) else [{"type": "text", "text": content or ""}]:
            if item.get("type") == "image_url" and image is None:
                url = item["image_url"]["url"]
                image = _b64(url.split(",", 1)[1]) if url.startswith("data:") else None
            elif item.get("type") == "text":
                texts.append(item["text"])
    fmt = req.get("response_format") or {}
    schema = fmt.get("json_schema", {}).get("schema") if fmt.get("type") == "json_schema" else None
    return _Parsed("openai-chat", req.get("model", ""), image, "\n".join(texts), wants_image=False,
                   json_schema=schema, body=req)


# -- answers --------------------------------------------------------------------------------
def _provider_size(parsed: _Parsed) -> tuple[int, int] | None:
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


def _answer_text(parsed: _Parsed) -> str:
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


def _gemini_usage(parsed: _Parsed, image_out: bool, text_tokens: int = 0) -> dict[str, Any]:
    prompt_text = max(1, len(parsed.prompt.split()))
    prompt_image = _IMAGE_IN_TOKENS if parsed.image else 0
    out = [{"modality": "IMAGE", "tokenCount": _IMAGE_OUT_TOKENS}] if image_out else []
    if text_tokens:
        out.append({"modality": "TEXT", "tokenCount": text_tokens})
    cand = sum(d["tokenCount"] for d in out)
    return {"promptTokenCount": prompt_text + prompt_image, "candidatesTokenCount": cand,
            "totalTokenCount": prompt_text + prompt_image + cand,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt_text}]
            + ([{"modality": "IMAGE", "tokenCount": prompt_image}] if prompt_image else []),
            "candidatesTokensDetails": out}


def _gemini_answer(parsed: _Parsed, kind: str | None, size: tuple[int, int] | None = None) -> dict[str, Any]:
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


def _openai_error(message: str, type_: str, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


def _moderation_blocked() -> tuple[int, dict[str, Any]]:
    # The answer OpenAI's image endpoints give when the safety system rejects a request.
    return 400, _openai_error("Your request was rejected as a result of our safety system. "
                              "Your request may contain content that is not allowed by our safety system.",
                              "image_generation_user_error", "moderation_blocked")


def _openai_image_answer(parsed: _Parsed, kind: str | None,
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


def _openai_chat_answer(parsed: _Parsed, kind: str | None) -> tuple[int, dict[str, Any]]:
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


def _http_fault(api: str, status: int, retry_after: float | None) -> tuple[int, dict[str, Any]]:
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
                                 "retryDelay": f"{_fmt_seconds(retry_after)}s"}]
        return status, {"error": error}
    return status, {
        429: _openai_error("Rate limit reached for requests. Please try again later.", "requests",
                           "rate_limit_exceeded"),
        500: _openai_error("The server had an error while processing your request. Sorry about that!",
                           "server_error", None),
        503: _openai_error("The engine is currently overloaded, please try again later.", "server_error",
                           None),
        400: _openai_error("Invalid value for 'size'.", "invalid_request_error", "invalid_value"),
    }[status]


def _bad_key(api: str) -> tuple[int, dict[str, Any]]:
    if api == "gemini":         # the Gemini API answers a wrong key with 400 API_KEY_INVALID
        return 400, {"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.",
                               "status": "INVALID_ARGUMENT",
                               "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                            "reason": "API_KEY_INVALID", "domain": "googleapis.com"}]}}
    return 401, _openai_error("Incorrect API key provided.", "invalid_request_error", "invalid_api_key")


def _fmt_seconds(value: float | None) -> str:
    return "" if value is None else (str(int(value)) if float(value).is_integer() else f"{value:g}")


def main(argv: list[str] | None = None) -> None:
    """``python -m ggt_dataset.synth.fake_server --latency 1``: serve until stopped (dry runs, benches).

    Prints the base URL on its first line, so a parent process can read where it listens.
    """
    import argparse
    import signal

    ap = argparse.ArgumentParser(description="A local Gemini- and OpenAI-shaped image API (no model behind it).")
    ap.add_argument("--latency", type=float, default=0.0, help="seconds each request waits before answering")
    args = ap.parse_args(argv)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with FakeAPIServer(latency=args.latency) as server:
        print(server.base_url, flush=True)
        try:
            done.wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
