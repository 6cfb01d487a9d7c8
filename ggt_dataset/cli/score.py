"""ggt score PREDICTIONS... --reference DATASET --out REPORT: score a model's outputs under a pinned protocol.

Predictions are named by pair id (rain/chelsea_000.png) in a folder, a zip, or
Parquet with columns id and prediction. Several PREDICTIONS (checkpoints) are
scored in one pass over the ground truth, each image of it decoded and scored
once: --out then holds one report per submission, OUT/<name>/ (the folder's
name, made unique with -2, -3, ...), each what scoring that folder alone writes,
and for two or more, comparison.md and comparison.png as --compare writes them.
With --compare, put finished reports (summary.json files or report folders)
side by side instead.
"""

from __future__ import annotations

import argparse
import sys

from ._options import add_split, examples, metric_names, size


def register(sub) -> None:
    p = sub.add_parser("score", help="score predictions on the test set (pinned IQA protocols)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog=examples(
                           "ggt score outputs/ --reference ggt-100k --out report/",
                           "ggt score outputs.zip --reference VCLab-PolyU/GGT-100K --metrics psnr,ssim --out r/",
                           "ggt score --protocol ntire outputs/ --reference ggt-100k --out report-ntire/",
                           "ggt score ckpt-1000/ ckpt-2000/ ckpt-3000/ --reference ggt-100k --out reports/",
                           "ggt score outputs/ --reference ggt-100k --judge gemini --judge-budget 5 --out report/",
                           "ggt score --compare a/summary.json b/summary.json --out comparison/"))
    p.add_argument("predictions", nargs="*", metavar="PREDICTIONS",
                   help="folder, .zip, Parquet file(s) or saved dataset of predicted images; several "
                        "(checkpoints): one report each in REPORT_DIR/<name>/, and their comparison")
    p.add_argument("--reference", metavar="DATASET", help="a `ggt build` folder or a Hub dataset id")
    add_split(p, default="test", help="split to score against (default: test)")
    p.add_argument("--revision", help="a Hub reference's tag, branch or commit (default: main); "
                   "the report records the commit it resolved to")
    p.add_argument("--protocol", default="ggt", help="ggt (default), ntire, basicsr, or a YAML file")
    p.add_argument("--metrics", help="comma-separated subset of the protocol's metrics, or 'available' "
                   "for those whose weights are in place (the others are named)")
    p.add_argument("--out", metavar="REPORT_DIR", help="where the report goes: a new or empty folder, or "
                   "an earlier report, which is replaced whole once the new one is written")
    p.add_argument("--overwrite", action="store_true",
                   help="let --out replace a folder that is not a ggt score report (all of its contents)")
    p.add_argument("--fid", action="store_true",
                   help="also compute FID over the two image sets (the protocol's optional set metric)")
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    p.add_argument("--kernel", choices=("fast", "pyiqa"), default="fast",
                   help="fast (default): our SSIM kernel, equal to pyiqa's within 1e-10 and several times "
                        "faster; pyiqa: pyiqa's own code for every metric (the report records which ran)")
    p.add_argument("--batch-size", type=int, default=8, help="images per metric call (default 8)")
    p.add_argument("--workers", type=int, default=None,
                   help="decode threads (default: one per core this process may use, fewer if memory is short)")
    p.add_argument("--jpeg-decoder", choices=("pillow", "device"), default="pillow",
                   help="pillow (default): every image by the decode rules; device: plain colour JPEGs by "
                        "torchvision on --device (nvjpeg on CUDA: faster, but its pixels can differ from "
                        "Pillow's, so the report's fingerprint records it)")
    p.add_argument("--allow-partial", action="store_true",
                   help="score what is there when ids are missing, extra, duplicated or unreadable; "
                        "the report is marked partial")
    p.add_argument("--weights-dir", help="look for metric weights here (pre-placed, offline)")
    p.add_argument("--cache-dir", help="reference-score cache and the judge's journal (default: $GGT_CACHE_DIR "
                   "or ~/.cache/ggt/eval)")
    p.add_argument("--label", help="the submission's name in reports (default: the folder name; "
                   "with several PREDICTIONS, always their folder names)")
    p.add_argument("--max-unzipped", type=size, default=None, help="cap on a zip's uncompressed size")
    _judge_options(p)
    p.add_argument("--compare", nargs="+", metavar="SUMMARY", help="compare finished reports instead")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def _judge_options(p: argparse.ArgumentParser) -> None:
    """The optional VLM judge (eval/judge.py); named as `ggt synth`'s judge options are."""
    p.add_argument("--judge", choices=("gemini", "openai"), help="also score D (degradation removed), F (fidelity "
                   "to the input) and DF = sqrt(D*F) per image with this VLM: paid calls, cached per user")
    p.add_argument("--judge-model", help="the VLM's model id (default: the protocol's for the provider)")
    p.add_argument("--judge-prompt", choices=("ggt", "harnessir"), default="ggt",
                   help="ggt (default): our prompt ggt-df-v1; harnessir: HarnessIR's VLM-DF prompt, fetched "
                        "from the URLs the protocol pins and checked against their sha256")
    p.add_argument("--judge-budget", type=float, help="stop judging before this command spends more than this "
                   "many USD (all PREDICTIONS together); the report then says PARTIAL for the judge columns")
    p.add_argument("--judge-price", help="the --judge model's price when ggt's table lacks it: TEXT_IN,TEXT_OUT "
                   "in USD per 1M tokens (needed for --judge-budget)")
    p.add_argument("--base-url", help="send the judge's requests here (a proxy, or a local fake API in tests)")


