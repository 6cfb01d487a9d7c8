"""A local stand-in for the Hugging Face Hub's HTTP API, for tests only (never in the user's path).

The real clients (``huggingface_hub``'s ``HfApi``, ``hf_hub_download`` and ``HfFileSystem``,
and ``datasets.load_dataset``) are pointed at it with ``HF_ENDPOINT=http://127.0.0.1:PORT``
(read at import time, so tests run the clients in subprocesses; see ``HubServer.env``).
It listens on 127.0.0.1 only, keeps every repo in memory, and is started and stopped by
the tests (``with HubServer() as hub: ...``).

What it implements (dataset repos; the routes below, nothing else):

* ``POST /api/repos/create`` (409 when the repo exists, as the Hub; the repo starts with a
  ``.gitattributes`` commit, as the Hub's do); ``POST /api/validate-yaml`` (a YAML parse);
* ``GET /api/datasets/ID`` and ``/api/datasets/ID/revision/REV``: the info with ``sha``
  and ``siblings``; ``GET /api/datasets/ID/tree/REV[/PATH]`` (``recursive``, ``expand``,
  cursor pagination through a ``Link: <...>; rel="next"`` header, ``page_size`` entries a
  page); ``POST /api/datasets/ID/paths-info/REV``; ``GET /api/datasets/ID/refs``;
* ``HEAD``/``GET /datasets/ID/resolve/REV/PATH``: ``X-Repo-Commit``, ``ETag`` (git blob
  id), ``Accept-Ranges``; an LFS file answers ``302`` to a second listener (another port,
  so another origin: the client treats it as the Hub's CDN and stops following on HEAD)
  with ``X-Linked-Etag`` (its sha256) and ``X-Linked-Size``; ``Range`` gives ``206`` (or
  ``416``); a missing file or revision answers 404 with ``X-Error-Code`` (``EntryNotFound``,
  ``RevisionNotFound``, ``RepoNotFound``), which the client maps to its own errors;
* uploads: ``POST /api/datasets/ID/preupload/REV`` (``lfs`` for Parquet, binary or files
  over 10 MB, else ``regular``; ``oid`` of the file already there, so unchanged files are
  skipped), ``POST /datasets/ID.git/info/lfs/objects/batch`` (the ``basic`` transfer:
  ``upload`` and ``verify`` actions, none for an object already stored), ``PUT`` of the
  object to ``/lfs/ID/OID`` (its sha256 checked), the verify call, and ``POST
  /api/datasets/ID/commit/REV`` (NDJSON ``file``, ``lfsFile``, ``deletedFile``,
  ``deletedFolder``; ``create_pr=1`` opens ``refs/pr/N``; ``parentCommit`` is checked);
  ``POST /api/datasets/ID/tag/REV``; ``POST /api/datasets/ID/discussions/N/merge``.

Anything else answers 501 (an unknown route) or 404, and is logged in ``HubServer.gaps``
and on stderr, so a client call the server lacks shows up instead of passing silently.
Every request is recorded in ``HubServer.requests`` (method, path with query, status).

How it differs from the Hub:

* No Xet storage (no CAS server, no ``xet-*-token`` route). ``huggingface_hub`` 2.4 with
  ``hf_xet`` installed (as it is here, and for most users) sends ``upload_folder`` through
  its pipelined Xet path, and asks a ``/xet-write-token`` for every file the preupload
  call marks ``lfs``; that route answers 501 here, so the upload fails. Tests therefore
  set ``HF_HUB_DISABLE_XET=1``: the client then takes its legacy path (one commit; the LFS
  batch API with the ``basic`` transfer: one ``PUT`` per object). Downloads never need Xet
  here, since no response carries ``X-Xet-Hash``. The Xet upload path itself is not tested.
* No auth model beyond "write calls need a ``Bearer`` token" (401 otherwise); no private
  or gated repos; no rate limits, no multipart LFS uploads, no squash or super-squash,
  no branches other than ``main`` and ``refs/pr/N``; one process's memory holds the data;
  ``lastCommit`` (``expand=True``) is the revision's head, not the last commit that changed
  the file; no relative redirects (renamed repos), no ``refs/convert/parquet``.
* Faults for tests: ``fail_uploads_after(n)`` stops the whole server after ``n`` LFS
  objects were stored (the next ``PUT`` and every later request get their connection
  dropped, and the port is closed), as when the Hub becomes unreachable mid-upload;
  ``start()`` again serves the same repos on a new port.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, quote, unquote, urlsplit

if TYPE_CHECKING:
    from typing import Self  # Python 3.11; the project supports 3.10

LFS_EXTENSIONS = (".parquet", ".arrow", ".bin", ".safetensors", ".zip", ".gz", ".png", ".jpg", ".jpeg", ".webp")
LFS_MIN_BYTES = 10 * 1024 * 1024   # the Hub stores bigger files in LFS whatever their kind
GITATTRIBUTES = b"".join(f"*{e} filter=lfs diff=lfs merge=lfs -text\n".encode() for e in LFS_EXTENSIONS)
REQUEST_TIMEOUT_S = 30             # every connection's reads are bounded: no request loop hangs a test


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


@dataclass(frozen=True)
class Blob:
    sha256: str
    size: int
    lfs: bool

    @property
    def oid(self) -> str:
        """The git object id the Hub reports: of the content, or of the LFS pointer."""
        return git_blob_id(lfs_pointer(self.sha256, self.size)) if self.lfs else self._content_oid

    _content_oid: str = ""


@dataclass
class Commit:
    sha: str
    parent: str | None
    files: dict[str, Blob]
    title: str
    date: str


@dataclass
class Repo:
    repo_id: str
    commits: dict[str, Commit] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)        # branch, tag or refs/pr/N -> commit sha
    pr_base: dict[int, str] = field(default_factory=dict)     # PR number -> the commit it was opened from
    lfs: set[str] = field(default_factory=set)                # LFS objects uploaded to this repo (the Hub's
                                                              # LFS storage is per repo, not global)

    def resolve(self, rev: str) -> Commit | None:
        sha = self.refs.get(rev) or (rev if rev in self.commits else None)
        return self.commits.get(sha) if sha else None


class HttpError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, headers: dict | None = None,
                 **body):
        super().__init__(message)
        self.status, self.code, self.headers, self.body = status, code, headers or {}, body


class HubServer:
    """The server and its state. ``with HubServer() as hub`` starts it and stops it."""

    def __init__(self, page_size: int = 1000):
        self.repos: dict[str, Repo] = {}
        self.objects: dict[str, bytes] = {}        # sha256 -> content, for LFS and regular files alike
        self.requests: list[tuple[str, str, int]] = []
        self.gaps: list[str] = []
        self.page_size = page_size
        self.lock = threading.RLock()
        self._commit_counter = 0
        self._uploads_left: int | None = None
        self._down = False
        self._api = self._cdn = None

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> Self:
        self._down, self._uploads_left = False, None
        self._api = _serve(self)
        self._cdn = _serve(self)
        return self

    def stop(self) -> None:
        self._down = True
        for srv in (self._api, self._cdn):
            if srv is not None:
                srv.shutdown()
                srv.server_close()
        self._api = self._cdn = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._api.server_address[1]}"

    @property
    def cdn(self) -> str:
        return f"http://127.0.0.1:{self._cdn.server_address[1]}"

    def env(self, hf_home: str) -> dict[str, str]:
        """Environment for a client subprocess: this endpoint, online, a private cache, no Xet."""
        return {"HF_ENDPOINT": self.endpoint, "HF_HUB_OFFLINE": "0", "HF_DATASETS_OFFLINE": "0",
                "HF_HOME": hf_home, "HF_DATASETS_CACHE": f"{hf_home}/datasets", "HF_TOKEN": "hf_local_test",
                "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}

    def fail_uploads_after(self, n: int) -> None:
        """Stop serving (connections dropped, port closed) once ``n`` more LFS objects are stored."""
        self._uploads_left = n

    # -- test helpers ----------------------------------------------------------------------
    def files(self, repo_id: str, rev: str = "main") -> dict[str, bytes]:
        commit = self._repo(repo_id).resolve(rev)
        return {p: self.objects[b.sha256] for p, b in commit.files.items()}

    def calls(self, method: str, prefix: str, since: int = 0) -> list[str]:
        """Paths of the successful ``method`` requests under ``prefix`` from ``requests[since:]``."""
        return [p for m, p, s in self.requests[since:] if m == method and p.startswith(prefix) and 200 <= s < 300]

    # -- state changes -------------------------------------------------------------------
    def _repo(self, repo_id: str) -> Repo:
        repo = self.repos.get(repo_id)
        if repo is None:
            raise HttpError(404, f"Repository {repo_id} not found", "RepoNotFound")
        return repo

    def _store(self, data: bytes, lfs: bool) -> Blob:
        sha = hashlib.sha256(data).hexdigest()
        self.objects[sha] = data
        return Blob(sha, len(data), lfs, "" if lfs else git_blob_id(data))

    def _new_commit(self, repo: Repo, parent: Commit | None, files: dict[str, Blob], title: str) -> Commit:
        self._commit_counter += 1
        listing = json.dumps(sorted((p, b.sha256) for p, b in files.items()))
        sha = hashlib.sha1(f"{parent and parent.sha}\n{title}\n{listing}\n{self._commit_counter}".encode()).hexdigest()
        commit = Commit(sha, parent and parent.sha, files, title,
                        time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()))
        repo.commits[sha] = commit
        return commit

    def create_repo(self, repo_id: str) -> None:
        with self.lock:
            if repo_id in self.repos:   # the client reads the url from the 409 too (create_repo(exist_ok=True))
                raise HttpError(409, "You already created this dataset repo",
                                url=f"{self.endpoint}/datasets/{repo_id}")
            repo = Repo(repo_id)
            first = self._new_commit(repo, None, {".gitattributes": self._store(GITATTRIBUTES, False)},
                                     "initial commit")
            repo.refs["main"] = first.sha
            self.repos[repo_id] = repo

    def commit(self, repo_id: str, rev: str, lines: list[dict], create_pr: bool) -> dict:
        with self.lock:
            repo = self._repo(repo_id)
            if rev not in repo.refs or rev in self._tags(repo):
                raise HttpError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
            head = repo.resolve(rev)
            header = lines[0]["value"] if lines and lines[0].get("key") == "header" else {}
            if header.get("parentCommit") not in (None, head.sha):
                raise HttpError(412, "A commit has happened since. Please refresh and try again.")
            files = dict(head.files)
            for line in lines[1:]:
                files = self._apply(repo, files, line["key"], line["value"])
            commit = self._new_commit(repo, head, files, header.get("summary", ""))
            pr_url = None
            if create_pr:
                number = len(repo.pr_base) + 1
                repo.refs[f"refs/pr/{number}"] = commit.sha
                repo.pr_base[number] = head.sha
                pr_url = f"{self.endpoint}/datasets/{repo_id}/discussions/{number}"
            else:
                repo.refs[rev] = commit.sha
            return {"commitUrl": f"{self.endpoint}/datasets/{repo_id}/commit/{commit.sha}",
                    "commitOid": commit.sha, "pullRequestUrl": pr_url, "success": True}

    def _apply(self, repo: Repo, files: dict[str, Blob], key: str, value: dict) -> dict[str, Blob]:
        path = value["path"]
        if key == "file":
            data = base64.b64decode(value["content"])
            files[path] = self._store(data, False)
        elif key == "lfsFile":
            data = self.objects.get(value["oid"]) if value["oid"] in repo.lfs else None
            if data is None:
                raise HttpError(422, f"{path}: LFS object {value['oid']} was never uploaded")
            files[path] = Blob(value["oid"], len(data), True)
        elif key == "deletedFile":
            if files.pop(path, None) is None:
                raise HttpError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
        elif key == "deletedFolder":
            files = {p: b for p, b in files.items() if not p.startswith(path.rstrip("/") + "/")}
        else:
            raise HttpError(400, f"unknown commit operation {key!r}")
        return files

    def merge_pr(self, repo_id: str, number: int) -> None:
        """Apply the PR's changes (its head against the commit it was opened from) onto main."""
        with self.lock:
            repo = self._repo(repo_id)
            if number not in repo.pr_base:
                raise HttpError(404, f"no pull request #{number}")
            base, pr = repo.commits[repo.pr_base[number]], repo.resolve(f"refs/pr/{number}")
            main = repo.resolve("main")
            files = dict(main.files)
            for path in set(base.files) | set(pr.files):
                if path not in pr.files:
                    files.pop(path, None)
                elif base.files.get(path) != pr.files[path]:
                    files[path] = pr.files[path]
            repo.refs["main"] = self._new_commit(repo, main, files, f"Merge pull request #{number}").sha

    @staticmethod
    def _tags(repo: Repo) -> set[str]:
        return {r for r in repo.refs if r != "main" and not r.startswith("refs/")}

    def tag(self, repo_id: str, rev: str, name: str) -> None:
        with self.lock:
            repo = self._repo(repo_id)
            commit = repo.resolve(rev)
            if commit is None:
                raise HttpError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
            if name in repo.refs:
                raise HttpError(409, f"Tag {name} already exists")
            repo.refs[name] = commit.sha

    def stored_lfs(self, repo_id: str, oid: str, data: bytes) -> None:
        with self.lock:
            repo = self._repo(repo_id)
            if hashlib.sha256(data).hexdigest() != oid:
                raise HttpError(400, f"content does not match oid {oid}")
            self.objects[oid] = data
            repo.lfs.add(oid)
            if self._uploads_left is not None:
                self._uploads_left -= 1


