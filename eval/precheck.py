"""One pass over a submission before any pixel is decoded: every cheap problem, listed at once.

Ids first (``match``: missing, extra, duplicated), then per prediction, from its bytes and
header only (``check``): the file can be read; Pillow identifies an allowed format with one
frame under the pixel limit and a PNG's chunks are whole (decode.header_size); its size after
EXIF orientation fits its ground truth's (the dataset's hq_width/hq_height) under the
protocol's size policy and is large enough for every metric (Protocol.pair_problem).
``problems`` words them all in one message.
Scoring used to stop at the first kind of problem: ids first, a wrong size on the next
run, so a user fixed a submission in as many runs as it had kinds of problems.
What only a full decode shows (a truncated image body) is still found while scoring.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ..errors import GGTError
from .decode import ImageDecodeError, header_size
from .predictions import Predictions, by_stem
from .protocol import Protocol
from .references import References


class ScoreError(GGTError):
    """Predictions that cannot be scored under the protocol (the message lists them all)."""


@dataclass
class Match:
    scored: list[str]                 # ids to score, in dataset order
    missing: list[str]
    extra: list[str]
    duplicates: dict[str, list[str]]

    @property
    def complete(self) -> bool:
        return not (self.missing or self.extra or self.duplicates)


def match(preds: Predictions, refs: References) -> Match:
    known = set(refs.ids)
    if preds.flat and any("/" in i for i in known):
        base = by_stem(refs.ids)
        if all(len(v) == 1 for v in base.values()):
            preds.rekey({k: base[k][0] for k in preds.names if k in base})
            preds.duplicates = {base[k][0] if k in base else k: v for k, v in preds.duplicates.items()}
    have = set(preds.names)
    return Match(scored=[i for i in refs.ids if i in have], missing=[i for i in refs.ids if i not in have
                                                                   and i not in preds.duplicates],
                 extra=sorted(have - known), duplicates=dict(sorted(preds.duplicates.items())))


def describe_mismatch(m: Match, source: str, limit: int = 10) -> str:
    lines = []
    for what, ids in (("missing (in the test set, no prediction)", m.missing),
                      ("extra (a prediction for no test pair)", m.extra)):
        if ids:
            shown = ", ".join(ids[:limit]) + (f", ... ({len(ids) - limit} more)" if len(ids) > limit else "")
            lines.append(f"{len(ids)} {what}: {shown}")
    for pair_id, files in list(m.duplicates.items())[:limit]:
        lines.append(f"duplicate id {pair_id!r}: {', '.join(files)}")
    if len(m.duplicates) > limit:
        lines.append(f"... and {len(m.duplicates) - limit} more duplicate ids")
    if m.extra and not any("/" in i for i in m.extra) and any("/" in i for i in m.missing):
        lines.append("hint: ids are paths like rain/0001; put each prediction at <category>/<name>.png "
                     "(file names alone are ambiguous in this test set)")
    return f"{source}: predictions do not line up with the test set:\n  " + "\n  ".join(lines)


def describe_unscorable(failed: list[str], protocol: Protocol, limit: int = 50) -> str:
    return (f"{len(failed)} prediction(s) cannot be scored under protocol {protocol.name!r}:\n  "
            + "\n  ".join(failed[:limit])
            + (f"\n  ... and {len(failed) - limit} more" if len(failed) > limit else ""))


def problems(m: Match, source: str, failed: list[str], protocol: Protocol, partial_option: str,
              rest: bool = True) -> str:
    """Every problem found, ids and files together, and what to do about them."""
    parts = ([describe_mismatch(m, source)] if not m.complete else []) + (
        [describe_unscorable(failed, protocol)] if failed else [])
    fix = (f"Fix them, or pass {partial_option} to score the rest (the report is then marked partial)."
           if rest else "No prediction can be scored; fix them.")
    return "\n".join(parts + [f"Nothing was written. {fix}"])


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
