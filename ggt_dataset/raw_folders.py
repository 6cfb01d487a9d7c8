"""Read a raw release laid out as image folders.

Every image's directory path must name its role (LQ/GT/HQ and their aliases),
and may name its split and category, in any order and in any case:
``train/LQ/rain/0001.jpg``, ``rain/test/GT/0001.png`` and
``GGT-100K/test/input/low-light/a/b.png`` all work. Folders that name none of
the three and sit above them (``GGT-100K``) are ignored; folders below them are
part of the pair's name. LQ and HQ are matched by split, category and that
name without extension, so ``0001.jpg`` pairs with ``0001.png``.

A pair's id is ``<category>/<name>``, e.g. ``rain/0001``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .errors import BadPairError, LayoutError
from .ids import id_problem, shown
from .raw_release import RELEASE_INFO_FILE, RawPair, RawRelease, ReleaseInfo
from .schema import (
    CATEGORIES,
    IMAGE_EXTENSIONS,
    ROLE_ALIASES,
    SPLITS,
    normalize_category,
    normalize_role,
    normalize_split,
)

# Names people use for splits we do not carry; refused with a message instead of ignored.
_OTHER_SPLITS = {"val", "valid", "validation", "dev", "eval"}


@dataclass(frozen=True)
class Location:
    role: str | None
    split: str | None
    category: str | None
    prefix: tuple[str, ...]  # unrecognised folders above the recognised ones
    name: str  # the rest of the path, without extension, POSIX


def locate(relpath: str, *, split: str | None = None, category: str | None = None) -> Location:
    """Find role, split and category in a relative path; raise BadPairError when ambiguous."""
    parts = relpath.split("/")
    found: dict[str, tuple[int, str]] = {}
    for i, part in enumerate(parts[:-1]):
        for kind, value in (("role", normalize_role(part)), ("split", normalize_split(part)),
                            ("category", normalize_category(part))):
            if value is None:
                continue
            if kind in found and found[kind][1] != value:
                raise BadPairError(relpath, f"names two {kind}s ({parts[found[kind][0]]!r} and {part!r})")
            found[kind] = (i, value)
        if part.lower() in _OTHER_SPLITS:
            raise BadPairError(relpath, f"split folder {part!r} is not one of {list(SPLITS)}")
    last = max((i for i, _ in found.values()), default=-1)
    recognised = {i for i, _ in found.values()}
    stem = os.path.splitext(parts[-1])[0]
    return Location(
        role=found.get("role", (0, None))[1],
        split=found.get("split", (0, split))[1],
        category=found.get("category", (0, category))[1],
        prefix=tuple(p for i, p in enumerate(parts[: last + 1]) if i not in recognised),
        name="/".join([*parts[last + 1: -1], stem]),
    )


def walk_images(root: str) -> tuple[list[str], list[str]]:
    """Image files and other files under ``root``, as sorted POSIX relative paths.

    Hidden files and folders (``.git``, ``.DS_Store``) are skipped; sorting makes
    every later step independent of the file system's listing order. Symlinked
    folders are followed (releases on shared storage link splits in), each real
    folder once, so a link cycle cannot loop. Only regular files (or links to
    them) are images: a FIFO, socket or device named ``x.png`` would block or
    never end a read, so it is listed with the other files, as ignored.
    """
    images, others = [], []
    visited: set[str] = set()
    pending = [(root, "")]
    while pending:
        path, rel = pending.pop()
        real = os.path.realpath(path)
        if real in visited:
            continue
        visited.add(real)
        try:
            with os.scandir(path) as it:
                entries = [e for e in it if not e.name.startswith(".")]
        except OSError as e:
            raise LayoutError(f"{shown(path)}: cannot list this folder ({e.strerror or e})") from None
        for entry in entries:
            relpath = f"{rel}{entry.name}"
            if _is_dir(entry):
                pending.append((entry.path, relpath + "/"))
            elif entry.is_file() and os.path.splitext(entry.name)[1].lower() in IMAGE_EXTENSIONS:
                images.append(relpath)
            else:
                others.append(relpath)
    return sorted(images), sorted(others)


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()    # follows symlinks; the d_type from the listing, no extra stat
    except OSError:
        return False


def read(root: str, *, split: str | None = None, category: str | None = None) -> RawRelease:
    if split is not None and normalize_split(split) is None:
        raise LayoutError(f"--split {split!r} is not one of {list(SPLITS)}")
    if category is not None and normalize_category(category) is None:
        raise LayoutError(f"--category {category!r} is not one of {list(CATEGORIES)}")
    split = split and normalize_split(split)
    category = category and normalize_category(category)
    images, others = walk_images(root)
    release = RawRelease(root=root, layout="folders", pairs=[], info=ReleaseInfo.from_root(root))
    release.ignored = [p for p in others if p != RELEASE_INFO_FILE]
    sides: dict[str, dict[tuple, str]] = {"lq": {}, "hq": {}}
    outside, in_role_folders = [], 0
    for relpath in images:
        try:
            relpath.encode("utf-8")
        except UnicodeEncodeError:
            release.problems.append(BadPairError(ascii(relpath), "file name is not valid UTF-8; rename it"))
            continue
        try:
            loc = locate(relpath, split=split, category=category)
        except BadPairError as e:
            release.problems.append(e)
            continue
        if loc.role is None:
            outside.append(relpath)
            continue
        in_role_folders += 1
        problem = _missing(relpath, loc) or _bad_id(loc)
        if problem:
            release.problems.append(BadPairError(shown(relpath), problem))
            continue
        key = (loc.split, loc.category, loc.prefix, loc.name)
        other = sides[loc.role].setdefault(key, relpath)
        if other != relpath:
            release.problems.append(BadPairError(
                relpath, f"same {loc.role.upper()} name as {other} (ids must be unique; rename one)"))
    if not in_role_folders and not release.problems:
        raise LayoutError(_no_layout_message(root, images, others))
    release.ignored += outside
    _pair_up(release, sides)
    return release


def _missing(relpath: str, loc: Location) -> str | None:
    if loc.split is None:
        return (f"no split folder in its path; expected one of {list(SPLITS)} "
                "(or pass --split for a tree without split folders)")
    if loc.category is None:
        return (f"no category folder in its path; expected one of {list(CATEGORIES)} or a common "
                "spelling (general, lowlight, low-light, oldphoto, ...), or pass --category")
    return None


def _bad_id(loc: Location) -> str | None:
    # A file name with a backslash or a control character makes an id no folder can hold safely.
    pair_id = f"{loc.category}/{loc.name}"
    why = id_problem(pair_id)
    return f"its pair id {pair_id!r} {why}; rename the file" if why else None


def _pair_up(release: RawRelease, sides: dict[str, dict[tuple, str]]) -> None:
    lq, hq = sides["lq"], sides["hq"]
    for key, lq_path in lq.items():
        split, category, _prefix, name = key
        if key not in hq:
            release.problems.append(BadPairError(
                lq_path, f"LQ image has no HQ/GT partner named {name}.* in split {split}, "
                f"category {category}", f"{category}/{name}"))
            continue
        release.pairs.append(RawPair(id=f"{category}/{name}", split=split, category=category,
                                     lq_path=lq_path, hq_path=hq[key]))
    for key, hq_path in hq.items():
        if key not in lq:
            release.problems.append(BadPairError(
                hq_path, f"HQ/GT image has no LQ partner named {key[3]}.* in split {key[0]}, "
                f"category {key[1]}", f"{key[1]}/{key[3]}"))


def _no_layout_message(root: str, images: list[str], others: list[str]) -> str:
    top = sorted({p.split("/")[0] + ("/" if "/" in p else "") for p in images + others})[:12]
    return (
        f"{root}: found no LQ/HQ image folders.\n"
        f"  expected: <root>/<split>/<LQ|HQ|GT>/<category>/<name>.<ext> (levels in any order), "
        f"or a metadata file ({'metadata.jsonl, metadata.csv'}) naming lq/hq paths\n"
        f"  role folders: {sorted(ROLE_ALIASES)}\n"
        f"  found: {len(images)} image files, {len(others)} other files; top level: {top or 'nothing'}"
    )
