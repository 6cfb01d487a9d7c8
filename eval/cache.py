"""Reference-side scores that depend only on the test set, kept across submissions.

No-reference scores of the ground truth are the same for every submission, so the
first run computes them and later runs read them. The key is built in one place,
``reference_key``, from everything that could change the numbers: the metric and
its options, the decode rules' version, pyiqa and torch versions, the device type,
the weight files' hashes and the test set's content fingerprint. Change any of them and the entry is simply
not found. Entries are written atomically; an unreadable one is recomputed.
"""

from __future__ import annotations

import hashlib
import io
import json
import os

from ..atomic import write_bytes, write_json
from ..cache_dir import user_cache

CACHE_FORMAT = 1


def default_dir() -> str:
    return os.environ.get("GGT_CACHE_DIR") or user_cache("eval")


def reference_key(scorer, refs) -> str:
    import torch

    from . import weights
    from .decode import DECODE_RULES_VERSION
    from .metrics import pyiqa_version

    found, _ = weights.resolve(scorer.spec)
    parts = {"format": CACHE_FORMAT, "decode": DECODE_RULES_VERSION, "metric": scorer.spec.pyiqa,
             "options": scorer.spec.pyiqa_options(),
             "dtype": scorer.spec.dtype, "pyiqa": pyiqa_version(), "torch": torch.__version__,
             "device": str(scorer.device).split(":")[0], "unweighted": scorer.unweighted,
             "weights": sorted(r.sha256 for r in found), "test_set": refs.fingerprint}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _path(cache_dir: str | None, scorer, refs) -> str:
    return os.path.join(cache_dir or default_dir(), "reference",
                        f"{scorer.spec.pyiqa}-{reference_key(scorer, refs)[:32]}.json")


def _read_scores(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)["scores"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}           # missing or unreadable: recomputed


def load_reference(cache_dir, scorer, refs, ids: list[str]) -> dict[str, float] | None:
    """Cached ground-truth scores for ``ids``, or None when any is missing."""
    scores = _read_scores(_path(cache_dir, scorer, refs))
    try:
        return {i: float(scores[i]) for i in ids}
    except (KeyError, TypeError, ValueError):
        return None


def save_reference(cache_dir, scorer, refs, scores: dict[str, float]) -> None:
    path = _path(cache_dir, scorer, refs)
    merged = {**_read_scores(path), **scores}
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_json(path, {"key": reference_key(scorer, refs), "metric": scorer.spec.name,
                      "test_set": refs.fingerprint, "scores": merged})


def _moments_path(cache_dir, scorer, refs, ids: list[str]) -> str:
    # FID statistics depend on which pairs were scored (a partial run uses fewer).
    which = hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()[:16]
    return os.path.join(cache_dir or default_dir(), "reference",
                        f"{scorer.spec.pyiqa}-{reference_key(scorer, refs)[:32]}-{which}.npz")


def load_moments(cache_dir, scorer, refs, ids: list[str]):
    """Cached ground-truth FID statistics for exactly ``ids``, or None."""
    import numpy as np

    from .fid import Moments

    try:
        with np.load(_moments_path(cache_dir, scorer, refs, ids)) as z:
            m = Moments(len(z["s1"]))
            m.n, m.s1, m.s2 = int(z["n"]), z["s1"], z["s2"]
            return m
    except (OSError, ValueError, KeyError):
        return None


def save_moments(cache_dir, scorer, refs, ids: list[str], moments) -> None:
    import numpy as np

    buf = io.BytesIO()
    np.savez(buf, n=moments.n, s1=moments.s1, s2=moments.s2)
    write_bytes(_moments_path(cache_dir, scorer, refs, ids), buf.getvalue(), durable=False)
