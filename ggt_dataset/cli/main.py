"""``ggt``: registers the verbs and turns errors into one-line messages (tracebacks with GGT_DEBUG=1)."""

from __future__ import annotations

import argparse
import atexit
import os
import sys
import threading
from typing import NoReturn

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


def entry() -> NoReturn:
    """The ``ggt`` command (the console script, ``python -m ggt_dataset.cli.main``)."""
    _exit(main())


def _exit(code: int) -> NoReturn:
    """Exit as Python does, less the interpreter's teardown.

    The teardown frees every loaded module's objects one by one: after a verb that loaded torch
    and pyiqa it costs 1.5-2 s of CPU (`ggt score` 7.2-7.8 s of CPU with it, 5.0-5.3 s without)
    and does nothing a finished command needs. What a normal exit does first is done here in
    the same order: wait for threads that are not daemons, run the atexit handlers (Ray's
    shutdown, logging's flush, temporary folders' removal, loading's stream settling), flush.
    Both steps are CPython's own functions, so they cannot drift from what its exit does.
    """
    shutdown_threads = getattr(threading, "_shutdown", None)
    run_exitfuncs = getattr(atexit, "_run_exitfuncs", None)
    if shutdown_threads is None or run_exitfuncs is None:      # not CPython: its own exit
        sys.exit(code)
    # What CPython's exit calls first: threading's own exit hooks (a thread pool left open is
    # told to stop; joining its idle workers alone would wait forever), then a join of every
    # thread that is not a daemon.
    shutdown_threads()
    run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):   # a reader gone (main() already said 141), or closed
            pass
    os._exit(code)


if __name__ == "__main__":
    entry()
