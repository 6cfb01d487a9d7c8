"""ggt view TARGET: browse a built dataset, models' outputs and their scores in a local web page.

Several models side by side: repeat --predictions (and --report, one per --predictions, in the
same order), or give --submissions RESULTS (a results repo's records). Each pair then shows
LQ | model A | model B | ... | HQ, and the sort menu has "A beats B most" on each metric.

The page is served on 127.0.0.1 (read-only) until Ctrl-C; --host 0.0.0.0 makes it
reachable from the network (a warning says so, with the URLs). Every view, filters
and open pair included, is in the page's URL: copy it to share it.
"""

from __future__ import annotations

import argparse
import socket
import sys

from ..errors import GGTError
from ..view.thumb_cache import DEFAULT_MAX_BYTES
from ._options import add_split, examples


def register(sub) -> None:
    p = sub.add_parser("view", help="browse pairs, outputs and per-image scores in a local web page",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog=examples("ggt view ggt-100k",
                                       "ggt view ggt-100k --report reports/mymodel   (outputs found from the report)",
                                       "ggt view ggt-100k --predictions outputs/ --report reports/mymodel --port 9000",
                                       "ggt view ggt-100k --report reports/a --report reports/b   (A | B side by side)",
                                       "ggt view ggt-100k --submissions ORG/GGT-100K-results --model org/a --model org/b",
                                       "ggt view me/GGT-100K   (a Hub repo: row groups are read on demand)"))
    p.add_argument("target", metavar="TARGET", help="a folder written by `ggt build`, or a Hub dataset repo id")
    p.add_argument("--predictions", metavar="DIR_OR_ZIP", action="append", help="a model's outputs (folder, "
                   "zip, Parquet), shown beside LQ and HQ; repeat for several models; default: the outputs "
                   "each --report scored, when they are on disk")
    p.add_argument("--report", metavar="REPORT_DIR", action="append", help="a `ggt score --out` folder: "
                   "per-image metrics become columns to sort and filter by; repeat for several models "
                   "(the n-th goes with the n-th --predictions)")
    p.add_argument("--submissions", metavar="RESULTS", help="a results repo (folder or Hub dataset repo id, "
                   "as `ggt submit --results` takes): each record's per-image scores, and its outputs when "
                   "the repo holds them, shown after any --predictions/--report")
    p.add_argument("--model", action="append", metavar="ORG/NAME", help="with --submissions: only this "
                   "model's records (repeatable; default: every record)")
    add_split(p, default=None, help="the split the outputs belong to (default: the report's, else test)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s, this machine only)")
    p.add_argument("--port", type=int, default=8765, help="port (default: %(default)s; 0 picks a free one)")
    p.add_argument("--allow-host", action="append", metavar="NAME", help="also answer requests for this "
                   "Host name (repeatable; e.g. a name the machine has on your network with --host 0.0.0.0)")
    p.add_argument("--revision", help="a Hub revision (branch, tag or commit) for a Hub TARGET")
    p.add_argument("--open", action="store_true", help="open the page in the default browser")
    p.add_argument("--thumb-cache", metavar="DIR", help="keep thumbnails here between runs, keyed by image "
                   "content (default: $XDG_CACHE_HOME/ggt/view-thumbs or ~/.cache/ggt/view-thumbs)")
    p.add_argument("--thumb-cache-mb", type=int, default=DEFAULT_MAX_BYTES >> 20, metavar="MB",
                   help="the thumbnail cache's bound; the least recently shown go first (default: %(default)s)")
    p.add_argument("--no-thumb-cache", action="store_true", help="make thumbnails in memory only")
    p.set_defaults(run=run)


def _listen(host: str, port: int) -> socket.socket:
    """Bind and listen before indexing: a taken port fails at once, and the URL printed later
    already accepts connections (they wait in the backlog until the server runs)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as e:
        sock.close()
        raise GGTError(f"cannot listen on {host}:{port} ({e.strerror}); choose another --port") from None
    return sock


def _urls(host: str, port: int) -> list[str]:
    """The page's URLs: this machine's first; on a wildcard bind, also each address the network reaches."""
    from ..view.app import WILDCARDS, machine_addresses, url_host

    if host not in WILDCARDS:
        return [f"http://{url_host(host)}:{port}/"]
    local = "127.0.0.1" if host == "0.0.0.0" else "[::1]"
    return [f"http://{local}:{port}/", *(f"http://{url_host(a)}:{port}/" for a in machine_addresses(host))]


def _thumb_cache(args):
    from ..view.thumb_cache import ThumbCache, default_dir

    if args.no_thumb_cache:
        return None
    folder = args.thumb_cache or default_dir()
    try:
        return ThumbCache(folder, args.thumb_cache_mb << 20)
    except OSError as e:
        raise GGTError(f"--thumb-cache {folder}: cannot use it ({e.strerror}); pass another folder or "
                       "--no-thumb-cache") from None


def run(args) -> int:
    try:
        from ..view.app import allowed_hosts, is_loopback, return_freed_memory, serve
        from ..view.viewer import Viewer
    except ImportError as e:
        raise GGTError(f"the viewer needs its extra ({e.name} is missing): pip install 'ggt-100k[view]'") from None
    return_freed_memory()         # a long-lived server: its memory should follow its caches
    if args.thumb_cache_mb < 1:
        raise GGTError(f"--thumb-cache-mb must be at least 1, got {args.thumb_cache_mb}")
    sock = _listen(args.host, args.port)
    with sock:
        viewer = Viewer.open(args.target, args.predictions, args.report, args.revision, args.split,
                             submissions=args.submissions, models=args.model)
        viewer.disk = _thumb_cache(args)       # made once the target opened: a failed start leaves nothing
        port = sock.getsockname()[1]
        url, *others = _urls(args.host, port)
        print(f"ggt view: {viewer.index.num_rows:,} pairs from {args.target}"
              + "".join(f", {s.label}: " + " and ".join(
                  ([f"{len(s.outputs.rows):,} outputs"] if s.outputs else []) + (["scores"] if s.report else []))
                  for s in viewer.subs)
              + f"\n  open {url}   (Ctrl-C stops it)"
              + "".join(f"\n  or   {u}" for u in others), file=sys.stderr, flush=True)
        if not is_loopback(args.host):
            print(f"ggt view: warning: --host {args.host} is reachable from the network: anyone who can reach "
                  f"this machine on port {port} can browse the dataset, outputs and scores (read-only, no "
                  "login). The default, --host 127.0.0.1, keeps it on this machine.", file=sys.stderr, flush=True)
        if args.open:
            import webbrowser

            webbrowser.open(url)
        serve(viewer, sock, allowed_hosts(args.host, args.allow_host))
    return 0
