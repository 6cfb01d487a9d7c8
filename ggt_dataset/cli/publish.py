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
    from ..publish import plan, publish

    result = plan(args.out, args.repo_id)
    print(describe(result, dry_run=args.dry_run))
    if args.dry_run:
        return 0
    url = publish(args.out, args.repo_id, private=args.private, revision=args.revision, token=args.token,
                  checked=result)
    print(f"published {args.out} to datasets/{args.repo_id}: {url}")
    return 0


def describe(result, dry_run: bool) -> str:
    """What is sent (every file, for a dry run), what is left out and why, and warnings."""
    from ..card import human_bytes

    folders = {f.rsplit("/", 1)[0] if "/" in f else "." for f, _ in result.files}
    lines = [f"{'would upload' if dry_run else 'uploading'} {len(result.files)} files "
             f"({human_bytes(result.total_bytes)}) in {len(folders)} folders to datasets/{result.repo_id}"
             + ("; all checks passed" if dry_run else "")]
    if dry_run:
        lines += [f"  {path}  {human_bytes(n)}" for path, n in result.files]
    if result.left_out:
        lines.append(f"left out, not uploaded ({len(result.left_out)}):")
        lines += [f"  {path}  {why}" for path, why in result.left_out]
    lines += [f"warning: {w}" for w in result.warnings]
    return "\n".join(lines)