def _judge(args):
    if not args.judge:
        for option in ("judge_model", "judge_budget", "judge_price", "base_url"):
            if getattr(args, option) is not None:
                from ..errors import GGTError

                raise GGTError(f"--{option.replace('_', '-')} is a setting of the judge: add --judge gemini|openai")
        return None
    from ..eval.judge import JudgeOptions

    return JudgeOptions(args.judge, args.judge_model, args.judge_prompt, args.judge_budget, args.judge_price,
                        args.base_url)


def _compare(args) -> int:
    import os

    from ..atomic import write_text
    from ..eval import compare
    from ..eval.summary import ReportError

    if args.out and os.path.lexists(args.out) and not os.path.isdir(args.out):
        raise ReportError(f"{args.out}: exists and is not a folder; choose another --out")
    summaries = compare.read(args.compare)
    table = compare.compare(summaries)
    print(table, end="")
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        write_text(os.path.join(args.out, "comparison.md"), table)
        compare.plot(summaries, os.path.join(args.out, "comparison.png"))
        print(f"wrote {args.out}/comparison.md and comparison.png")
    return 0


def run(args) -> int:
    import os

    from ..errors import GGTError

    if args.compare:
        return _compare(args)
    if not args.predictions or not args.reference or not args.out:
        raise GGTError("give PREDICTIONS, --reference DATASET and --out REPORT_DIR (or --compare)")
    from ..eval import api
    from ..eval.predictions import MAX_UNZIPPED_BYTES
    from ..eval.report import markdown

    if len(args.predictions) > 1 and args.label:
        raise GGTError("--label names one submission; with several PREDICTIONS each is named by its "
                       "folder (made unique with -2, -3, ...)")
    options = {"out": args.out, "split": args.split, "protocol": args.protocol,
               "metrics": metric_names(args.metrics), "device": args.device, "batch_size": args.batch_size,
               "workers": args.workers, "allow_partial": args.allow_partial, "overwrite": args.overwrite,
               "weights_dir": args.weights_dir, "cache_dir": args.cache_dir,
               "max_unzipped": args.max_unzipped or MAX_UNZIPPED_BYTES, "fid": args.fid,
               "progress": not args.quiet and sys.stderr.isatty(), "kernel": args.kernel,
               "revision": args.revision, "judge": _judge(args),
               "jpeg_decoder": args.jpeg_decoder}
    if len(args.predictions) == 1:
        summary = api.score(args.predictions[0], args.reference, label=args.label, **options)
        print(markdown(summary))
        print(f"wrote {args.out}: per_image.parquet, per_image.csv, summary.json, report.md, plots/")
    else:
        summaries = api.score_many(args.predictions, args.reference, **options)
        for summary in summaries:
            print(markdown(summary))
        with open(os.path.join(args.out, "comparison.md"), encoding="utf-8") as f:
            print(f.read(), end="")
        print(f"wrote {args.out}: " + ", ".join(f"{s['label']}/" for s in summaries)
              + " (a report each), comparison.md, comparison.png")
    from ..eval.selfcheck import summary_line

    unchecked = summary_line(summary["fingerprint"]["selfcheck"])
    if unchecked:
        print(unchecked)
    return _judge_exit(summaries if len(args.predictions) > 1 else [summary])


def _judge_exit(summaries: list[dict]) -> int:
    """3 (as `ggt synth`'s budget stop) when the judge stopped before judging every image; the reports are written."""
    stopped = [s for s in summaries if s.get("judge", {}).get("stop_reason")]
    for s in stopped:
        print(f"ggt score: {s['label']}: the judge stopped ({s['judge']['stop_reason']}); its columns are "
              "PARTIAL. Run the same command again to judge the rest (paid answers are reused)", file=sys.stderr)
    return 3 if stopped else 0
