"""sha256 of a file, read in chunks: the one helper the build, verify, synth and the
weight checks share, so a 300 MB shard or a 500 MB weight file never sits in memory."""

from __future__ import annotations

import hashlib


def file_sha256(path: str, chunk: int = 8 * 2**20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
