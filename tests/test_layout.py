"""The built layout is defined once (ggt_dataset.layout); everything that names a shard agrees."""

import fnmatch
import json
import os
from pathlib import Path

import pytest
import yaml

from ggt_dataset.layout import MANIFEST_FILE, parse_shard_path, shard_path, split_glob


@pytest.mark.parametrize("path,expected", [
    ("data/rain/test-00000-of-00001.parquet", ("test", "rain")),
    ("/abs/out/data/low_light/train-00003-of-00010.parquet", ("train", "low_light")),
    ("hf://datasets/org/x@v1/data/haze/test-00000-of-00002.parquet", ("test", "haze")),
    ("data/rain/test.parquet", None),
    ("other/rain/test-00000-of-00001.parquet", None),
    ("data/rain/test-00000-of-00001.parquet.tmp", None),
])
def test_parse_shard_path(path, expected):
    assert parse_shard_path(path) == expected


def test_manifest_card_and_viewer_agree_with_the_layout(built):
    from ggt_dataset.view.source import open_source

    shards = json.loads(Path(built, MANIFEST_FILE).read_text())["shards"]
    groups = {}
    for s in shards:
        groups.setdefault((s["split"], s["category"]), []).append(s["path"])
    for (split, category), paths in groups.items():
        assert sorted(paths) == [shard_path(split, category, i, len(paths)) for i in range(len(paths))]
        assert {parse_shard_path(p) for p in paths} == {(split, category)}
    viewed = {(os.path.relpath(s.path, built).replace(os.sep, "/"), s.split, s.category)
              for s in open_source(built).shards}
    assert viewed == {(s["path"], s["split"], s["category"]) for s in shards}
    header = yaml.safe_load(Path(built, "README.md").read_text().split("---")[1])
    default = next(c for c in header["configs"] if c["config_name"] == "default")
    for entry in default["data_files"]:
        assert entry["path"] == split_glob("*", entry["split"])
        assert {p for p in (s["path"] for s in shards) if fnmatch.fnmatch(p, entry["path"])} == {
            s["path"] for s in shards if s["split"] == entry["split"]}
