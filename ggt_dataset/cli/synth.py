"""ggt synth LQ_DIR OUT_RAW: generative ground truth for your own LQ photos (the GGT pipeline).

Each LQ photo is restored by a backend under a prompt (fixed per category, or adapted
to the image), kept only if quality control passes, and written with its prompt,
generator and QC scores as a raw release that `ggt build OUT_RAW` packages. A SQLite
journal in OUT_RAW/.ggt-synth records every request, cost and verdict: run the same
command again to resume (nothing paid is asked twice) or to apply review.csv.

LQ_DIR: category folders (rain/, low-light/, ...) or flat; unfoldered photos get
--category, or with --category auto (default) the analyser's guess. Exit codes:
0 done, every pair decided; 1 error (bad options create nothing); 3 budget reached (run
again with a higher --budget); 4 some pairs failed in this run, or the run stopped after
an error or after the provider failed 20 times in a row (run again to retry them);
130 interrupted.

--budget needs every paid model's price: models in ggt's price table have one; for
another backend model pass --price. Calls of unknown cost (killed, timed out) count at
the highest cost seen.

ggt synth compare PROBE_DIR --out DIR --backends a,b --prompters fixed,adaptive: run
each combination on a probe set and rank them by no-reference quality and fidelity.
"""

from __future__ import annotations

import argparse
import json
import sys

from ._options import add_split, examples

PAIRS_FAILED = 4        # exit code: the run ended with pairs failed in it (or stopped on errors)


def register(sub) -> None:
    p = sub.add_parser("synth", help="generate HQ targets for LQ photos (backends, prompts, QC, journal)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                       usage="ggt synth LQ_DIR OUT_RAW [options] | ggt synth compare PROBE_DIR --out DIR [options]",
                       epilog=EXAMPLES)
    # Options typed before LQ_DIR are parsed here; no defaults, the run's own parser fills those in.
    _run_options(p, argparse.SUPPRESS)
    _shared_options(p, argparse.SUPPRESS)
    p.add_argument("command", action=_RunOrCompare, metavar="LQ_DIR OUT_RAW | compare PROBE_DIR",
                   help="a run, or the compare command (ggt synth compare --help)",
                   run=_run_parser(), compare=_compare_parser())
    p.set_defaults(run=run)


EXAMPLES = examples("ggt synth my-lq/ my-raw/     # classical baseline, offline",
                    "ggt synth my-lq/ my-raw/ --backend gemini --vlm gemini --budget 20",
                    "ggt synth my-lq/ my-raw/ --backend openai --engine ray --address HEAD:6379 --concurrency 64",
                    "ggt build my-raw/ my-ggt && ggt verify my-ggt",
                    "ggt synth compare probe/ --out cmp/ --backends classical,gemini")


class _RunOrCompare(argparse.Action):
    """``ggt synth compare ...`` is the compare command, anything else a run (``ggt synth LQ_DIR OUT_RAW``),
    each with its own parser. They parse into the namespace the synth parser filled, so an option
    typed before LQ_DIR is kept."""

    def __init__(self, option_strings, dest, run: argparse.ArgumentParser, compare: argparse.ArgumentParser,
                 **kwargs):
        super().__init__(option_strings, dest, nargs=argparse.PARSER, **kwargs)
        self.run, self.compare = run, compare

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        is_compare = values[0] == "compare"
        setattr(namespace, self.dest, "compare" if is_compare else "run")
        (self.compare if is_compare else self.run).parse_args(values[1:] if is_compare else values, namespace)


def _run_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ggt synth", usage="ggt synth LQ_DIR OUT_RAW [options]",
                                description=__doc__, epilog=EXAMPLES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("lq_dir", metavar="LQ_DIR", help="the LQ photos: category folders or flat")
    p.add_argument("out_raw", metavar="OUT_RAW", help="the raw release to write (run again to resume)")
    _run_options(p)
    _shared_options(p)
    return p


def _compare_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ggt synth compare", description=run_compare.__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=examples(
                                    "ggt synth compare probe/ --out cmp/ --backends classical,gemini",
                                    "ggt synth compare probe/ --out cmp/ --prompters fixed --judge gemini"))
    p.add_argument("probe_dir", metavar="PROBE_DIR", help="a few LQ photos, laid out as LQ_DIR")
    p.add_argument("--out", required=True, help="output folder: one OUT_RAW per combination, and compare.md")
    p.add_argument("--backends", default="classical", help="comma-separated backends (default classical)")
    p.add_argument("--prompters", default="fixed,adaptive", help="comma-separated prompters (default "
                   "fixed,adaptive)")
    _shared_options(p)
    return p


