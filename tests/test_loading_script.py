import glob
import os
import shutil

import pyarrow.parquet as pq
import pytest
from ggt_dataset.loading_script import GGT100K
from ggt_dataset.loading_script.builder import GGTConfig

from ggt_dataset.errors import BuildError


def test_builder_writes_parquet_and_matches_ggt_build(sample_raw, built, tmp_path):
    builder = GGT100K(data_dir=sample_raw, config_name="rain", cache_dir=str(tmp_path / "cache"),
                      dataset_name="ggt100k")
    builder.download_and_prepare(file_format="parquet")
    files = sorted(glob.glob(str(tmp_path / "cache/**/ggt100k-*.parquet"), recursive=True))
    assert [os.path.basename(f) for f in files] == ["ggt100k-test.parquet", "ggt100k-train.parquet"]
    ours = pq.read_table(os.path.join(built, "data/rain/train-00000-of-00001.parquet")).to_pylist()
    theirs = sorted(pq.read_table(files[1]).to_pylist(), key=lambda r: r["id"])
    assert theirs == ours  # same rows, same bytes, same metadata


def test_builder_default_config_as_dataset(sample_raw, tmp_path):
    builder = GGT100K(data_dir=sample_raw, cache_dir=str(tmp_path / "cache"))
    builder.download_and_prepare()
    ds = builder.as_dataset()
    assert {k: len(v) for k, v in ds.items()} == {"train": 12, "test": 6}
    assert ds["test"][0]["lq"].size == (64, 64)
    assert builder.info.license == "other"  # from the sample pack's ggt-release.yaml


@pytest.mark.parametrize("kwargs,match", [
    ({"on_bad_pairs": "ignore"}, r"on_bad_pairs must be one of \['error', 'skip'\], got 'ignore'"),
    ({"layout": "bogus"}, r"layout must be one of \['auto', 'folders', 'manifest'\], got 'bogus'"),
    ({"categories": ("rain", "fog", "bogus")}, r"categories must be some of \['mixed', .*\['bogus'\] unknown"),
    ({"config_name": "rain", "categories": []}, r"categories must be some of")])
def test_config_values_are_checked_listing_the_valid_ones(tree, tmp_path, kwargs, match):
    with pytest.raises(BuildError, match=match):
        GGT100K(data_dir=tree, cache_dir=str(tmp_path / "cache"), **kwargs)
    with pytest.raises(BuildError, match=match):  # the config class on its own, too
        GGTConfig(name="mine", **{k: v for k, v in kwargs.items() if k != "config_name"})


def test_category_spellings_are_normalized(tree, tmp_path):
    builder = GGT100K(data_dir=tree, cache_dir=str(tmp_path / "cache"), categories=["Low-Light", "fog"])
    assert builder.config.categories == ("low_light", "haze")


def test_a_tree_with_nothing_to_build_is_an_error_naming_it(tree, tmp_path):
    shutil.rmtree(os.path.join(tree, "train/GT"))
    shutil.rmtree(os.path.join(tree, "test/GT"))  # LQ only: every pair is bad
    builder = GGT100K(data_dir=tree, cache_dir=str(tmp_path / "cache"), on_bad_pairs="skip")
    with pytest.raises(BuildError, match=rf"{tree}: no pairs to build \(15 bad pair\(s\) were skipped, e.g. "):
        builder.download_and_prepare()


def test_categories_the_release_lacks_are_an_error_naming_what_it_has(tree, tmp_path):
    builder = GGT100K(data_dir=tree, cache_dir=str(tmp_path / "cache"), categories=("snow",))
    with pytest.raises(BuildError, match=r"no pairs to build \(none in categories \['snow'\]; "
                                         r"it has \['mixed', 'rain', 'low_light'\]\)"):
        builder.download_and_prepare()
