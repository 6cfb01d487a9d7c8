"""ggt baseline {identity,classical} DATASET --out DIR: baseline predictions for a split.

identity copies each LQ image: the score of doing nothing. On fidelity metrics
(PSNR, SSIM) it is a strong reference, not a floor: a restorer that changes tone
or smooths detail the wrong way scores below it. classical runs a blind OpenCV
denoise + dehaze + brighten + contrast restorer (a baseline, not a foundation
model): it gains where the degradation is global (haze, low light) and loses
where it is local (rain streaks, snow), which it does not model. Files are named
by pair id, ready for `ggt score`.
"""

from __future__ import annotations

import argparse
import sys

from ._options import add_split, examples


def register(sub) -> None:
    p = sub.add_parser("baseline", help="write baseline predictions (identity, classical) for a split",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog=examples("ggt baseline classical ggt-100k --out preds/classical"))
    p.add_argument("name", choices=("identity", "classical"))
    p.add_argument("dataset", metavar="DATASET", help="a `ggt build` folder or a Hub dataset id")
    p.add_argument("--out", required=True, help="folder for the predictions")
    add_split(p, default="test", help="the split whose LQ photos are restored (default: test)")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..eval.baselines import run_baseline

    n = run_baseline(args.name, args.dataset, args.out, args.split, progress=sys.stderr.isatty())
    print(f"wrote {n} {args.name} predictions to {args.out}")
    return 0
