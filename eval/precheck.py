"""One pass over a submission before any pixel is decoded: every cheap problem, listed at once.

Per prediction, from its bytes and header only: the file can be read; Pillow identifies an
allowed format with one frame under the pixel limit (decode.header_size); its size after
EXIF orientation fits its ground truth's (the dataset's hq_width/hq_height) under the
protocol's size policy and is large enough for every metric (Protocol.pair_problem).
Scoring used to stop at the first kind of problem: ids first, a wrong size on the next
run, so a user fixed a submission in as many runs as it had kinds of problems.
What only a full decode shows (a truncated image body) is still found while scoring.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from .decode import ImageDecodeError, header_size
from .predictions import Predictions
from .protocol import Protocol
from .references import References


def _problem(pair_id: str, preds: Predictions, refs: References, protocol: Protocol) -> str | None:
    name = preds.names[pair_id]
    try:
        size = header_size(preds.read(pair_id), name)
    except ImageDecodeError as e:
        return str(e)
    gt = refs.sizes.get(pair_id)
    problem = protocol.pair_problem(size, gt) if gt else None
    return f"{name}: {problem}" if problem else None


def check(preds: Predictions, refs: References, protocol: Protocol, ids: list[str],
          workers: int = 2) -> dict[str, str]:
    """id -> what is wrong with its prediction, for every id in ``ids`` that fails a cheap rule."""
    # Threads: reading is I/O, and Pillow releases the GIL while it parses a header.
    with ThreadPoolExecutor(max(1, workers), thread_name_prefix="ggt-precheck") as pool:
        found = pool.map(lambda i: _problem(i, preds, refs, protocol), ids)
        return {i: p for i, p in zip(ids, found) if p}
