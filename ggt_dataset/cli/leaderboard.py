"""ggt leaderboard SUBCOMMAND: the benchmark's results repo (docs/benchmark.md).

  init     start a local results folder: ggt-results.yaml pinning the protocols and test set
  verify   re-score every record with outputs and mark it verified or mismatch
  build    the leaderboard: a static site (HTML + JSON), leaderboard.md, results.parquet
"""

from __future__ import annotations

import argparse
import inspect

from ._options import examples, metric_names


def register(sub) -> None:
    p = sub.add_parser("leaderboard", help="verify the benchmark's submission records",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    subs = p.add_subparsers(dest="leaderboard", required=True, metavar="SUBCOMMAND")
    _register_init(subs)
    _register_verify(subs)
    _register_build(subs)
    # More subcommands register here, each with its own _register_* function.


def _register_init(subs) -> None:
    p = subs.add_parser("init", help="start a local results folder (its ggt-results.yaml)",
                        description=init.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                        epilog=examples("ggt leaderboard init results/ --reference ggt-100k",
                                        "ggt leaderboard init results/ --reference ORG/GGT-100K "
                                        "--protocol ggt --protocol ntire"))
    p.add_argument("results", metavar="FOLDER", help="the results folder (made if need be)")
    p.add_argument("--reference", required=True, metavar="DATASET",
                   help="the test set: a `ggt build` folder or a Hub dataset id")
    p.add_argument("--protocol", action="append", metavar="NAME",
                   help="a protocol to accept, as shipped (repeatable; default: ggt)")
    p.add_argument("--split", default="test", help="the reference's split (default: test)")
    p.set_defaults(run=init)


def init(args) -> int:
    """ggt leaderboard init FOLDER --reference DATASET: write FOLDER/ggt-results.yaml, which accepts
    the named protocols (pinned by sha256, as shipped) and the reference's test split (pinned by
    its sha256). For a Hub results repo, upload the file it writes."""
    from ..benchmark.results import init_folder

    print(init_folder(args.results, args.reference, args.protocol or ["ggt"], args.split), end="")
    print(f"wrote {args.results}/ggt-results.yaml")
    return 0


def _register_verify(subs) -> None:
    p = subs.add_parser("verify", help="re-score submitted outputs and compare with the claimed means",
                        description=inspect.cleandoc(verify.__doc__ or ""), formatter_class=argparse.RawDescriptionHelpFormatter,
                        epilog=examples(
                            "ggt leaderboard verify results/ --reference ggt-100k",
                            "ggt leaderboard verify ORG/GGT-100K-results --reference ORG/GGT-100K --only me/model"))
    p.add_argument("results", metavar="RESULTS", help="the results repo: a folder or a Hub dataset repo id")
    p.add_argument("--reference", required=True, metavar="DATASET",
                   help="the test set: a `ggt build` folder or a Hub dataset id")
    p.add_argument("--only", metavar="ID", help="one model (ORG/NAME) or one record path")
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    p.add_argument("--metrics", help="for pending records (no claimed scores): the metrics to score, "
                   "comma-separated (default: all of the protocol's)")
    p.add_argument("--weights-dir", help="look for metric weights here (pre-placed, offline)")
    p.add_argument("--dry-run", action="store_true", help="score and print; update no record")
    p.add_argument("--token", help="Hub token (default: the one `hf auth login` saved)")
    p.set_defaults(run=verify)


def verify(args) -> int:
    """ggt leaderboard verify RESULTS --reference DATASET: fetch each record's outputs, check their
    sha256s, re-score them under the recorded protocol and compare every mean with the claimed one
    (per-metric tolerance from the protocol). Records become verified or mismatch; records without
    outputs stay self-reported. Exit status 1 when any record is a mismatch or could not be verified."""
    from ..benchmark.verify import Options, describe, verify_all

    opts = Options(args.reference, device=args.device, metrics=metric_names(args.metrics),
                   weights_dir=args.weights_dir, token=args.token)
    outcomes, where = verify_all(args.results, opts, only=args.only, dry_run=args.dry_run)
    print(describe(outcomes))
    if where:
        print(f"updated {sum(1 for o in outcomes if o.changed)} records in {where}")
    return 1 if any(o.failed or o.record.status == "mismatch" for o in outcomes) else 0


def _register_build(subs) -> None:
    p = subs.add_parser("build", help="the leaderboard as a static site, Markdown, Parquet and eval results",
                        description=build.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                        epilog=examples("ggt leaderboard build results/ --out site/",
                                        "ggt leaderboard build ORG/GGT-100K-results --out site/ --dataset-id ORG/GGT-100K"))
    p.add_argument("results", metavar="RESULTS", help="the results repo: a folder or a Hub dataset repo id")
    p.add_argument("--out", required=True, metavar="SITE",
                   help="the site folder: new, empty or an earlier site (replaced whole)")
    p.add_argument("--dataset-id", help="the benchmark's dataset id in the eval-results export "
                   "(default: $GGT_REPO_ID, else the GGT-100K repo)")
    p.add_argument("--revision", help="of a Hub results repo (default: main)")
    p.add_argument("--token", help="Hub token (default: the one `hf auth login` saved)")
    p.set_defaults(run=build)


def build(args) -> int:
    """ggt leaderboard build RESULTS --out SITE: one table per protocol (overall and per category,
    sortable, filterable), ranked by --compare's rule; leaderboard.md, results.parquet and each
    model's eval results (eval_results/ORG__NAME.yaml, to save as .eval_results/ggt-100k.yaml in
    the model repo) beside it. Malformed records are listed, never fatal;
    serve SITE with any static host (python -m http.server -d SITE)."""
    from ..benchmark.site import build as build_site

    data = build_site(args.results, args.out, dataset_id=args.dataset_id, revision=args.revision,
                      token=args.token)
    rows = sum(len(t["rows"]) for t in data["protocols"])
    print(f"wrote {args.out}: {rows} records ({len(data['protocols'])} protocols), {len(data['invalid'])} invalid")
    for x in data["invalid"]:
        print(f"  invalid {x['path']}: {x['reason']}")
    return 0
