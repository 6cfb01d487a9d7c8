"""ggt publish OUT --repo-id ORG/NAME: upload a verified build to the Hub (re-run to resume)."""

from __future__ import annotations

import argparse

from ._options import add_out, examples


def register(sub) -> None:
    p = sub.add_parser("publish", help="upload a build to the Hugging Face Hub",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog=examples("ggt publish ggt-100k --repo-id me/GGT-100K --dry-run",
                                       "ggt publish ggt-100k --repo-id me/GGT-100K --private"))
    add_out(p)
    p.add_argument("--repo-id", required=True, help="dataset repo on the Hub, ORG/NAME")
    p.add_argument("--dry-run", action="store_true", help="check everything and print the plan; upload nothing")
    p.add_argument("--private", action="store_true", help="create the repo private")
    p.add_argument("--revision", help="branch to commit to (default main)")
    p.add_argument("--token", help="Hub token (default: the one `hf auth login` saved)")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..card import human_bytes
    from ..publish import plan, publish

    if args.dry_run:
        result = plan(args.out, args.repo_id)
        folders = sorted({f.rsplit("/", 1)[0] if "/" in f else "." for f, _ in result.files})
        print(f"would upload {len(result.files)} files ({human_bytes(result.total_bytes)}) in "
              f"{len(folders)} folders to datasets/{args.repo_id}; all checks passed")
        for path, n in result.files[:20]:
            print(f"  {path}  {human_bytes(n)}")
        if len(result.files) > 20:
            print(f"  ... and {len(result.files) - 20} more")
        for w in result.warnings:
            print(f"warning: {w}")
        return 0
    url = publish(args.out, args.repo_id, private=args.private, revision=args.revision, token=args.token)
    print(f"published {args.out} to datasets/{args.repo_id}: {url}")
    return 0
