"""ggt submit [REPORT_DIR] --results REPO_ID_OR_DIR --model ORG/NAME: record a model's scores for the benchmark.

Writes submissions/<org>__<name>/<protocol>-v<version>.json (+ .parquet, the per-image
table) into a results folder, or opens one pull request on a Hub dataset repo. Without
a report, --outputs records a pending submission that `ggt leaderboard verify` scores.
The record's format: docs/benchmark.md.
"""

from __future__ import annotations

import argparse

from ._options import examples


def register(sub) -> None:
    p = sub.add_parser("submit", help="submit a score report (or outputs) to a benchmark results repo",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog=examples(
                           "ggt submit report/ --results ORG/GGT-100K-results --model me/restorer",
                           "ggt submit report/ --results results/ --model me/restorer --outputs outputs.zip",
                           "ggt submit --outputs outputs/ --results ORG/GGT-100K-results --model me/restorer",
                           "ggt submit report/ --results results/ --model me/restorer --dry-run"))
    p.add_argument("report", nargs="?", metavar="REPORT_DIR", help="a `ggt score` report folder")
    p.add_argument("--results", required=True, metavar="REPO_ID_OR_DIR",
                   help="the results repo: a Hub dataset repo id, or a folder holding ggt-results.yaml")
    p.add_argument("--model", required=True, metavar="ORG/NAME", help="the model's Hub id")
    p.add_argument("--model-revision", metavar="REV", help="the model's commit or tag that made the outputs")
    p.add_argument("--outputs", metavar="PATH_OR_REPO_ID",
                   help="the predictions (folder, .zip or .parquet), sent beside the record, or a Hub "
                        "dataset repo id where they are; each output's sha256 is recorded")
    p.add_argument("--protocol", default="ggt", help="protocol of a pending submission (no report); "
                   "default ggt")
    p.add_argument("--name", metavar="TEXT", help="the model's name on the leaderboard")
    p.add_argument("--paper", metavar="URL", help="the paper or page describing the model")
    p.add_argument("--replace", action="store_true", help="replace this model's record for this protocol")
    p.add_argument("--dry-run", action="store_true", help="check everything and print the plan; write nothing")
    p.add_argument("--token", help="Hub token (default: the one `hf auth login` saved)")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..benchmark.submit import submit

    sub = submit(args.report, args.results, args.model, model_revision=args.model_revision,
                 outputs=args.outputs, name=args.name, paper=args.paper, protocol=args.protocol,
                 replace=args.replace, dry_run=args.dry_run, token=args.token)
    r = sub.record
    print(f"{r.model['id']}: protocol {r.protocol['name']} v{r.protocol['version']}, {r.status}"
          + (f", outputs of {len(r.outputs['sha256'])} images" if r.outputs else ""))
    print(("would write" if args.dry_run else "wrote") + f" {len(sub.files)} files"
          + ("" if args.dry_run else f" to {sub.where}") + ":")
    for path in sub.files:
        print(f"  {path}")
    return 0
