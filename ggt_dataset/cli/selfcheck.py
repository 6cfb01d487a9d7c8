"""ggt selfcheck [PROTOCOL]: score pyiqa's calibration set and compare with golden values.

Each metric of the protocol that has golden values (eval/calibration/pyiqa-0.1.16.yaml)
runs with pyiqa's defaults on five TID2013 pairs, and must land within that metric's
tolerance of pyiqa's published score on every pair. The outcome is kept per install
(pyiqa version, torch version, device type); every `ggt score` report records it, and
`ggt score` says so when it has not passed. The images come with `ggt weights fetch`.
"""

from __future__ import annotations

import argparse

from ._options import examples, metric_names


def register(sub) -> None:
    p = sub.add_parser("selfcheck", help="check this install against pyiqa's calibration values",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog=examples("ggt weights fetch ggt && ggt selfcheck",
                                       "ggt selfcheck ggt --metrics psnr,ssim --device cpu"))
    p.add_argument("protocol", nargs="?", default="ggt", help="ggt (default), ntire, or a YAML file")
    p.add_argument("--metrics", help="comma-separated subset of the protocol's metrics")
    p.add_argument("--device", default="auto", help="auto (default), cpu or cuda[:N]")
    p.add_argument("--weights-dir", help="where `ggt weights fetch --weights-dir` put the files")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..eval import api, metrics, selfcheck, weights

    proto = api.load_protocol(args.protocol, metric_names(args.metrics))
    if args.weights_dir:
        weights.use_weights_dir(args.weights_dir)
    record = selfcheck.run(proto, metrics.resolve_device(args.device))
    for r in record["checked"]:
        verdict = "ok    " if r["passed"] else "FAILED"
        print(f"{r['name']:10s} {verdict} max |deviation| {r['max_deviation']:.3g} on {r['image']} "
              f"({r['value']:.4f} vs golden {r['golden']:.4f}, tolerance {r['tolerance']:g})")
    for name, why in record["skipped"].items():
        print(f"{name:10s} skipped {why}")
    print(f"self-check {record['state']} for pyiqa {record['pyiqa']}, torch {record['torch']}, "
          f"{record['device']} (recorded in {selfcheck.state_path(record)})")
    return 0 if record["state"] == "passed" else 1
