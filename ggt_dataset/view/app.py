"""The web server: a small Starlette (ASGI) app, one static page and a read-only JSON API.

Why Starlette and a hand-written page rather than Gradio: the page needs a grid
paged from the server, a before/after slider and zoom synchronised across
images, keyboard keys and every view in its URL; that is a few hundred lines
of plain JavaScript, with two small dependencies (starlette, uvicorn) and no
build step, where Gradio would bring a large framework and its own URL state.

Only GET (and HEAD) exist. Images are addressed by pair id, never by path. A
bad id is a 404, a bad query a 400, both with a JSON message; nothing returns a
traceback. The Host header must be the one the server was started on, so a
web page elsewhere cannot read the data through DNS rebinding.
"""

from __future__ import annotations

import os
from importlib import resources

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..errors import GGTError
from .thumbs import ImageDecodeError
from .viewer import NotFound, Unreadable, Viewer

STATIC = str(resources.files("ggt_dataset.view") / "static")
_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; "
                               "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
}


_STATUS = ((NotFound, 404), (ImageDecodeError, 422), (Unreadable, 422), (GGTError, 400))


def _error(exc: Exception, viewer: Viewer) -> JSONResponse:
    status = next((code for kind, code in _STATUS if isinstance(exc, kind)), None)
    if status is None:
        if os.environ.get("GGT_DEBUG"):
            raise exc
        viewer.log(f"ggt view: unexpected {type(exc).__name__}: {exc}")
        return JSONResponse({"error": f"unexpected {type(exc).__name__}; see the server's log"}, 500,
                            headers=_HEADERS)
    # A message may quote a file (a prediction's, a report's): the page gets folder names, the log the rest.
    message = viewer.public(str(exc))
    if message != str(exc):
        viewer.log(f"ggt view: {exc}")
    if isinstance(exc, ImageDecodeError):
        message = f"the stored image cannot be decoded: {message}"
    body = {"error": message}
    param = getattr(exc, "param", None)
    if param:            # a query's bad parameter: the page shows the message by its input
        body["param"] = param
    return JSONResponse(body, status, headers=_HEADERS)


def _params(request: Request) -> dict[str, str | list[str]]:
    """Query parameters; a repeated one (license=a&license=b) becomes a list."""
    out: dict[str, str | list[str]] = {}
    for k, v in request.query_params.multi_items():
        seen = out.get(k)
        out[k] = [*seen, v] if isinstance(seen, list) else ([seen, v] if seen is not None else v)
    return out


def make_app(viewer: Viewer, hosts: list[str] | None = None) -> Starlette:
    def answer(fn):
        def endpoint(request: Request) -> Response:
            try:
                return fn(request)
            except Exception as exc:  # noqa: BLE001 (every failure becomes a JSON status, never a traceback)
                return _error(exc, viewer)
        return endpoint

    def page(request: Request) -> Response:
        return FileResponse(os.path.join(STATIC, "index.html"), headers={**_HEADERS, "Cache-Control": "no-cache"})

    def info(request: Request) -> Response:
        return JSONResponse(viewer.info(), headers=_HEADERS)

    def rows(request: Request) -> Response:
        return JSONResponse(viewer.rows(_params(request)), headers=_HEADERS)

    def pair(request: Request) -> Response:
        params = _params(request)
        key = params.pop("key", "")
        return JSONResponse(viewer.pair(key if isinstance(key, str) else key[-1], params), headers=_HEADERS)

    def image(request: Request) -> Response:
        p = request.query_params
        data, kind = viewer.image(p.get("key", ""), p.get("role", "hq"), p.get("size", "full"))
        # The dataset is read-only while served: the browser may keep what it got.
        return Response(data, media_type=kind, headers={**_HEADERS, "Cache-Control": "private, max-age=3600"})

    def favicon(request: Request) -> Response:
        return Response(status_code=204)

    routes = [Route("/", page), Route("/favicon.ico", favicon), *(Route(f"/api/{fn.__name__}", answer(fn)) for fn in (info, rows, pair, image)),
              Mount("/static", StaticFiles(directory=STATIC), name="static")]

    async def not_found(request: Request, exc: Exception) -> Response:
        code = getattr(exc, "status_code", 404)
        return JSONResponse({"error": f"{request.method} {request.url.path}: not here"}, code, headers=_HEADERS)

    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=hosts)] if hosts else []
    return Starlette(routes=routes, middleware=middleware, exception_handlers={404: not_found, 405: not_found})


WILDCARDS = ("0.0.0.0", "::")


def machine_addresses(host: str) -> list[str]:
    """The addresses other machines reach this one by, when bound to ``host`` (a wildcard): its
    host name's addresses and the default route's, loopback and link-local left out."""
    import ipaddress
    import socket

    families = [socket.AF_INET] if host == "0.0.0.0" else [socket.AF_INET, socket.AF_INET6]
    found: set[str] = set()
    for family in families:
        try:
            found |= {str(ai[4][0]) for ai in socket.getaddrinfo(socket.gethostname(), None, family)}
        except OSError:
            pass
        try:        # connecting a UDP socket sends nothing: it only picks the route, and so the address
            with socket.socket(family, socket.SOCK_DGRAM) as s:
                s.connect(("192.0.2.1" if family == socket.AF_INET else "2001:db8::1", 9))
                found.add(s.getsockname()[0])
        except OSError:
            pass
    addresses = [ipaddress.ip_address(a.split("%")[0]) for a in found]
    return [str(a) for a in sorted(addresses, key=lambda a: (a.version, a))
            if not (a.is_loopback or a.is_link_local or a.is_unspecified)]


def is_loopback(host: str) -> bool:
    import ipaddress

    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:          # a host name: it may stand for any interface
        return False


def url_host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def allowed_hosts(host: str, extra: list[str] | None = None) -> list[str]:
    """Host headers the server answers: loopback names, the bound address (IPv6 in brackets), this
    machine's names and addresses when bound to all interfaces, and any the user adds (--allow-host)."""
    names = ["localhost", "127.0.0.1", "[::1]", url_host(host), *(extra or [])]
    if host in WILDCARDS:
        import socket

        names += [socket.gethostname(), socket.getfqdn(), *map(url_host, machine_addresses(host))]
    return sorted(set(names))


MMAP_THRESHOLD = 128 << 10


def return_freed_memory() -> None:
    """Make freed image buffers go back to the system, so the server's memory stays near its caches' budget.

    pyarrow's system pool rather than mimalloc, which keeps what it freed (measured: 9 MB against
    31 MB for the index of 104K pairs; shards are opened so that their reads use it too, see
    ``Source.parquet``). And glibc's malloc from mmap for every block from 128 KiB up (its own
    starting value), held there: by default the threshold rises to the largest block freed (up
    to 32 MiB), so row groups of images (~26 MiB), image bytes and decoded photos come from
    per-thread heaps, which keep them once freed. Over a sweep of 2,000 images
    (bench/view_memory.py) the server grew by 6.6x its caches' budget with the system pool
    alone, 0.86x with both.
    """
    import ctypes
    import ctypes.util

    import pyarrow

    pyarrow.set_memory_pool(pyarrow.system_memory_pool())
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(-3, MMAP_THRESHOLD)           # M_MMAP_THRESHOLD; setting it also fixes it
    except (OSError, AttributeError):              # not glibc (macOS, musl): their defaults stand
        pass


def serve(viewer: Viewer, sock, hosts: list[str], log_level: str = "warning") -> None:
    """Serve on an already bound socket (bound before the index was built, so errors came early)."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(make_app(viewer, hosts), log_level=log_level))
    server.run(sockets=[sock])