def _serve(hub: HubServer) -> ThreadingHTTPServer:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    srv.hub = hub
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    return srv


def _commit_of(hub: HubServer, repo_id: str, rev: str) -> tuple[Repo, Commit]:
    repo = hub._repo(repo_id)
    commit = repo.resolve(rev)
    if commit is None:
        raise HttpError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
    return repo, commit


def _entries(commit: Commit, prefix: str, recursive: bool, expand: bool) -> list[dict]:
    """The tree under ``prefix`` (files and folders, sorted), as the tree and paths-info routes give it."""
    base = prefix.strip("/") + "/" if prefix.strip("/") else ""
    out: dict[str, dict] = {}
    for path, blob in commit.files.items():
        if not path.startswith(base):
            continue
        parts = path[len(base):].split("/")
        for depth in range(1, len(parts) if recursive else 1):
            folder = base + "/".join(parts[:depth])
            out.setdefault(folder, _folder(folder))
        if recursive or len(parts) == 1:
            out[path] = _file(path, blob, commit, expand)
        else:
            out.setdefault(base + parts[0], _folder(base + parts[0]))
    return [out[p] for p in sorted(out)]


def _folder(path: str) -> dict:
    return {"type": "directory", "oid": hashlib.sha1(path.encode()).hexdigest(), "size": 0, "path": path}


