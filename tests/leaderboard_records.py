"""Submission records for the leaderboard's tests and bench, made through the real schema
(ggt_dataset.benchmark.record.Record) and written where `ggt submit` puts them."""

from __future__ import annotations

import hashlib
import os

from ggt_dataset.eval import protocol

from ggt_dataset.benchmark.record import Record

CATEGORIES = ("mixed", "rain", "haze", "snow", "low_light", "old_photo")


def mean(value, n: int, posinf: int = 0, neginf: int = 0, nan: int = 0) -> dict:
    """One mean as summary.json holds it: ``value`` over the ``n`` finite scores."""
    return {"mean": value, "n": n, "nonfinite": posinf + neginf + nan, "posinf": posinf, "neginf": neginf, "nan": nan}


def make_record(model: str, means: dict, *, proto: str = "ggt", status: str = "self-reported",
                name: str | None = None, paper: str | None = None, pairs: int = 12,
                per_category: dict | None = None, outputs: int = 0) -> Record:
    """A record of ``model`` under the shipped protocol ``proto``; ``means`` maps metric to a
    :func:`mean` (or a bare number: finite over all pairs)."""
    p = protocol.load(proto)
    better = {m.name: m.better for m in p.metrics + p.optional}
    overall = {k: v if isinstance(v, dict) else mean(v, pairs) for k, v in means.items()}
    if per_category is None:        # every category a little off the overall mean, finite
        per_category = {c: {k: mean(v["mean"] + i * 0.01 if v["mean"] is not None else None, pairs // 6)
                            for k, v in overall.items()} for i, c in enumerate(CATEGORIES)}
    pending = status == "pending"
    test_set = {"source": "ggt-100k", "split": "test", "sha256": "7ab8" * 16, "pairs": pairs}
    sha = {f"{CATEGORIES[i % 6]}/{i:04d}": hashlib.sha256(str((model, i)).encode()).hexdigest()
           for i in range(outputs)}
    verification = ({"date": "2026-12-01T16:00:00+00:00", "fingerprint": {"device": "cpu"}, "differences": []}
                    if status in ("verified", "mismatch") else None)
    return Record(
        model={"id": model, "revision": "0123456789abcdef0123", "name": name, "paper": paper},
        protocol={"name": p.name, "version": p.version, "sha256": p.sha256()}, status=status,
        submitted="2026-12-01T15:30:00+00:00", test_set=None if pending else test_set,
        fingerprint=None if pending else {"protocol": p.name, "protocol_version": p.version,
                                          "protocol_sha256": p.sha256(), "test_set": test_set},
        metrics={} if pending else {k: {"better": better[k]} for k in overall},
        overall={} if pending else overall, per_category={} if pending else per_category,
        outputs={"repo": None, "path": None, "kind": "folder", "sha256": sha} if sha else None, verification=verification)


def write(results: str, rec: Record) -> str:
    path = os.path.join(results, *rec.path.split("/"))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(rec.to_json())
    return path
