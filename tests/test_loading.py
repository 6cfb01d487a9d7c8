import os

import datasets
import pytest

import ggt_dataset
from ggt_dataset import loading


def test_load_local_folder_with_config_and_streaming(built):
    ds = ggt_dataset.load(built)
    assert set(ds) == {"train", "test"}
    snow = ggt_dataset.load(built, "snow", split="test")
    assert len(snow) == 1 and snow[0]["category"] == "snow"
    it = ggt_dataset.load(built, split="train", streaming=True)
    assert isinstance(it, datasets.IterableDataset) and next(iter(it))["hq"].size == (64, 64)


def test_relative_path_works_as_written(built, monkeypatch):
    monkeypatch.chdir(os.path.dirname(built))
    assert len(ggt_dataset.load("ggt-100k", split="test")) == 6


def test_hub_ids_go_to_load_dataset_with_options(monkeypatch):
    seen = []
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: seen.append((a, k)) or "ds")
    assert ggt_dataset.load("org/GGT", "rain", split="test", revision="v1", streaming=True) == "ds"
    assert seen[-1] == (("org/GGT", "rain"), {"split": "test", "revision": "v1", "streaming": True})
    monkeypatch.delenv(loading.REPO_ENV, raising=False)
    ggt_dataset.load()
    assert seen[-1][0] == (loading.DEFAULT_REPO_ID, None)
    monkeypatch.setenv(loading.REPO_ENV, "me/mine")
    ggt_dataset.load(split="train")
    assert seen[-1] == (("me/mine", None), {"split": "train"})


def test_offline_hub_id_fails_cleanly():
    with pytest.raises(Exception) as e:
        ggt_dataset.load("nobody/not-here")
    assert "nobody/not-here" in str(e.value)


def test_plain_load_dataset_of_the_default_out_name(built, monkeypatch):
    # `ggt build RAW` writes ./ggt-100k so that the line in the README works as written.
    monkeypatch.chdir(os.path.dirname(built))
    assert len(datasets.load_dataset("ggt-100k", split="train")) == 12


STREAM_AND_EXIT = """
import sys
import ggt_dataset
pair = next(iter(ggt_dataset.load(sys.argv[1], "rain", split="train", streaming=True)))
print(pair["id"])
"""


@pytest.mark.slow
def test_a_partly_read_stream_exits_cleanly(tmp_path):
    """pyarrow >= 25 aborted about half of such exits (SIGABRT after the right output)."""
    import subprocess
    import sys

    from conftest import make_tree

    from ggt_dataset.build import build
    from ggt_dataset.plan import BuildOptions

    raw = make_tree(tmp_path / "raw", [("train", "rain", f"{i:04d}") for i in range(400)])
    out = str(tmp_path / "built")
    build(raw, out, options=BuildOptions(row_group_rows=2), progress=False)  # 200 row groups
    # Four readers at once, each a fresh process (3.5 s of imports each). Without the fix, 10 in 12
    # such processes aborted on 2026-12-01 (8 in 15 when it was written, loading.py): four all
    # exit cleanly by chance with odds of 1 in 1,300 to 1 in 20. Readers forked from one process
    # that had done the imports aborted 1 in 12 without the fix: too weak a test.
    readers = [subprocess.Popen([sys.executable, "-c", STREAM_AND_EXIT, out], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for _ in range(4)]
    for reader in readers:
        stdout, stderr = reader.communicate(timeout=240)
        assert (reader.returncode, stdout.strip()) == (0, "rain/0000"), stderr[-2000:]