def _file(path: str, blob: Blob, commit: Commit, expand: bool) -> dict:
    entry = {"type": "file", "oid": blob.oid, "size": blob.size, "path": path}
    if blob.lfs:
        entry["lfs"] = {"oid": blob.sha256, "size": blob.size, "pointerSize": len(lfs_pointer(blob.sha256, blob.size))}
    if expand:
        entry["lastCommit"] = {"id": commit.sha, "title": commit.title, "date": commit.date}
    return entry


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = REQUEST_TIMEOUT_S
    server_version = "ggt-local-hub"

    def log_message(self, fmt, *args) -> None:   # quiet: requests are recorded in hub.requests
        pass

    @property
    def hub(self) -> HubServer:
        return self.server.hub

    def do_GET(self):
        self._dispatch("GET")

    def do_HEAD(self):
        self._dispatch("HEAD")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        if self.hub._down:
            self.close_connection = True
            return
        url = urlsplit(self.path)
        self.query = parse_qs(url.query)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)) if method in ("POST", "PUT") else b""
        segments = [unquote(s) for s in url.path.split("/")[1:]]
        try:
            status = self._route(method, segments, body)
        except HttpError as e:
            status = e.status
            headers = {**e.headers, **({"X-Error-Code": e.code} if e.code else {}), "X-Error-Message": str(e)}
            self._send(e.status, {"error": str(e), **e.body}, headers, head=method == "HEAD")
        except _Stop:
            self.close_connection = True
            threading.Thread(target=self.hub.stop, daemon=True).start()
            status = 0
        self.hub.requests.append((method, self.path, status))

    def _route(self, method: str, s: list[str], body: bytes) -> int:
        hub = self.hub
        if s[:1] == ["api"] and len(s) >= 4 and s[1] == "datasets":
            repo_id, rest = f"{s[2]}/{s[3]}", s[4:]
            if method == "GET" and not rest:
                return self._info(repo_id, "main")
            if method == "GET" and rest[:1] == ["revision"] and len(rest) >= 2:
                return self._info(repo_id, "/".join(rest[1:]))
            if method == "GET" and rest[:1] == ["tree"] and len(rest) >= 2:
                return self._tree(repo_id, rest)
            if method == "GET" and rest == ["refs"]:
                return self._refs(repo_id)
            if method == "POST" and rest[:1] == ["paths-info"]:
                return self._paths_info(repo_id, "/".join(rest[1:]), body)
            if method == "POST" and rest[:1] == ["preupload"]:
                return self._preupload(repo_id, "/".join(rest[1:]), body)
            if method == "POST" and rest[:1] == ["commit"]:
                self._need_token()
                lines = [json.loads(line) for line in body.splitlines() if line.strip()]
                return self._send(200, hub.commit(repo_id, "/".join(rest[1:]), lines,
                                                  self.query.get("create_pr") == ["1"]))
            if method == "POST" and rest[:1] == ["tag"]:
                self._need_token()
                hub.tag(repo_id, "/".join(rest[1:]), json.loads(body)["tag"])
                return self._send(200, {})
            if method == "POST" and rest[:1] == ["discussions"] and rest[2:] == ["merge"]:
                self._need_token()
                hub.merge_pr(repo_id, int(rest[1]))
                return self._send(200, {})
        if method == "POST" and s == ["api", "repos", "create"]:
            self._need_token()
            payload = json.loads(body)
            if payload.get("type") != "dataset":
                return self._gap(method, "only dataset repos are implemented")
            repo_id = f"{payload['organization']}/{payload['name']}"
            hub.create_repo(repo_id)
            return self._send(200, {"url": f"{hub.endpoint}/datasets/{repo_id}", "name": repo_id})
        if method == "POST" and s == ["api", "validate-yaml"]:
            return self._validate_yaml(body)
        if method == "POST" and s[:1] == ["datasets"] and s[3:] == ["info", "lfs", "objects", "batch"] \
                and s[2].endswith(".git"):
            return self._lfs_batch(f"{s[1]}/{s[2][:-4]}", body)
        if method == "PUT" and len(s) == 4 and s[0] == "lfs":
            if hub._uploads_left is not None and hub._uploads_left <= 0:
                raise _Stop
            hub.stored_lfs(f"{s[1]}/{s[2]}", s[3], body)
            return self._send(200, {})
        if method == "POST" and len(s) == 4 and s[0] == "lfs" and s[3] == "verify":
            oid = json.loads(body)["oid"]
            if oid not in hub._repo(f"{s[1]}/{s[2]}").lfs:
                raise HttpError(404, f"object {oid} not found")
            return self._send(200, {})
        if method in ("GET", "HEAD") and len(s) >= 6 and s[0] == "datasets" and s[3] == "resolve":
            return self._resolve(method, f"{s[1]}/{s[2]}", s[4:])
        if method in ("GET", "HEAD") and len(s) == 2 and s[0] == "cdn":
            data = hub.objects.get(s[1])
            if data is None:
                raise HttpError(404, "no such object")
            return self._send_bytes(method, data, {"ETag": f'"{s[1]}"'})
        return self._gap(method, "not implemented by tests/hub_server.py")

    # -- routes ----------------------------------------------------------------------------
    def _info(self, repo_id: str, rev: str) -> int:
        repo, commit = _commit_of(self.hub, repo_id, rev)
        siblings = [{"rfilename": p, "size": b.size, "blobId": b.oid} for p, b in sorted(commit.files.items())]
        return self._send(200, {"_id": repo_id, "id": repo_id, "author": repo_id.split("/")[0], "sha": commit.sha,
                                "lastModified": commit.date, "createdAt": repo.commits[repo.refs["main"]].date,
                                "private": False, "gated": False, "disabled": False, "tags": [],
                                "siblings": siblings})

    def _tree(self, repo_id: str, rest: list[str]) -> int:
        # The client quotes the whole path with safe="" (one segment); a raw "a/b" works too.
        rev, path = self._rev_and_path(repo_id, rest[1:])
        _, commit = _commit_of(self.hub, repo_id, rev)
        entries = _entries(commit, path, self._flag("recursive"), self._flag("expand"))
        if path and not entries and path not in commit.files:
            raise HttpError(404, f"{path} does not exist on {rev}", "EntryNotFound")
        start = int(self.query.get("cursor", ["0"])[0])
        page = entries[start:start + self.hub.page_size]
        headers = {}
        if start + self.hub.page_size < len(entries):
            query = "&".join(f"{k}={quote(v[0])}" for k, v in self.query.items() if k != "cursor")
            nxt = f"{self.hub.endpoint}{urlsplit(self.path).path}?{query}&cursor={start + len(page)}"
            headers["Link"] = f'<{nxt}>; rel="next"'
        return self._send(200, page, headers)

    def _flag(self, name: str) -> bool:
        return self.query.get(name, ["False"])[0].lower() in ("1", "true")

    def _rev_and_path(self, repo_id: str, parts: list[str]) -> tuple[str, str]:
        """A revision may hold slashes (refs/pr/1): take the longest known one."""
        repo = self.hub._repo(repo_id)
        for n in range(len(parts), 0, -1):
            if repo.resolve("/".join(parts[:n])):
                return "/".join(parts[:n]), "/".join(parts[n:])
        return parts[0], "/".join(parts[1:])

    def _refs(self, repo_id: str) -> int:
        repo = self.hub._repo(repo_id)
        tags = self.hub._tags(repo)
        refs = {name: {"name": name, "ref": name, "targetCommit": sha} for name, sha in repo.refs.items()}
        return self._send(200, {"branches": [refs["main"]], "tags": [refs[t] for t in sorted(tags)], "converts": []})

    def _paths_info(self, repo_id: str, rev: str, body: bytes) -> int:
        _, commit = _commit_of(self.hub, repo_id, rev)
        form = parse_qs(body.decode())
        expand = form.get("expand", ["False"])[0].lower() in ("1", "true")
        out = []
        for path in form.get("paths", []):
            path = path.strip("/")
            if path in commit.files:
                out.append(_file(path, commit.files[path], commit, expand))
            elif any(p.startswith(path + "/") for p in commit.files):
                out.append(_folder(path))
        return self._send(200, out)

    def _preupload(self, repo_id: str, rev: str, body: bytes) -> int:
        _, commit = _commit_of(self.hub, repo_id, rev)
        files = []
        for f in json.loads(body)["files"]:
            sample = base64.b64decode(f["sample"])
            lfs = f["path"].endswith(LFS_EXTENSIONS) or f["size"] >= LFS_MIN_BYTES or b"\0" in sample
            there = commit.files.get(f["path"])
            oid = None if there is None else (there.sha256 if there.lfs else there.oid)
            files.append({"path": f["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False,
                          "oid": oid})
        return self._send(200, {"files": files, "commitOid": commit.sha})

    def _lfs_batch(self, repo_id: str, body: bytes) -> int:
        self._need_token()
        repo = self.hub._repo(repo_id)
        req = json.loads(body)
        if "basic" not in req.get("transfers", ["basic"]):
            raise HttpError(422, "only the basic transfer is implemented")
        objects = []
        for obj in req["objects"]:
            entry = {"oid": obj["oid"], "size": obj["size"]}
            if obj["oid"] not in repo.lfs:   # the Hub asks only for what this repo does not have
                entry["actions"] = {"upload": {"href": f"{self.hub.endpoint}/lfs/{repo_id}/{obj['oid']}"},
                                    "verify": {"href": f"{self.hub.endpoint}/lfs/{repo_id}/verify"}}
            objects.append(entry)
        return self._send(200, {"transfer": "basic", "objects": objects, "hash_algo": "sha256"},
                          {"Content-Type": "application/vnd.git-lfs+json"})

    def _validate_yaml(self, body: bytes) -> int:
        import yaml

        content = json.loads(body)["content"]
        if content.startswith("---\n"):
            try:
                yaml.safe_load(content[4:].split("\n---\n", 1)[0])
            except yaml.YAMLError as e:
                return self._send(400, {"errors": [{"message": str(e)}], "warnings": []})
        return self._send(200, {"errors": [], "warnings": []})

    def _resolve(self, method: str, repo_id: str, rest: list[str]) -> int:
        rev, path = self._rev_and_path(repo_id, rest)
        _, commit = _commit_of(self.hub, repo_id, rev)
        blob = commit.files.get(path)
        headers = {"X-Repo-Commit": commit.sha}
        if blob is None:
            raise HttpError(404, f"Entry not found: {path}", "EntryNotFound", headers)
        headers["ETag"] = f'"{blob.oid}"'
        if blob.lfs:   # as the Hub: a redirect to the CDN, the file's hash and size on the redirect itself
            headers.update({"Location": f"{self.hub.cdn}/cdn/{blob.sha256}", "X-Linked-Etag": f'"{blob.sha256}"',
                            "X-Linked-Size": str(blob.size)})
            return self._send(302, {}, headers, head=method == "HEAD")
        return self._send_bytes(method, self.hub.objects[blob.sha256], headers)

    # -- responses -------------------------------------------------------------------------
    def _need_token(self) -> None:
        if not self.headers.get("Authorization", "").startswith("Bearer "):
            raise HttpError(401, "Invalid credentials in Authorization header")

    def _gap(self, method: str, why: str) -> int:
        line = f"{method} {self.path}: {why}"
        self.hub.gaps.append(line)
        print(f"hub_server: 501 {line}", file=sys.stderr, flush=True)
        raise HttpError(501, line)

    def _send(self, status: int, payload, headers: dict | None = None, head: bool = False) -> int:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if not head:
            self.wfile.write(data)
        return status

    def _send_bytes(self, method: str, data: bytes, headers: dict) -> int:
        status, start, end = 200, 0, len(data)
        rng = self.headers.get("Range")
        if rng:
            first, _, last = rng.removeprefix("bytes=").partition("-")
            if first == "":                       # a suffix range: the last N bytes
                start = max(0, len(data) - int(last))
            else:
                start, end = int(first), min(len(data), int(last) + 1 if last else len(data))
            if start >= len(data) or start >= end:
                raise HttpError(416, "Range Not Satisfiable", headers={"Content-Range": f"bytes */{len(data)}"})
            status = 206
            headers = {**headers, "Content-Range": f"bytes {start}-{end - 1}/{len(data)}"}
        self.send_response(status)
        self.send_header("Content-Length", str(end - start))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "application/octet-stream")
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if method == "GET":
            self.wfile.write(data[start:end])
        return status


class _Stop(Exception):
    """Raised inside a request to stop the whole server (see HubServer.fail_uploads_after)."""


if __name__ == "__main__":   # a manual session: python tests/hub_server.py, then HF_ENDPOINT=... in a shell
    with HubServer() as hub:
        print(f"HF_ENDPOINT={hub.endpoint} HF_HUB_DISABLE_XET=1 HF_TOKEN=hf_local_test   (Ctrl-C stops it)")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
