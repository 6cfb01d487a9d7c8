"""ggt weights {list,fetch} PROTOCOL: the weight files a protocol's metrics need.

`list` shows each file, where pyiqa looks for it and whether it is there (and its
sha256). `fetch` lets pyiqa download the missing ones (needs internet), then checks
them against the protocol's hashes; it also fetches the calibration images of
`ggt selfcheck` (pinned by sha256; an interrupted download resumes).
"""

from __future__ import annotations

import argparse

from ._options import examples, metric_names


def register(sub) -> None:
    p = sub.add_parser("weights", help="list or fetch the weight files a protocol needs",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog=examples("ggt weights list ggt", "ggt weights fetch ggt",
                                       "ggt weights fetch ggt --weights-dir /data/iqa-weights"))
    p.add_argument("action", choices=("list", "fetch"))
    p.add_argument("protocol", nargs="?", default="ggt", help="ggt (default), ntire, or a YAML file")
    p.add_argument("--metrics", help="comma-separated subset of the protocol's metrics")
    p.add_argument("--weights-dir", help="keep the files here instead of the torch and Hub caches")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..eval import api, weights

    metrics = metric_names(args.metrics)
    proto = api.load_protocol(args.protocol, metrics)
    if args.weights_dir:
        weights.use_weights_dir(args.weights_dir)
    if args.action == "fetch":
        weights.fetch(proto)        # what was asked for first; then the self-check's images
        _fetch_calibration()
    missing = 0
    for spec in proto.metrics:
        found, problems = weights.resolve(spec)
        if not spec.weights:
            print(f"{spec.name:10s} no files needed")
        for r in found:
            print(f"{spec.name:10s} ok       {r.path}  sha256 {r.sha256}")
        for msg in problems:
            print(f"{spec.name:10s} MISSING  {msg}")
        missing += len(problems)
    return 1 if missing else 0


def _fetch_calibration() -> None:
    from ..eval import selfcheck

    fetched = selfcheck.fetch_images(selfcheck.load())
    print(f"calibration {'fetched ' + str(len(fetched)) if fetched else 'ok'} images in {selfcheck.images_dir()}")
