"""A results repo: a local folder or a Hub dataset repo, one layout (docs/benchmark.md).

It holds ``ggt-results.yaml`` (the protocols and test sets it accepts) and the records
under ``submissions/``. Local writes are atomic file by file; a Hub write is one commit
opened as a pull request, so maintainers review and merge.
"""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass

from ..atomic import copy_file, write_bytes
from .record import SUBMISSIONS, Record, RecordError

CONFIG = "ggt-results.yaml"
REPO_ID = re.compile(r"[\w.-]+/[\w.-]+")     # ORG/NAME, as the Hub spells repo ids


@dataclass(frozen=True)
class Accepted:
    """What ``ggt-results.yaml`` accepts: protocol name -> sha256s, and test-set sha256s."""

    protocols: dict[str, tuple[str, ...]]
    test_sets: tuple[str, ...]

    def check_protocol(self, name: str, sha256: str, where: str) -> None:
        if sha256 not in self.protocols.get(name, ()):
            known = ", ".join(f"{k} ({', '.join(s[:12] for s in v)})" for k, v in self.protocols.items())
            raise RecordError(f"{where}: protocol {name!r} with sha256 {sha256[:12]} is not accepted by "
                              f"this results repo (its {CONFIG} accepts {known or 'none'}); score with "
                              "one of those protocols, unedited")

    def check_test_set(self, sha256: str, where: str) -> None:
        if sha256 not in self.test_sets:
            raise RecordError(f"{where}: made on test set {sha256[:12]}, which this results repo does not "
                              f"accept (its {CONFIG} lists {', '.join(s[:12] for s in self.test_sets) or 'none'}); "
                              "score against the benchmark's test set")


def _parse_config(text: bytes, where: str) -> Accepted:
    import yaml

    try:
        d = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise RecordError(f"{where}: not YAML ({' '.join(str(e).split())})") from None
    protocols = d.get("protocols") if isinstance(d, dict) else None
    tests = d.get("test_sets") if isinstance(d, dict) else None
    if not isinstance(protocols, dict) or not isinstance(tests, list):
        raise RecordError(f"{where}: needs 'protocols' (name: sha256 or a list of them) and 'test_sets' "
                          "(a list of test-set sha256s); see docs/benchmark.md")
    accepted = {str(k): tuple(map(str, v if isinstance(v, list) else [v])) for k, v in protocols.items()}
    return Accepted(accepted, tuple(map(str, tests)))


def init_folder(folder: str, reference: str, protocols: list[str], split: str = "test") -> str:
    """Start a local results repo: ``ggt-results.yaml`` accepting ``protocols`` (each pinned by
    its sha256 as shipped) and ``split`` of ``reference`` (pinned by its test-set sha256).
    Returns the file's text. An existing config is refused: it is the maintainers' record."""
    from ..eval.protocol import load
    from ..eval.references import open_references

    path = os.path.join(folder, CONFIG)
    if os.path.exists(path):
        raise RecordError(f"{path}: exists; edit it by hand to accept more protocols or test sets")
    if not protocols:
        raise RecordError(f"{folder}: name at least one protocol to accept (--protocol ggt)")
    pinned = {name: load(name).sha256() for name in protocols}
    test_set = open_references(reference, split).fingerprint
    text = (f"# What this results repo accepts (docs/benchmark.md). Made by `ggt leaderboard init`\n"
            f"# from {reference} split {split!r}; a record must match both lists.\n"
            "protocols:\n" + "".join(f"  {k}: {v}\n" for k, v in pinned.items())
            + f"test_sets:\n  - {test_set}\n")
    _parse_config(text.encode(), path)              # what we write, we can read
    os.makedirs(folder, exist_ok=True)
    write_bytes(path, text.encode())
    return text


