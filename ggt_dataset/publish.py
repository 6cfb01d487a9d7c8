"""``ggt publish``: upload a verified build to the Hub, or (``dry_run``) say what would go up.

The upload is ``HfApi.upload_folder``: with hf-xet it commits in batches and a
re-run of the same call resumes an interrupted upload, skipping what is there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from huggingface_hub import HfApi
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id

from . import card
from . import manifest as manifest_mod
from .atomic import write_text
from .build import STATE_DIR
from .errors import PublishError
from .plan import MAX_FILES_PER_FOLDER
from .verify import verify

# Hub limits (https://huggingface.co/docs/hub/storage-limits): a file may not exceed
# 50 GB (we warn from 20 GB, the recommended maximum); a repo should stay under 100k files.
MAX_FILE_BYTES = 50 * 10**9
WARN_FILE_BYTES = 20 * 10**9
MAX_REPO_FILES = 100_000
IGNORE_PATTERNS = [f"{STATE_DIR}/**", "**/.DS_Store", "**/*.partial", "**/*.tmp-*"]


@dataclass
class PublishPlan:
    out: str
    repo_id: str
    files: list[tuple[str, int]] = field(default_factory=list)  # (path in repo, bytes)
    warnings: list[str] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return sum(n for _, n in self.files)


def plan(out: str, repo_id: str) -> PublishPlan:
    """Everything the Hub would reject, checked locally; raises PublishError listing each problem."""
    try:
        validate_repo_id(repo_id)
    except HFValidationError as e:
        raise PublishError(f"--repo-id {repo_id!r} is not a valid repo id ({e})") from None
    if "/" not in repo_id:
        raise PublishError(f"--repo-id {repo_id!r}: give ORG/NAME (or USER/NAME)")
    report = verify(out)
    problems = list(report.faults)
    result = PublishPlan(out, repo_id, _files(out))
    per_folder: dict[str, int] = {}
    for path, size in result.files:
        folder = os.path.dirname(path) or "."
        per_folder[folder] = per_folder.get(folder, 0) + 1
        if size > MAX_FILE_BYTES:
            problems.append(f"{path}: {size:,} bytes, over the Hub's 50 GB file limit; rebuild with "
                            "a smaller --shard-size")
        elif size > WARN_FILE_BYTES:
            result.warnings.append(f"{path}: {size:,} bytes, over the recommended 20 GB")
    problems += [f"{folder}/: {n} files, over the Hub's {MAX_FILES_PER_FOLDER} per folder"
                 for folder, n in per_folder.items() if n > MAX_FILES_PER_FOLDER]
    if len(result.files) > MAX_REPO_FILES:
        problems.append(f"{len(result.files)} files, over the Hub's recommended {MAX_REPO_FILES}")
    if problems:
        raise PublishError(f"{out}: not publishable:\n" + "\n".join(f"  {p}" for p in problems))
    return result


def _files(out: str) -> list[tuple[str, int]]:
    files = []
    for dirpath, dirnames, filenames in os.walk(out):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for fn in sorted(filenames):
            if fn.startswith(".") or fn.endswith(".partial") or ".tmp-" in fn:
                continue
            full = os.path.join(dirpath, fn)
            files.append((os.path.relpath(full, out).replace(os.sep, "/"), os.path.getsize(full)))
    return files


def publish(out: str, repo_id: str, *, private: bool = False, revision: str | None = None,
            token: str | None = None, api: HfApi | None = None) -> str:
    """Check, then upload ``out`` as the dataset repo ``repo_id``; returns the commit URL.

    Re-running after an interruption resumes (files already committed are skipped).
    The card's examples are rewritten to name ``repo_id`` before the upload.
    """
    plan(out, repo_id)
    api = api or HfApi(token=token)
    data = manifest_mod.read(out)
    write_text(os.path.join(out, "README.md"), card.render(data, repo=repo_id))
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    info = api.upload_folder(
        repo_id=repo_id, repo_type="dataset", folder_path=out, revision=revision,
        ignore_patterns=IGNORE_PATTERNS,
        commit_message=f"Upload {data['release']['pretty_name']} ({data['totals']['pairs']:,} pairs) "
                       f"built with ggt-100k {data['built_with']['ggt-100k']}",
    )
    return str(getattr(info, "commit_url", info))
