"""One-line loading of a built GGT-100K, from a local folder or the Hub."""

from __future__ import annotations

import atexit
import gc
import os
import time
from typing import Any

from . import hub

# The authors' repo holds the raw image folders; a Parquet build published there (or
# to your own repo, named by GGT_REPO_ID or repo_id=) is what this loads.
DEFAULT_REPO_ID = "VCLab-PolyU/GGT-100K"
REPO_ENV = "GGT_REPO_ID"


# A stream closed before its end (``next(iter(ds))``, a ``break``) leaves its Parquet scanner
# in a reference cycle. If that cycle is first collected during interpreter shutdown, the
# scanner's threads meet a half-destroyed Arrow and the process aborts after all its work
# ("terminate called without an active exception", apache/arrow#45214, datasets#7566).
# datasets works around it only for pyarrow <= 24. Measured here (pyarrow 26.0.1, datasets
# 5.2.0, a 200-row-group file, first row then exit): 8 aborts in 15 runs as is; 6 in 30 with a
# gc.collect() at exit (the collected scanners' threads were still finishing a read); 0 in 30
# when the collection is followed by 50 ms for those threads to end.
_SETTLE_S = 0.05
_settle_registered = False


def _settle_streams() -> None:
    gc.collect()
    time.sleep(_SETTLE_S)


def _exit_cleanly_after_streaming() -> None:
    global _settle_registered
    if not _settle_registered:
        atexit.register(_settle_streams)
        _settle_registered = True


def default_repo_id() -> str:
    return os.environ.get(REPO_ENV) or DEFAULT_REPO_ID


def load(path_or_repo: str | None = None, name: str | None = None, **kwargs: Any):
    """Load GGT-100K with ``datasets.load_dataset``.

    Args:
        path_or_repo: a folder written by ``ggt build``, or a Hub dataset repo id.
            Default: ``$GGT_REPO_ID``, else ``DEFAULT_REPO_ID``.
        name: a config: ``default`` (all categories) or one category (``rain``, ...).
        **kwargs: passed on to ``load_dataset`` (``split``, ``streaming``, ``revision``,
            ``cache_dir``, ``token``, ...).

    Example:
        >>> ds = load("ggt-100k", "rain", split="test", streaming=True)  # doctest: +SKIP
    """
    # imported here, not at the top: tools that only read default_repo_id() never load (0.7 s)
    import datasets

    target = path_or_repo or default_repo_id()
    if kwargs.get("streaming"):
        _exit_cleanly_after_streaming()
    if os.path.isdir(target):
        return datasets.load_dataset(os.path.abspath(target), name, **kwargs)
    if not hub.offline():      # offline, a repo loaded before still loads from the cache
        _ask_hub(target, kwargs.get("revision"), kwargs.get("token"))
    try:
        return datasets.load_dataset(target, name, **kwargs)
    except Exception as e:
        if hub.unreachable(e):
            raise hub.HubUnreachableError(hub.unreachable_message(f"cannot load {target}", e)) from None
        raise


def _ask_hub(repo_id: str, revision: str | None, token: str | bool | None) -> None:
    """One request, no retries: datasets retries a refused connection for ~25 s and then names
    neither the endpoint nor what to do. Other answers (no such repo, no access) are left to
    datasets, whose messages say so."""
    from huggingface_hub import HfApi

    try:
        HfApi(token=token).dataset_info(repo_id, revision=revision, timeout=10)
    except Exception as e:  # noqa: BLE001 (only an unreachable Hub is ours to report)
        if hub.unreachable(e):
            raise hub.HubUnreachableError(hub.unreachable_message(f"cannot load {repo_id}", e)) from None