class Results:
    """``target``: a folder holding ggt-results.yaml, or a Hub dataset repo id (ORG/NAME)."""

    def __init__(self, target: str, token: str | None = None):
        self.target, self.token = target, token
        self.local = os.path.isdir(target)
        if not self.local and (os.path.exists(target) or not REPO_ID.fullmatch(target)):
            raise RecordError(f"{target}: not a results folder (one holding {CONFIG}) nor a Hub dataset "
                              "repo id ORG/NAME")

    def _api(self):
        from huggingface_hub import HfApi

        return HfApi(token=self.token)

    def read(self, path: str) -> bytes | None:
        """The bytes of ``path`` (``/`` separated) on the main branch, or None if it is not there."""
        if self.local:
            full = os.path.join(self.target, *path.split("/"))
            if not os.path.isfile(full):
                return None
            with open(full, "rb") as f:
                return f.read()
        return self._hub_read(path)

    def _hub(self, what: str, call, *args, **kwargs):
        """``call(*args, **kwargs)`` on the Hub; its failures become one-line RecordErrors."""
        from huggingface_hub.errors import (
            EntryNotFoundError,
            HfHubHTTPError,
            RepositoryNotFoundError,
        )

        from ..hub import unreachable, unreachable_message

        try:
            return call(*args, **kwargs)
        except EntryNotFoundError:
            raise           # a file that is not there: the caller's answer, not a failure
        except RepositoryNotFoundError:
            raise RecordError(f"{self.target}: no such dataset repo on the Hub (or no access to it)") from None
        except Exception as e:  # the Hub's failures have many types; any other re-raises
            if unreachable(e):
                raise RecordError(unreachable_message(f"{what} {self.target}", e)) from None
            if isinstance(e, HfHubHTTPError):
                raise RecordError(f"{self.target}: the Hub refused to {what} ({' '.join(str(e).split())[:300]})") from None
            raise

    def _hub_read(self, path: str) -> bytes | None:
        from huggingface_hub.errors import EntryNotFoundError

        try:
            local = self.local_path(path)
        except EntryNotFoundError:
            return None
        with open(local, "rb") as f:
            return f.read()

    def local_path(self, path: str) -> str:
        """A local file holding ``path`` (downloaded from the Hub if need be)."""
        if self.local:
            return os.path.join(self.target, *path.split("/"))
        from huggingface_hub import hf_hub_download

        return self._hub("read", hf_hub_download, self.target, path, repo_type="dataset", token=self.token)

    def accepted(self) -> Accepted:
        raw = self.read(CONFIG)
        where = posixpath.join(self.target, CONFIG)
        if raw is None:
            raise RecordError(f"{where}: missing; a results repo says in it which protocols and test "
                              "sets it accepts (docs/benchmark.md)")
        return _parse_config(raw, where)

    def record_paths(self) -> list[str]:
        """Every record's path, sorted (so runs go in the same order)."""
        if self.local:
            root = os.path.join(self.target, SUBMISSIONS)
            found = [f"{SUBMISSIONS}/{d}/{f}" for d in (os.listdir(root) if os.path.isdir(root) else [])
                     if os.path.isdir(os.path.join(root, d))
                     for f in os.listdir(os.path.join(root, d)) if f.endswith(".json")]
        else:
            found = [f for f in self._hub("list", self._api().list_repo_files, self.target, repo_type="dataset")
                     if f.startswith(SUBMISSIONS + "/") and f.endswith(".json")]
        return sorted(found)

    def record(self, path: str) -> Record:
        raw = self.read(path)
        if raw is None:
            raise RecordError(f"{self.target}: no record {path}")
        return Record.from_json(raw, posixpath.join(self.target, path))

    def write(self, files: dict[str, bytes | str], message: str) -> str:
        """Write ``files`` (repo path -> bytes, or a local file to copy); returns where they went.

        Local: each file atomically, the record last, so a reader never sees a record whose
        table or outputs are not there yet. Hub: one commit, opened as a pull request.
        """
        order = sorted(files, key=lambda p: p.endswith(".json"))
        if self.local:
            for path in order:
                data, dest = files[path], os.path.join(self.target, *path.split("/"))
                if isinstance(data, str):
                    copy_file(data, dest)
                else:
                    write_bytes(dest, data)
            return self.target
        from huggingface_hub import CommitOperationAdd

        ops = [CommitOperationAdd(path_in_repo=p, path_or_fileobj=files[p]) for p in order]
        info = self._hub("open a pull request on", self._api().create_commit, self.target, ops,
                         commit_message=message, repo_type="dataset", create_pr=True)
        return info.pr_url or info.commit_url
