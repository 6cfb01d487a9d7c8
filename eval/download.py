"""Downloads that resume and are never half-written: the calibration images and, during
``ggt weights fetch``, pyiqa's and torchvision's weight files.

torch.hub's ``download_url_to_file`` (which pyiqa and torchvision call) reads until the
connection ends and then moves what it got into place: a download cut short left a
truncated checkpoint at the final path, which pyiqa then never fetched again. Here the
bytes go to ``DEST.part``; its length is checked against the server's, a later call
resumes it with an HTTP Range request, and only a complete (and, when pinned, hash-checked)
file is renamed to ``DEST``.
"""

from __future__ import annotations

import contextlib
import os
import urllib.error
import urllib.request
from collections.abc import Iterator

from ..atomic import publish_file
from ..errors import GGTError
from ..hashing import file_sha256

CHUNK = 1 << 16
TIMEOUT_S = 60


class DownloadError(GGTError):
    """A file could not be fetched whole, or is not the file that was pinned."""


def download(url: str, dest: str, sha256: str | None = None) -> None:
    """``url`` to ``dest``; ``sha256`` (a full digest or a prefix) is checked when given."""
    part = dest + ".part"
    name = os.path.basename(dest)
    have = os.path.getsize(part) if os.path.isfile(part) else 0
    req = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT_S) as r:
            resumed = r.status == 206
            total = _total(r, have if resumed else 0)
            with open(part, "ab" if resumed else "wb") as f:
                while chunk := r.read(CHUNK):
                    f.write(chunk)
    except urllib.error.HTTPError as e:
        if e.code != 416 or not have:    # 416 to a resume: the part already holds every byte
            raise DownloadError(f"{url}: HTTP {e.code} {e.reason}; cannot fetch {name}") from None
        total = have
    except urllib.error.URLError as e:      # no connection: nothing was read
        raise DownloadError(f"{url}: cannot fetch {name} ({e.reason}); run the same command again "
                            "once the host can be reached") from None
    except OSError as e:                    # the connection broke while reading
        raise _interrupted(url, name, part, f" bytes ({e})") from None
    got = os.path.getsize(part)
    if total is not None and got != total:   # http.client returns b"" at an early EOF, no error
        raise _interrupted(url, name, part, f" of {total} bytes")
    digest = file_sha256(part) if sha256 else ""
    if not digest.startswith(sha256 or ""):
        os.remove(part)     # a wrong file cannot be resumed into the right one
        raise DownloadError(f"{url}: {name} has sha256 {digest}, but {sha256} is pinned; "
                            "the file was not kept")
    os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
    publish_file(part, dest)


def _interrupted(url: str, name: str, part: str, detail: str) -> DownloadError:
    got = os.path.getsize(part) if os.path.isfile(part) else 0
    return DownloadError(f"{url}: download of {name} interrupted after {got}{detail}; "
                         "run the same command again to resume")


def _total(r, offset: int) -> int | None:
    """The full file's size: from Content-Range on a 206, else offset + Content-Length."""
    crange = r.headers.get("Content-Range", "")
    if "/" in crange and not crange.endswith("/*"):
        return int(crange.rsplit("/", 1)[1])
    length = r.headers.get("Content-Length")
    return offset + int(length) if length is not None else None


@contextlib.contextmanager
def resumable_torch_downloads() -> Iterator[list[DownloadError]]:
    """Route torch.hub's ``download_url_to_file`` (pyiqa's and torchvision's downloads) through
    ``download`` while the block runs. Yields the list of DownloadErrors raised meanwhile, since
    pyiqa's callers wrap them in their own exceptions."""
    import torch.hub
    from pyiqa.utils import download_util

    failures: list[DownloadError] = []

    def fetch(url: str, dst: str, hash_prefix: str | None = None, progress: bool = True) -> None:
        try:
            download(url, dst, hash_prefix)
        except DownloadError as e:
            failures.append(e)
            raise

    saved = torch.hub.download_url_to_file, download_util.download_url_to_file
    torch.hub.download_url_to_file = download_util.download_url_to_file = fetch
    try:
        yield failures
    finally:
        torch.hub.download_url_to_file, download_util.download_url_to_file = saved
