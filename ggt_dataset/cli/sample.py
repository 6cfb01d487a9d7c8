"""ggt sample RAW: write the offline sample pack (a small raw release)."""

from __future__ import annotations

import argparse

from ._options import examples


def register(sub) -> None:
    p = sub.add_parser("sample", help="write the sample pack: a small raw release made offline",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog=examples("ggt sample sample-raw", "ggt sample sample-raw --train 20 --size 512"))
    p.add_argument("raw", metavar="RAW", help="folder to write (replaced if it holds an earlier pack)")
    p.add_argument("--train", type=int, default=6, help="train pairs per category (default 6)")
    p.add_argument("--test", type=int, default=2, help="test pairs per category (default 2)")
    p.add_argument("--size", type=int, default=256, help="side of each square image in pixels (default 256)")
    p.add_argument("--seed", type=int, default=0, help="random seed; same seed, same bytes (default 0)")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..sample import write_sample

    n = write_sample(args.raw, train_per_category=args.train, test_per_category=args.test,
                     size=args.size, seed=args.seed)
    print(f"wrote {n} pairs to {args.raw}/ (metadata.jsonl, ggt-release.yaml, <split>/LQ|GT/<category>/)")
    return 0
