import glob
import os

import pyarrow.parquet as pq
from ggt_dataset.loading_script import GGT100K


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