def _run_options(p: argparse.ArgumentParser, default=None) -> None:
    """A run's own options: compare chooses backends and prompters itself and keeps no review queue."""
    def d(value):
        return argparse.SUPPRESS if default is argparse.SUPPRESS else value

    p.add_argument("--backend", default=d("classical"), help="classical (default, offline baseline), gemini, "
                   "openai or diffusers")
    p.add_argument("--prompter", choices=("fixed", "adaptive"), default=d("adaptive"),
                   help="fixed: one prompt per category; adaptive (default): fitted to each image")
    p.add_argument("--review", choices=("none", "flagged", "all"), default=d(None), help="manual review queue: "
                   "which pairs go to review.csv (default flagged)")


def _shared_options(p: argparse.ArgumentParser, default=None) -> None:
    """Options of both a run and compare."""
    def d(value):
        return argparse.SUPPRESS if default is argparse.SUPPRESS else value

    p.add_argument("--model", default=d(None), help="the provider's model id (default: the backend's)")
    p.add_argument("--vlm", default=d(None), help="adaptive prompts written by this VLM (gemini, openai); "
                   "default: the offline heuristic analyser")
    p.add_argument("--vlm-model", default=d(None), help="the VLM's model id")
    p.add_argument("--judge", default=d(None), help="add the VLM judge QC stage with this VLM (gemini, openai)")
    p.add_argument("--qc", default=d(None), help="QC stages as YAML (default: validity, fidelity, quality, review)")
    p.add_argument("--engine", choices=("local", "ray"), default=d("local"), help="local asyncio (default) "
                   "or ray: provider calls on Ray actors, on one machine or a cluster (pip install 'ggt-100k[ray]')")
    p.add_argument("--concurrency", type=int, default=d(8), help="provider calls in flight (default 8)")
    p.add_argument("--ray-actors", type=int, default=d(2), help="Ray actors sharing --concurrency (default 2)")
    p.add_argument("--address", default=d(None), help="--engine ray: join the Ray cluster at this address "
                   "(default: RAY_ADDRESS, else a new local Ray instance)")
    p.add_argument("--budget", type=float, default=d(None), help="stop before spending more than this, in the "
                   "provider's currency")
    p.add_argument("--price", default=d(None), help="the backend model's price when ggt's table lacks it: "
                   "TEXT_IN,TEXT_OUT,IMAGE_OUT[,IMAGE_IN] in USD per 1M tokens (needed for --budget)")
    p.add_argument("--vlm-price", default=d(None), help="the --vlm model's price when ggt's table lacks it: "
                   "TEXT_IN,TEXT_OUT in USD per 1M tokens")
    p.add_argument("--judge-price", default=d(None), help="the --judge model's price, as --vlm-price")
    p.add_argument("--max-attempts", type=int, default=d(5), help="tries per call on 429/5xx/timeouts (default 5)")
    p.add_argument("--stop-after-failures", type=int, default=d(20), metavar="N",
                   help="stop the run after N transient failures in a row, all calls together: the provider "
                   "is down or throttling (default 20)")
    add_split(p, default=d("auto"), help="split for photos no folder inside LQ_DIR names: train, "
              "test, or auto (default): the split LQ_DIR's own path names (.../test/LQ), else train")
    p.add_argument("--category", default=d("auto"), help="category for photos no folder names; auto "
                   "(default): the analyser decides")
    p.add_argument("--skip-bad", action="store_true", default=d(False), help="leave unreadable LQ files out "
                   "instead of refusing")
    p.add_argument("--license", default=d(None), help="licence of the LQ photos (the card's and each pair's): "
                   "a Hub licence id such as cc-by-4.0, or other with --license-name and --license-link "
                   "(default: LQ_DIR's raw release's, else unknown)")
    p.add_argument("--license-name", default=d(None), help="with --license other: the licence's id, such as "
                   "my-license-1.0")
    p.add_argument("--license-link", default=d(None), help="with --license other: an https URL of its text")
    p.add_argument("--source", default=d(None), help="source of the LQ photos (default: each photo's path in "
                   "LQ_DIR)")
    p.add_argument("--name", default=d(None), help="the dataset card's pretty name")
    p.add_argument("--base-url", default=d(None), help="send the backend's (and VLMs') requests here (a proxy "
                   "or test server)")
    p.add_argument("-q", "--quiet", action="store_true", default=d(False), help="no progress bar")


def config(args):
    """A run's settings from its options."""
    from dataclasses import replace

    base = shared_config(args)
    qc = base.qc.with_review(args.review) if args.review else base.qc
    return replace(base, backend=args.backend, prompter=args.prompter, qc=qc)


