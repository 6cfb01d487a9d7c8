"""ggt info TARGET: load a built dataset with `datasets` (a folder or a Hub repo id) and describe it."""

from __future__ import annotations

import argparse
from collections import Counter

from ._options import examples


def register(sub) -> None:
    p = sub.add_parser("info", help="load a build with `datasets` and print what it holds",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog=examples("ggt info ggt-100k", "ggt info me/GGT-100K --config rain"))
    p.add_argument("target", metavar="TARGET", nargs="?", help="build folder or Hub repo id "
                   "(default: $GGT_REPO_ID or the default repo)")
    p.add_argument("--config", default=None, help="default (all categories) or one category")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..loading import load

    ds = load(args.target, args.config)
    print(f"loaded {args.target} with datasets.load_dataset: "
          + ", ".join(f"{split} {len(d):,} pairs" for split, d in ds.items()))
    for split, d in ds.items():
        counts = Counter(d.with_format("arrow")["category"].to_pylist())
        print(f"  {split:<6}" + "  ".join(f"{c} {n}" for c, n in sorted(counts.items())))
    split = next(iter(ds))
    pair = next(iter(load(args.target, args.config, split=split, streaming=True)))
    print(f"streaming {split}[0]: id {pair['id']!r}, lq {pair['lq'].size} {pair['lq'].mode}, "
          f"hq {pair['hq'].size} {pair['hq'].mode}, category {pair['category']}")
    return 0
