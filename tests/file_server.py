"""A local HTTP file server for download tests: plain GET with Range (206), 404 for what it
lacks, and one fault, ``cut``: the first response for a path sends only that many bytes of
the body (with the full Content-Length) and drops the connection, as a network cut does.
It stands in for raw.githubusercontent.com and the Hub's resolve URLs (pyiqa's weights);
tests point the clients at it with GGT_CALIBRATION_URL and HF_ENDPOINT."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FileServer:
    def __init__(self, files: dict[str, bytes]):
        self.files = dict(files)            # URL path ("/a/b.bmp") -> bytes
        self.cut: dict[str, int] = {}       # URL path -> bytes sent before the first response is cut
        self.requests: list[tuple[str, str | None, int]] = []   # (path, Range header, status)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def _handler(server: FileServer):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:   # quiet; requests are in server.requests
            pass

        def do_GET(self) -> None:
            path, rng = self.path.split("?")[0], self.headers.get("Range")
            data = server.files.get(path)
            if data is None:
                return self._status(path, rng, 404)
            start = int(rng.split("=")[1].split("-")[0]) if rng else 0
            if start >= len(data):
                return self._status(path, rng, 416)
            status = 206 if rng else 200
            server.requests.append((path, rng, status))
            self.send_response(status)
            self.send_header("Content-Length", str(len(data) - start))
            if rng:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            body = data[start:]
            if path in server.cut:
                body = body[:server.cut.pop(path)]
                self.close_connection = True
            self.wfile.write(body)

        def _status(self, path: str, rng: str | None, code: int) -> None:
            server.requests.append((path, rng, code))
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler
