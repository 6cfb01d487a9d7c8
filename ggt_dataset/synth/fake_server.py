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

import hashlib
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Literal

from .fake_answers import (
    Parsed,
    bad_key,
    fmt_seconds,
    gemini_answer,
    http_fault,
    openai_chat_answer,
    openai_error,
    openai_image_answer,
    parse_request,
    provider_size,
)

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self needs Python 3.11

FaultKind = Literal["429", "500", "503", "hang", "refuse", "block_prompt", "malformed", "400", "401", "text_only"]
# text_only: Gemini answers STOP with a text part and no image (not a refusal)
FAULT_KINDS = ("429", "500", "503", "hang", "refuse", "block_prompt", "malformed", "400", "401", "text_only")

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


class FakeAPIServer:
    """Gemini- and OpenAI-shaped HTTP server on 127.0.0.1 and a random port.

    Args:
        latency: seconds each request waits before answering (simulates the provider).
        hang_seconds: how long a ``"hang"`` fault holds the connection (past the client's timeout).
        api_key: when set, other keys get the provider's bad-key answer (Gemini 400, OpenAI 401).
        provider_sizes: answer images in the sizes the real services return (``fake_answers.GEMINI_SIZES``,
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
            elif image is not None:     # always, by the check above: exactly one is given
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
    def _admit(self, parsed: Parsed, path: str) -> tuple[RequestRecord, _Script | None]:
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
            parsed = parse_request(path, self.headers, body)
        except ValueError as e:
            self._send(400, openai_error(str(e), "invalid_request_error", None))
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

    def _answer(self, parsed: Parsed, script: _Script | None) -> int:
        if not self._key_ok(parsed.api):
            return self._send(*bad_key(parsed.api))
        kind, retry_after = (script.kind, script.retry_after) if script else (None, None)
        if kind == "hang":
            self.fake._stopping.wait(self.fake.hang_seconds)
            self.close_connection = True
            return 0
        if kind in ("429", "500", "503", "400"):
            # OpenAI sends a Retry-After header; Google APIs put google.rpc.RetryInfo in the body.
            headers = ({"Retry-After": fmt_seconds(retry_after)}
                       if retry_after is not None and parsed.api != "gemini" else {})
            return self._send(*http_fault(parsed.api, int(kind), retry_after), headers=headers)
        if kind == "401":
            return self._send(*bad_key(parsed.api))
        size = provider_size(parsed) if self.fake.provider_sizes else None
        if parsed.api == "gemini":
            return self._send(200, gemini_answer(parsed, kind, size))
        if parsed.api == "openai-images":
            return self._send(*openai_image_answer(parsed, kind, size))
        return self._send(*openai_chat_answer(parsed, kind))

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
