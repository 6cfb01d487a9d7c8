"""``ggt publish``: upload a verified build to the Hub, or (``dry_run``) say what would go up.

Exactly the dataset's files are sent (:func:`ggt_dataset.contents.dataset_files`: the
card, the manifest, the shards it lists and files the card links to); everything
else in the folder is named as left out, never uploaded. The data goes up with
``HfApi.upload_folder`` restricted to those exact paths (with hf-xet it commits in
batches and a re-run resumes, skipping what is there). The card, rendered for the
repo, goes up last and from memory: the local build is never modified, and the repo
shows a card only once the files it describes are there.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field

from huggingface_hub import HfApi, RepoCard
from huggingface_hub.errors import HfHubHTTPError, HFValidationError
from huggingface_hub.utils import validate_repo_id

from . import card, hub, hub_card
from . import manifest as manifest_mod
from .contents import dataset_files, other_files, via_symlink, why_left_out
from .errors import PublishError
from .layout import CARD_FILE, STATE_DIR
from .plan import MAX_FILES_PER_FOLDER
from .verify import verify

# Hub limits (https://huggingface.co/docs/hub/storage-limits): a file may not exceed
# 50 GB (we warn from 20 GB, the recommended maximum); a repo should stay under 100k files.
MAX_FILE_BYTES = 50 * 10**9
WARN_FILE_BYTES = 20 * 10**9
MAX_REPO_FILES = 100_000
# What a failed upload raises: huggingface_hub's HTTP library's own HTTPError (httpx's in
# 1.x; a refused connection is one) is HfHubHTTPError's base; offline mode, a missing
# token and unreadable files are OSErrors.
NETWORK_ERRORS = (OSError, *HfHubHTTPError.__bases__)


@dataclass
class PublishPlan:
    out: str
    repo_id: str
    card: bytes = b""  # README.md as uploaded: its examples name repo_id
    commit_message: str = ""
    files: list[tuple[str, int]] = field(default_factory=list)  # (path in repo, bytes): all that is sent
    left_out: list[tuple[str, str]] = field(default_factory=list)  # (path in out, why it is not sent)
    warnings: list[str] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return sum(n for _, n in self.files)


def plan(out: str, repo_id: str) -> PublishPlan:
    """Everything the Hub would reject, checked locally, and the exact list of files to send.

    Raises PublishError listing each problem.
    """
    _check_repo_id(repo_id)
    report = verify(out)
    if report.faults:
        raise PublishError(f"{out}: not publishable:\n" + "\n".join(f"  {p}" for p in report.faults))
    data = manifest_mod.read(out)
    text = card.render(data, repo=repo_id)
    send = dataset_files(out, data, text)
    result = PublishPlan(out, repo_id, text.encode("utf-8"), _commit_message(data))
    result.files = [(p, len(result.card) if p == CARD_FILE else os.path.getsize(os.path.join(out, p)))
                    for p in send]
    result.left_out = [(rel, why_left_out(out, rel)) for rel in other_files(out, set(send))]
    if os.path.isdir(os.path.join(out, STATE_DIR)):
        result.left_out.append((f"{STATE_DIR}/", "resume state of `ggt build`, never uploaded"))
    problems = [f"{p}: a symlink or inside a symlinked folder; publish sends only regular files "
                "(replace the link with the file)" for p in send if p != CARD_FILE and via_symlink(out, p)]
    problems += _hub_limits(result)
    # The card as the Hub parses it, against the Hub's rules: it refuses the commit otherwise.
    header = RepoCard(text).data.to_dict()
    problems += [f"{CARD_FILE}: {p}" for p in hub_card.problems(header, [p for p, _ in result.files])]
    if problems:
        raise PublishError(f"{out}: not publishable:\n" + "\n".join(f"  {p}" for p in problems))
    return result


def _check_repo_id(repo_id: str) -> None:
    try:
        validate_repo_id(repo_id)
    except HFValidationError as e:
        raise PublishError(f"--repo-id {repo_id!r} is not a valid repo id ({e})") from None
    if "/" not in repo_id:
        raise PublishError(f"--repo-id {repo_id!r}: give ORG/NAME (or USER/NAME)")


def _hub_limits(result: PublishPlan) -> list[str]:
    """Problems with the file sizes and counts (the Hub's limits); big files add warnings."""
    problems = []
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
    return problems


def _commit_message(data: dict) -> str:
    return (f"Upload {data['release']['pretty_name']} ({data['totals']['pairs']:,} pairs) "
            f"built with ggt-100k {data['built_with']['ggt-100k']}")


def publish(out: str, repo_id: str, *, private: bool = False, revision: str | None = None,
            token: str | None = None, api: HfApi | None = None,
            checked: PublishPlan | None = None) -> str:
    """Check, then upload ``out`` as the dataset repo ``repo_id``; returns the card's commit URL.

    Args:
        checked: the result of ``plan(out, repo_id)`` just made, to skip checking again.

    Re-running after an interruption resumes (files already committed are skipped).
    Nothing in ``out`` is written.
    """
    result = checked or plan(out, repo_id)
    api = api or HfApi(token=token)
    # Exact paths, escaped: fnmatch would read [ * ? in a file name as wildcards.
    allow = [glob.escape(p) for p, _ in result.files if p != CARD_FILE]
    try:
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        api.upload_folder(repo_id=repo_id, repo_type="dataset", folder_path=out, revision=revision,
                          allow_patterns=allow, commit_message=result.commit_message)
        info = api.upload_file(path_or_fileobj=result.card, path_in_repo=CARD_FILE, repo_id=repo_id,
                               repo_type="dataset", revision=revision,
                               commit_message=f"Dataset card for {repo_id}")
    except Exception as e:
        # Without hf_xet, huggingface_hub wraps each failed LFS upload in RuntimeError("Error while
        # uploading ...") raised from its cause: the network error (hub.unreachable looks through
        # the chain), or its own "client has been closed" when a retrying thread closed the shared
        # HTTP client under the other upload threads (seen with the Hub gone mid-upload).
        if isinstance(e, (*NETWORK_ERRORS, RuntimeError)) or hub.unreachable(e):
            raise PublishError(_failure(repo_id, e)) from None
        raise
    return str(getattr(info, "commit_url", info))


def _failure(repo_id: str, e: BaseException) -> str:
    if hub.unreachable(e):   # one line, naming the endpoint (HF_ENDPOINT) and what to do
        return (hub.unreachable_message(f"cannot publish to datasets/{repo_id}", e)
                + " (files already committed are skipped)")
    cause = f" ({type(e.__cause__).__name__}: {e.__cause__})" if e.__cause__ else ""
    return (f"upload to datasets/{repo_id} failed: {type(e).__name__}: {e}{cause}\nNothing in the build "
            "folder was changed; check the network and your token (`hf auth login`), then run the "
            "same command again: files already committed are skipped")
