"""Finding the same image twice: a test LQ that is also in train is leakage, and
repeated pairs within a split weigh some scenes twice.

Reads only the ``id`` and ``*_sha256`` columns of the finished shards, so it
costs a fraction of a second per 100K pairs and works the same on resumed builds.
"""

from __future__ import annotations

import os
from collections import defaultdict
from typing import Any

import pyarrow.parquet as pq

MAX_LISTED = 100


def find_duplicates(out: str, shards: list[dict[str, Any]]) -> dict[str, Any]:
    """{"lq_in_train_and_test": [...], "lq_repeated_within_split": [...]} as lists of id groups."""
    seen: dict[str, list[tuple[str, str]]] = defaultdict(list)  # lq sha256 -> [(split, id)]
    for shard in shards:
        table = pq.read_table(os.path.join(out, shard["path"]), columns=["id", "lq_sha256"])
        for pair_id, digest in zip(table.column("id").to_pylist(), table.column("lq_sha256").to_pylist()):
            seen[digest].append((shard["split"], pair_id))
    across: list[list[str]] = []
    within: list[list[str]] = []
    for members in seen.values():
        if len(members) < 2:
            continue
        splits = {s for s, _ in members}
        group = [f"{s}:{i}" for s, i in sorted(members)]
        (across if len(splits) > 1 else within).append(group)
    across.sort()
    within.sort()
    return {"lq_in_train_and_test": {"count": len(across), "first": across[:MAX_LISTED]},
            "lq_repeated_within_split": {"count": len(within), "first": within[:MAX_LISTED]}}
