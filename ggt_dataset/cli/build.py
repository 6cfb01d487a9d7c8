"""ggt build RAW [OUT]: package a raw release as sharded Parquet with a dataset card.

Re-running the same command resumes an interrupted build: finished shards are
checked (sha256) and kept, unfinished ones are redone.
"""

from __future__ import annotations

import argparse

from ..raw_scan import LAYOUTS
from ._options import add_split, examples, size


def register(sub) -> None:
    p = sub.add_parser("build", help="raw image folders or a manifest -> Hub-ready Parquet dataset",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog=examples("ggt build /data/GGT-100K-raw",
                                       "ggt build raw/ out/ --skip-bad --shard-size 500MB",
                                       "ggt build my-pairs/ --split test --category rain"))
    p.add_argument("raw", metavar="RAW", help="raw release: a folder tree, a folder with "
                   "metadata.jsonl/.csv, or a manifest file")
    p.add_argument("out", metavar="OUT", nargs="?", default="ggt-100k",
                   help="output folder (default ./ggt-100k, so load_dataset('ggt-100k') works)")
    p.add_argument("--skip-bad", action="store_true",
                   help="leave bad pairs out (recorded in the manifest) instead of refusing the build")
    p.add_argument("--layout", choices=LAYOUTS, default="auto",
                   help="how to read RAW (default: a manifest if RAW has one, else folders)")
    add_split(p, default=None, help="split for a folder tree whose paths name none")
    p.add_argument("--category", help="category for a folder tree whose paths name none")
    p.add_argument("--shard-size", type=size, default="300MiB", help="target shard size (default 300MiB)")
    p.add_argument("--row-group-size", type=size, default="32MiB", help="max row group size (default 32MiB)")
    p.add_argument("--row-group-rows", type=int, default=100, help="max rows per row group (default 100)")
    p.add_argument("--max-pixels", type=int, help="refuse larger images (default: Pillow's "
                   "MAX_IMAGE_PIXELS, 89,478,485 in Pillow 13)")
    p.add_argument("--decode", action="store_true", help="fully decode every image (default: "
                   "structural checks, full decode only where they fail)")
    p.add_argument("--workers", type=int, help="reader threads (default: one per core, at most 8)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a build of another raw release in OUT (default: refuse)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..build import build
    from ..plan import BuildOptions

    options = BuildOptions(shard_bytes=args.shard_size, row_group_bytes=args.row_group_size,
                           row_group_rows=args.row_group_rows, max_pixels=args.max_pixels,
                           decode=args.decode)
    report = build(args.raw, args.out, options=options, layout=args.layout, split=args.split,
                   category=args.category, on_bad_pairs="skip" if args.skip_bad else "error",
                   workers=args.workers, progress=not args.quiet, overwrite=args.overwrite)
    from .. import manifest

    print(summary(manifest.read(args.out), report.reused))
    print(f"\nload it: datasets.load_dataset({args.out!r})   check it: ggt verify {args.out}")
    return 0


def summary(data: dict, reused: int) -> str:
    from ..card import human_bytes

    lines = [f"{data['totals']['pairs']:,} pairs in {data['totals']['shards']} shards, "
             f"{human_bytes(data['totals']['bytes'])}" + (f" ({reused} shards reused)" if reused else ""),
             f"{'split':<6} {'category':<10} {'pairs':>9} {'shards':>6} {'bytes':>10}"]
    for split, per in data["counts"].items():
        for cat, c in per.items():
            lines.append(f"{split:<6} {cat:<10} {c['pairs']:>9,} {c['shards']:>6} {human_bytes(c['bytes']):>10}")
    if data["skipped"]:
        lines.append(f"skipped {len(data['skipped'])} bad pair(s) (listed in ggt_manifest.json):")
        lines += [f"  {s['path']}: {s['reason']}" for s in data["skipped"][:10]]
    dup = data["duplicates"]
    if dup["lq_in_train_and_test"]["count"]:
        first = dup["lq_in_train_and_test"]["first"][0]
        lines.append(f"warning: {dup['lq_in_train_and_test']['count']} LQ image(s) are in both train and "
                     f"test (leakage), e.g. {' = '.join(first)}")
    if dup["lq_repeated_within_split"]["count"]:
        lines.append(f"note: {dup['lq_repeated_within_split']['count']} LQ image(s) repeat within a split")
    if data["ignored_files"]["count"]:
        lines.append(f"ignored {data['ignored_files']['count']} non-image or unpaired-folder file(s), "
                     f"e.g. {', '.join(data['ignored_files']['first'][:3])}")
    return "\n".join(lines)
