"""``GGT100K``: a ``datasets.GeneratorBasedBuilder`` over a raw release (folders or manifest)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import datasets

from ggt_dataset.plan import BuildOptions, PlannedPair, stat_pairs
from ggt_dataset.release import ReleaseInfo, scan
from ggt_dataset.schema import CATEGORIES, FEATURES
from ggt_dataset.shards import load_pairs, row

logger = logging.getLogger(__name__)


@dataclass
class GGTConfig(datasets.BuilderConfig):
    """Which categories to build, and how to read and check the raw release.

    Args:
        categories: categories to keep; ``None`` keeps all six.
        layout: ``auto``, ``folders`` or ``manifest`` (see ``ggt_dataset.release.scan``).
        on_bad_pairs: ``error`` or ``skip`` (skipped pairs are logged).
        decode: fully decode every image while checking it.
    """

    categories: tuple[str, ...] | None = None
    layout: str = "auto"
    on_bad_pairs: str = "error"
    decode: bool = False


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
            raise ValueError("GGT100K needs the raw release: GGT100K(data_dir='/path/to/raw')")
        release = scan(self.config.data_dir, layout=self.config.layout)
        if release.problems:
            if self.config.on_bad_pairs != "skip":
                raise ValueError(f"{len(release.problems)} bad pair(s), e.g. {release.problems[0]}; "
                                 "pass on_bad_pairs='skip' to leave them out")
            for e in release.problems:
                logger.warning("skipping %s", e)
        keep = set(self.config.categories or CATEGORIES)
        planned = [pp for pp in stat_pairs(release) if pp.pair.category in keep]
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
