"""How far apart the SSIM conventions are, and how close eval/ssim.py is to pyiqa, on the sample pack.

    python bench/ssim_conventions.py                 # 12 test pairs of 256 px (ggt sample)
    python bench/ssim_conventions.py --per-category 10 --size 512

Scores the identity baseline (each LQ as its own prediction) of a `ggt sample` pack under
the ggt and basicsr protocols (PSNR, SSIM), and SSIM once more with `--kernel pyiqa`, and
prints per protocol pair: the mean and largest |difference| over the pairs.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

import numpy as np


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-category", type=int, default=2, help="test pairs per category (default 2)")
    ap.add_argument("--size", type=int, default=256, help="image side (default 256, as ggt sample)")
    args = ap.parse_args()
    import pyarrow.parquet as pq
    from ggt_dataset.eval import api
    from ggt_dataset.eval.baselines import run_baseline

    from ggt_dataset.build import build
    from ggt_dataset.sample import write_sample

    with tempfile.TemporaryDirectory(prefix="ggt-bench-ssim-") as tmp:
        write_sample(os.path.join(tmp, "raw"), train_per_category=1, test_per_category=args.per_category,
                     size=args.size)
        build(os.path.join(tmp, "raw"), os.path.join(tmp, "ds"), progress=False)
        preds = os.path.join(tmp, "identity")
        run_baseline("identity", os.path.join(tmp, "ds"), preds)
        rows = {}
        for label, protocol, kernel in (("ggt", "ggt", "fast"), ("ggt/pyiqa", "ggt", "pyiqa"),
                                        ("basicsr", "basicsr", "fast")):
            out = os.path.join(tmp, label.replace("/", "-"))
            api.score(preds, os.path.join(tmp, "ds"), out=out, protocol=protocol, metrics=["psnr", "ssim"],
                      device="cpu", kernel=kernel)
            rows[label] = {r["id"]: r for r in pq.read_table(os.path.join(out, "per_image.parquet")).to_pylist()}
    ids = sorted(rows["ggt"])
    print(f"{len(ids)} identity pairs of {args.size} px (ggt sample), |difference| mean / max:")
    for a, b, metric in (("ggt", "ggt/pyiqa", "ssim"), ("ggt", "basicsr", "ssim"), ("ggt", "basicsr", "psnr")):
        d = np.array([abs(rows[a][i][metric] - rows[b][i][metric]) for i in ids])
        print(f"  {metric} {a} vs {b}: {d.mean():.3g} / {d.max():.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
