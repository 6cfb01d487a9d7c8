"""Options shared by several verbs, defined once."""

from __future__ import annotations

import argparse


def size(text: str) -> int:
    """'300MB', '1.5GiB', '4096' -> bytes."""
    units = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}
    t = text.strip().upper()
    num = t.rstrip("KMGIB")
    try:
        return int(float(num) * units[t[len(num):]])
    except (KeyError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a size like 300MB or 1GiB") from None


def metric_names(text: str | None) -> list[str] | None:
    """``--metrics a,b`` -> ["a", "b"]; no option -> None (every metric). ``--metrics ""`` gives
    [], which the protocol loader refuses rather than reading it as "all"."""
    return None if text is None else [m.strip() for m in text.split(",") if m.strip()]


def add_split(p: argparse.ArgumentParser, *, default: str | None, help: str) -> None:
    """``--split``, one spelling for every verb. Each verb states its own default in ``help``:
    the split a dataset is scored on (test) is not the one raw photos go to (the tree's own)."""
    p.add_argument("--split", default=default, metavar="SPLIT", help=help)


def add_out(p: argparse.ArgumentParser) -> None:
    p.add_argument("out", metavar="OUT", help="a folder written by `ggt build`")


def examples(*lines: str) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)