def shared_config(args):
    """The settings a run and compare take from the same options."""
    from ..synth.calls import RetryPolicy
    from ..synth.parts import SynthConfig, client_options
    from ..synth.qc import load_config

    qc = load_config(args.qc)
    if args.judge:
        qc = qc.with_judge(args.judge)
    return SynthConfig(model=args.model, vlm=args.vlm, vlm_model=args.vlm_model, engine=args.engine,
                       concurrency=args.concurrency, budget=args.budget,
                       retry=RetryPolicy(max_attempts=args.max_attempts, stop_after=args.stop_after_failures),
                       split=args.split, category=args.category, qc=qc, skip_bad=args.skip_bad,
                       source=args.source, license=args.license, license_name=args.license_name,
                       license_link=args.license_link, name=args.name, ray_actors=args.ray_actors,
                       ray_address=args.address,
                       options=client_options(args.base_url, args.price, args.vlm_price, args.judge_price))


def run(args) -> int:
    return run_compare(args) if args.command == "compare" else run_synth(args)


def run_synth(args) -> int:
    """ggt synth LQ_DIR OUT_RAW."""
    from ..errors import GGTError
    from ..synth.engine import synthesize

    try:
        report = synthesize(args.lq_dir, args.out_raw, config(args),
                            progress=not args.quiet and sys.stderr.isatty())
    except MemoryError:     # the generic advice names build's options, which synth does not have
        raise GGTError(f"out of memory with --concurrency {args.concurrency}"
                       + (f" and --ray-actors {args.ray_actors}" if args.engine == "ray" else "")
                       + "; lower them (each call in flight holds its photo and the answer), then run the "
                         "same command to resume") from None
    print(summary(report))
    if report["stopped"]:
        print(f"stopped: {report['stopped']}; run the same command to go on", file=sys.stderr)
        return 130 if report["stopped"].startswith("interrupted") else PAIRS_FAILED
    if report["failed_this_run"]:
        print(f"{report['failed_this_run']} pair(s) failed in this run (reasons in synth-report.json's journal, "
              "pairs.reason); run the same command to try them again", file=sys.stderr)
        return PAIRS_FAILED
    return 0


def summary(report: dict) -> str:
    pairs = report["pairs"]
    states = ", ".join(f"{n} {s}" for s, n in sorted(pairs.items()))
    lines = [(f"{report['released']} pair(s) released to {report['out_raw']} ({states}); "
              f"spent {report['spent']:g} {report['currency']}"),
             f"calls: {json.dumps(report['calls'], sort_keys=True)}"]
    if report["left_out"]:
        lines += left_out_table(report)
    if report["review_queue"]:
        lines.append(f"{report['review_queue']} pair(s) await review: fill 'decision' in "
                     f"{report['out_raw']}/review.csv and run again")
    if report.get("quality_metric", {}).get("not_used"):
        lines.append("quality metric: " + report["quality_metric"]["used"] + " (not used: "
                     + "; ".join(report["quality_metric"]["not_used"]) + ")")
    if report["released"]:
        lines.append(f"package it: ggt build {report['out_raw']} OUT")
    else:       # `ggt build` of an empty release fails: say what to do instead
        lines.append("nothing to package yet: no pair is accepted"
                     + (" (decide the review queue first)" if report["review_queue"] else
                        " (see why above; try another --backend, or --qc with other thresholds)"))
    return "\n".join(lines)


def left_out_table(report: dict, width: int = 90) -> list[str]:
    """The photos the release leaves out and why: the first rows, then where the rest are."""
    rows = report["left_out_first"]
    id_w = max(len("id"), *(len(r["id"]) for r in rows))
    cat_w = max(len("category"), *(len(r["category"] or "") for r in rows))
    lines = [f"{report['left_out']} photo(s) left out ({report['out_raw']}/{report['left_out_file']}):",
             f"  {'id':<{id_w}}  {'category':<{cat_w}}  {'verdict':<8}  reason"]
    for r in rows:
        reason = r["reason"] if len(r["reason"]) <= width else r["reason"][:width - 3] + "..."
        lines.append(f"  {r['id']:<{id_w}}  {r['category'] or '':<{cat_w}}  {r['verdict']:<8}  {reason}")
    if report["left_out"] > len(rows):
        lines.append(f"  ... and {report['left_out'] - len(rows)} more in {report['left_out_file']}")
    return lines


def run_compare(args) -> int:
    """Each backend with each prompter on PROBE_DIR, into OUT/<backend>-<prompter>/ (its own journal: a
    rerun reuses every paid answer), ranked by quality, fidelity, the judge and the share accepted."""
    from ..synth.compare import compare

    table = compare(args.probe_dir, args.out, backends=args.backends.split(","),
                    prompters=args.prompters.split(","), base=shared_config(args), progress=not args.quiet)
    print(table)
    return 0
