"""``ggt``: registers the verbs and turns errors into one-line messages (tracebacks with GGT_DEBUG=1)."""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import GGTError
from . import (
    baseline,
    build,
    info,
    leaderboard,
    publish,
    sample,
    score,
    selfcheck,
    submit,
    synth,
    verify,
    view,
    weights,
)

VERBS = (sample, build, verify, info, publish, baseline, score, selfcheck, weights, view, synth, submit, leaderboard)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ggt", description="GGT-100K as software: build, verify, "
                                "load, publish and score the dataset.")
    from .. import __version__

    p.add_argument("--version", action="version", version=f"ggt-100k {__version__}")
    sub = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    for verb in VERBS:
        verb.register(sub)
    return p


def _message(exc: BaseException) -> tuple[str, int]:
    """One table from exception type to message and exit code."""
    if isinstance(exc, GGTError):
        return str(exc), exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted; run the same command again to resume", 130
    if isinstance(exc, MemoryError):
        return "out of memory; lower --workers or --shard-size", 1
    if isinstance(exc, OSError):
        where = exc.filename or ""
        return f"{where}: {exc.strerror or exc}" if where else str(exc), 1
    return f"unexpected {type(exc).__name__}: {exc} (set GGT_DEBUG=1 for a traceback)", 1


# What the shell reports for a process killed by SIGPIPE (128 + 13), as for `yes | head -1`.
EXIT_BROKEN_PIPE = 141


def _run(argv: list[str] | None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args) or 0
    except BrokenPipeError:
        raise
    except (Exception, KeyboardInterrupt) as exc:
        if os.environ.get("GGT_DEBUG"):
            raise
        message, code = _message(exc)
        print(f"ggt {args.verb}: error: {message}", file=sys.stderr)
        return code


def main(argv: list[str] | None = None) -> int:
    """Run one verb. A reader that stops early (``ggt ... | head -1``) ends it quietly with
    141, as coreutils do: the output was cut short, so not 0, but it is no error to report."""
    try:
        try:
            code = _run(argv)
        except SystemExit:          # argparse's --help, --version and usage errors print too
            sys.stdout.flush()
            raise
        sys.stdout.flush()          # a closed pipe shows here, not in the interpreter's exit
        return code
    except BrokenPipeError:
        # Python's advice: point stdout at devnull so its final flush cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


if __name__ == "__main__":
    sys.exit(main())
