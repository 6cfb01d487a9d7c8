"""ggt verify OUT: check every shard against the manifest and the card; non-zero exit on any fault."""

from __future__ import annotations

import argparse

from ._options import add_out, examples


def register(sub) -> None:
    p = sub.add_parser("verify", help="check a build against its manifest and card",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog=examples("ggt verify ggt-100k", "ggt verify ggt-100k --full"))
    add_out(p)
    p.add_argument("--full", action="store_true",
                   help="also decode every image and check its sha256 and size columns")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def run(args) -> int:
    import sys

    from tqdm.auto import tqdm

    from .. import manifest
    from ..errors import GGTError
    from ..verify import verify

    try:
        total = manifest.read(args.out)["totals"]["bytes"]
    except (GGTError, KeyError, TypeError):
        total = None  # verify() reports the unreadable manifest itself
    with tqdm(total=total, unit="B", unit_scale=True, desc="ggt verify", file=sys.stderr,
              disable=args.quiet) as bar:
        report = verify(args.out, full=args.full, on_shard=lambda shard: bar.update(shard["num_bytes"]))
    what = f"{report.shards} shards, {report.rows:,} pairs" + (
        f", {report.images_decoded:,} images decoded" if args.full else "")
    for warning in report.warnings:
        print(f"warning: {warning}")
    if report.ok:
        print(f"OK {args.out}: {what}; hashes, counts, ids, schema and card match the manifest")
        return 0
    print(f"FAILED {args.out}: {len(report.faults)} fault(s) ({what} checked)")
    for fault in report.faults:
        print(f"  {fault}")
    return 1
