"""``GGT100K``: a ``datasets.GeneratorBasedBuilder`` over a raw release (folders or manifest)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import datasets

from ggt_dataset.build import ON_BAD_PAIRS
from ggt_dataset.errors import BuildError
from ggt_dataset.plan import BuildOptions, PlannedPair, stat_pairs
from ggt_dataset.raw_release import RawRelease, ReleaseInfo
from ggt_dataset.raw_scan import LAYOUTS, scan
from ggt_dataset.schema import CATEGORIES, FEATURES, normalize_category
from ggt_dataset.shards import load_pairs, row

logger = logging.getLogger(__name__)


@dataclass
class GGTConfig(datasets.BuilderConfig):
    """Which categories to build, and how to read and check the raw release.

    Args:
        categories: categories to keep (names or spellings such as ``low-light``); ``None`` keeps all six.
        layout: ``auto``, ``folders`` or ``manifest`` (see ``ggt_dataset.raw_scan.scan``).
        on_bad_pairs: ``error`` or ``skip`` (skipped pairs are logged).
        decode: fully decode every image while checking it.
    """

    categories: tuple[str, ...] | None = None
    layout: str = "auto"
    on_bad_pairs: str = "error"
    decode: bool = False

    def __setattr__(self, name: str, value: Any) -> None:
        # Checked on every assignment, not only in __post_init__: datasets applies
        # GGT100K(..., layout=...) with setattr on a copy of a predefined config.
        check = _CHECKS.get(name)
        super().__setattr__(name, check(value) if check else value)


def _choice(name: str, valid: tuple[str, ...]):
    def check(value: Any) -> str:
        if value not in valid:
            raise BuildError(f"GGTConfig {name} must be one of {list(valid)}, got {value!r}")
        return value
    return check


def _categories(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    names = (value,) if isinstance(value, str) else tuple(value)
    unknown = [n for n in names if not isinstance(n, str) or normalize_category(n) is None]
    if unknown or not names:
        raise BuildError(f"GGTConfig categories must be some of {list(CATEGORIES)}, got {value!r}"
                         + (f" ({unknown} unknown)" if unknown else ""))
    known = [c for n in names if (c := normalize_category(n)) is not None]     # all of them, here
    return tuple(dict.fromkeys(known))


_CHECKS = {"layout": _choice("layout", LAYOUTS), "on_bad_pairs": _choice("on_bad_pairs", ON_BAD_PAIRS),
           "categories": _categories}


class GGT100K(datasets.GeneratorBasedBuilder):
    BUILDER_CONFIG_CLASS = GGTConfig
    BUILDER_CONFIGS = [GGTConfig(name="default", description="All six categories.")] + [
        GGTConfig(name=c, categories=(c,), description=f"The {c} category only.") for c in CATEGORIES]
    DEFAULT_CONFIG_NAME = "default"

    def _info(self) -> datasets.DatasetInfo:
        info = ReleaseInfo.from_root(self.config.data_dir) if self.config.data_dir else ReleaseInfo()
        return datasets.DatasetInfo(description=info.description, features=FEATURES,
                                    homepage=info.homepage, license=info.license, citation=info.citation)

    def _split_generators(self, dl_manager) -> list[datasets.SplitGenerator]:
        if not self.config.data_dir:
            raise BuildError("GGT100K needs the raw release: GGT100K(data_dir='/path/to/raw')")
        release = scan(self.config.data_dir, layout=self.config.layout)
        if release.problems:
            if self.config.on_bad_pairs != "skip":
                raise BuildError(f"{len(release.problems)} bad pair(s), e.g. {release.problems[0]}; "
                                 "pass on_bad_pairs='skip' to leave them out")
            for e in release.problems:
                logger.warning("skipping %s", e)
        keep = set(self.config.categories or CATEGORIES)
        planned = [pp for pp in stat_pairs(release) if pp.pair.category in keep]
        if not planned:
            raise BuildError(_nothing_to_build(self.config.data_dir, release, keep))
        splits = sorted({pp.pair.split for pp in planned})
        return [datasets.SplitGenerator(name=s, gen_kwargs={
            "root": release.root, "pairs": [pp for pp in planned if pp.pair.split == s]}) for s in splits]

    def _generate_examples(self, root: str, pairs: list[PlannedPair]) -> Iterator[tuple[str, dict[str, Any]]]:
        options = BuildOptions(decode=self.config.decode)
        for item in load_pairs(root, pairs, options, workers=os.cpu_count() or 1):
            if item.error is not None:
                if self.config.on_bad_pairs != "skip":
                    raise item.error
                logger.warning("skipping %s", item.error)
                continue
            yield item.planned.pair.id, row(item)


def _nothing_to_build(data_dir: str, release: RawRelease, keep: set[str]) -> str:
    """Why no pair is left: all were bad (and skipped), or none is in the chosen categories."""
    found = sorted({p.category for p in release.pairs}, key=CATEGORIES.index)
    why = [f"none in categories {sorted(keep, key=CATEGORIES.index)}; it has {found}"] if found else []
    if release.problems:
        why.append(f"{len(release.problems)} bad pair(s) were skipped, e.g. {release.problems[0]}")
    return f"{data_dir}: no pairs to build ({'; '.join(why) or 'the release is empty'})"
