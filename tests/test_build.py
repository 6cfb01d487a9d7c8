import json
import os
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest
from conftest import image_bytes, write

from ggt_dataset.build import build
from ggt_dataset.errors import BuildError
from ggt_dataset.layout import STATE_DIR
from ggt_dataset.plan import BuildOptions


def shard_files(out):
    found = {}
    for dirpath, _d, files in os.walk(os.path.join(out, "data")):
        for fn in files:
            p = os.path.join(dirpath, fn)
            found[os.path.relpath(p, out)] = Path(p).read_bytes()
    return found


def test_build_loads_with_datasets_offline_and_streaming(built, sample_raw):
    ds = datasets.load_dataset(built)
    assert {k: len(v) for k, v in ds.items()} == {"train": 12, "test": 6}
    pair = ds["test"][0]
    assert pair["lq"].size == (64, 64) and pair["hq"].mode == "RGB"
    assert pair["license"] and pair["qc_scores"][0]["name"] == "lq_psnr"
    rain = datasets.load_dataset(built, "rain", split="train")
    assert len(rain) == 2 and set(rain["category"]) == {"rain"}
    stream = datasets.load_dataset(built, split="test", streaming=True)
    rows = list(stream)
    assert len(rows) == 6 and rows[0]["lq"].size == (64, 64)


def test_image_bytes_round_trip_exactly(built, sample_raw):
    lines = [json.loads(x) for x in Path(os.path.join(sample_raw, "metadata.jsonl")).read_text().splitlines()]
    by_lq = {x["lq_file_name"].rsplit("/", 1)[1]: x for x in lines
             if x["category"] == "rain" and x["split"] == "train"}
    rows = pq.read_table(os.path.join(built, "data/rain/train-00000-of-00001.parquet")).to_pylist()
    assert len(rows) == len(by_lq) == 2     # an empty shard would compare nothing
    for row in rows:
        src = by_lq[row["lq"]["path"]]
        assert row["lq"]["bytes"] == Path(os.path.join(sample_raw, src["lq_file_name"])).read_bytes()
        assert row["hq"]["bytes"] == Path(os.path.join(sample_raw, src["hq_file_name"])).read_bytes()


def test_shards_are_viewer_friendly(built):
    meta = json.loads(Path(os.path.join(built, "ggt_manifest.json")).read_text())
    assert len(meta["shards"]) == 12        # 6 categories x 2 splits; none would check nothing
    for shard in meta["shards"]:
        pf = pq.ParquetFile(os.path.join(built, shard["path"]))
        assert pf.metadata.num_rows == shard["num_rows"] == len(shard["ids"])
        rg = pf.metadata.row_group(0)
        assert rg.total_byte_size < 100 * 2**20
        assert rg.column(0).has_offset_index and rg.column(0).has_column_index
        assert datasets.Features.from_arrow_schema(pf.schema_arrow)["lq"] == datasets.Image()
        lq_bytes = next(rg.column(i) for i in range(rg.num_columns) if rg.column(i).path_in_schema == "lq.bytes")
        assert lq_bytes.compression == "UNCOMPRESSED"


def test_shards_have_leaf_statistics_and_the_cdc_marker_datasets_writes(built):
    """The viewer filters on min/max and the column index, which Parquet keeps per leaf
    column (qc_scores.list.element.score, not qc_scores); `datasets` marks files written
    with content-defined chunking in the footer, and so must we."""
    pf = pq.ParquetFile(os.path.join(built, "data/rain/train-00000-of-00001.parquet"))
    assert json.loads(pf.metadata.metadata[b"content_defined_chunking"]) == datasets.config.DEFAULT_CDC_OPTIONS
    scores = [s["score"] for row in pf.read(columns=["qc_scores"]).column(0).to_pylist() for s in row]
    rg = pf.metadata.row_group(0)
    assert pf.metadata.num_row_groups == 1 and len(scores) == pf.metadata.num_rows
    leaves = {rg.column(i).path_in_schema: rg.column(i) for i in range(rg.num_columns)}
    for path, col in leaves.items():
        wanted = path not in ("lq.bytes", "hq.bytes")  # min/max of whole images filter nothing
        assert (col.is_stats_set, col.has_column_index) == (wanted, wanted), path
    stats = leaves["qc_scores.list.element.score"].statistics
    assert (stats.min, stats.max) == (min(scores), max(scores))
    assert leaves["qc_scores.list.element.name"].statistics.max == "lq_psnr"


def test_row_groups_and_shards_follow_the_options(sample_raw, tmp_path):
    out = str(tmp_path / "o")
    build(sample_raw, out, options=BuildOptions(shard_bytes=1, row_group_rows=1), progress=False)
    meta = json.loads(Path(os.path.join(out, "ggt_manifest.json")).read_text())
    train_mixed = [s for s in meta["shards"] if s["category"] == "mixed" and s["split"] == "train"]
    assert len(train_mixed) == 2 and [s["path"] for s in train_mixed] == [
        "data/mixed/train-00000-of-00002.parquet", "data/mixed/train-00001-of-00002.parquet"]
    assert all(s["row_groups"] == s["num_rows"] for s in meta["shards"])
    assert len(datasets.load_dataset(out, split="train")) == 12


def test_same_input_same_bytes(sample_raw, tmp_path):
    a, b = str(tmp_path / "a" / "ggt"), str(tmp_path / "b" / "ggt")
    build(sample_raw, a, progress=False, workers=1)
    build(sample_raw, b, progress=False, workers=4)
    assert shard_files(a) == shard_files(b)
    for name in ("ggt_manifest.json", "README.md"):
        assert Path(os.path.join(a, name)).read_bytes() == Path(os.path.join(b, name)).read_bytes()


def test_rerun_reuses_and_changed_input_rebuilds_only_its_shard(tree, tmp_path):
    out = str(tmp_path / "out")
    first = build(tree, out, progress=False)
    again = build(tree, out, progress=False)
    assert again.reused == len(first.results)
    before = shard_files(out)
    write(os.path.join(tree, "train/GT/rain/000.png"), image_bytes(77))
    third = build(tree, out, progress=False)
    after = shard_files(out)
    changed = {k for k in before if before[k] != after[k]}
    assert changed == {"data/rain/train-00000-of-00001.parquet"}
    assert third.reused == len(first.results) - 1


def test_resume_state_from_before_results_carried_split_and_category_is_reused(tree, tmp_path):
    """Shard records written before ShardResult had split/category still resume (no rewrite)."""
    out = str(tmp_path / "o")
    first = build(tree, out, progress=False)
    before = Path(os.path.join(out, "ggt_manifest.json")).read_bytes()
    for dirpath, _d, files in os.walk(os.path.join(out, STATE_DIR, "data")):
        for fn in files:
            side = Path(dirpath, fn)
            record = json.loads(side.read_text())
            side.write_text(json.dumps({k: v for k, v in record.items() if k not in ("split", "category")}))
    again = build(tree, out, progress=False)
    assert again.reused == len(first.results)
    assert [(r.split, r.category) for r in again.results] == [(r.split, r.category) for r in first.results]
    assert Path(os.path.join(out, "ggt_manifest.json")).read_bytes() == before


def test_stale_shards_of_an_earlier_plan_are_removed(tree, tmp_path):
    out = str(tmp_path / "out")
    build(tree, out, progress=False, options=BuildOptions(shard_bytes=1))
    assert "data/rain/train-00002-of-00003.parquet" in shard_files(out)
    build(tree, out, progress=False)
    assert sorted(shard_files(out))[:2] == ["data/low_light/test-00000-of-00001.parquet",
                                            "data/low_light/train-00000-of-00001.parquet"]
    assert len(shard_files(out)) == 6


def test_bad_pairs_refuse_the_build_and_write_nothing(tree, tmp_path):
    write(os.path.join(tree, "train/LQ/rain/003.jpg"), image_bytes(5, fmt="JPEG"))
    out = tmp_path / "out"
    with pytest.raises(BuildError, match=r"(?s)1 bad pair.*train/LQ/rain/003.jpg: LQ image has no HQ.*--skip-bad"):
        build(tree, str(out), progress=False)
    assert not out.exists()


def test_corrupt_image_stops_the_build_naming_it(tree, tmp_path):
    path = os.path.join(tree, "test/GT/rain/001.png")
    data = Path(path).read_bytes()
    write(path, data[: len(data) // 2])
    out = str(tmp_path / "out")
    with pytest.raises(BuildError, match=r"(?s)test/GT/rain/001.png: is a truncated or corrupt PNG.*re-run resumes"):
        build(tree, out, progress=False)
    assert not os.path.exists(os.path.join(out, "data/rain/test-00000-of-00001.parquet"))
    assert not os.path.exists(os.path.join(out, "ggt_manifest.json"))
    assert os.listdir(os.path.join(out, STATE_DIR, "tmp")) == []


def test_skip_bad_records_what_was_left_out(tree, tmp_path):
    write(os.path.join(tree, "train/LQ/rain/003.jpg"), image_bytes(5, fmt="JPEG"))  # unpaired
    path = os.path.join(tree, "test/GT/rain/001.png")
    write(path, b"not a png")  # corrupt, found while writing
    out = str(tmp_path / "out")
    build(tree, out, progress=False, on_bad_pairs="skip")
    meta = json.loads(Path(os.path.join(out, "ggt_manifest.json")).read_text())
    reasons = {s["path"]: s["reason"] for s in meta["skipped"]}
    assert reasons["train/LQ/rain/003.jpg"].startswith("LQ image has no HQ/GT partner")
    assert "not an image" in reasons["test/GT/rain/001.png"]
    assert meta["totals"]["pairs"] == 14
    assert len(datasets.load_dataset(out, split="test")) == 5


def test_refuses_a_folder_that_is_not_a_build(tree, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(BuildError, match="mine: exists and is not a ggt build"):
        build(tree, str(tmp_path / "mine"), progress=False)
    assert os.listdir(tmp_path / "mine") == ["thesis.tex"]
    with pytest.raises(BuildError, match="must differ"):
        build(tree, tree, progress=False)


@pytest.mark.slow
def test_build_from_folders_ignores_manifest_when_asked(sample_raw, tmp_path):
    out = str(tmp_path / "o")
    report = build(sample_raw, out, layout="folders", progress=False)
    assert report.release.layout == "folders" and sum(r.num_rows for r in report.results) == 18
    row = datasets.load_dataset(out, split="train")[0]
    assert row["license"] is None and row["lq_sha256"]


def test_card_lists_counts_and_licences(built):
    card = Path(os.path.join(built, "README.md")).read_text()
    assert "| rain | 2 | 1 |" in card and "| **all** | **12** | **6** |" in card
    assert "| CC0-1.0 |" in card and "load_dataset(\"ggt-100k\", \"mixed\")" in card and "```bibtex" not in card


def test_awkward_images_build_and_load_as_documented(tmp_path):
    import io

    import numpy as np
    from PIL import Image

    arr = (np.arange(24 * 40 * 3) % 256).astype(np.uint8).reshape(24, 40, 3)
    variants = {
        "sixteen": (Image.fromarray(arr[..., 0].astype(np.uint16) * 257), "PNG", {}),
        "palette": (Image.fromarray(arr).convert("P"), "PNG", {}),
        "cmyk": (Image.fromarray(arr).convert("CMYK"), "JPEG", {}),
        "rotated": (Image.fromarray(arr), "JPEG", {"exif": _exif(6)}),
    }
    for name, (img, fmt, kw) in variants.items():
        buf = io.BytesIO()
        img.save(buf, format=fmt, **kw)
        ext = ".png" if fmt == "PNG" else ".jpg"
        write(str(tmp_path / f"raw/test/LQ/snow/{name}{ext}"), buf.getvalue())
        write(str(tmp_path / f"raw/test/GT/snow/{name}.png"), image_bytes(1, (40, 24)))
    out = str(tmp_path / "out")
    build(str(tmp_path / "raw"), out, progress=False)
    rows = {r["id"]: r for r in datasets.load_dataset(out, split="test")}
    assert rows["snow/sixteen"]["lq"].mode.startswith("I")
    assert rows["snow/palette"]["lq"].mode == "P"
    assert rows["snow/cmyk"]["lq"].mode == "CMYK"
    rot = rows["snow/rotated"]
    assert rot["lq"].size == (24, 40) == (rot["lq_width"], rot["lq_height"])  # EXIF 6: shown rotated


def _exif(orientation):
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def test_images_shared_by_train_and_test_are_reported(tree, tmp_path):
    import shutil

    shutil.copy(os.path.join(tree, "train/LQ/rain/000.jpg"), os.path.join(tree, "test/LQ/rain/001.jpg"))
    out = str(tmp_path / "out")
    build(tree, out, progress=False)
    dup = json.loads(Path(os.path.join(out, "ggt_manifest.json")).read_text())["duplicates"]
    assert dup["lq_in_train_and_test"] == {"count": 1, "first": [["test:rain/001", "train:rain/000"]]}
    assert dup["lq_repeated_within_split"]["count"] == 0
    assert "1 shared by train and test" in Path(os.path.join(out, "README.md")).read_text()


def test_default_card_cites_the_paper(tree, tmp_path):
    out = str(tmp_path / "out")
    build(tree, out, progress=False)
    card = Path(os.path.join(out, "README.md")).read_text()
    assert "license: cc-by-nc-nd-4.0" in card and "arXiv:2605.31039" in card
    assert "```bibtex\n@article{kong2026ggt100k," in card


@pytest.mark.slow
def test_ggt_release_yaml_values_must_be_text(tree, tmp_path, ggt_in_process):
    """A date (or number) there reached the manifest and the build ended, after writing
    every shard, in 'unexpected TypeError: Object of type date is not JSON serializable'."""
    Path(tree, "ggt-release.yaml").write_text("pretty_name: Mine\npaper: 2026-05-01\nlicense_name: x\n")
    out = str(tmp_path / "out")
    run = ggt_in_process("build", tree, out)
    assert run.returncode == 1 and "ggt-release.yaml: ['paper'] must be text" in run.stderr, run.stderr
    assert "unexpected" not in run.stderr and not os.path.exists(os.path.join(out, "data"))


def test_two_builds_cannot_write_one_folder(tree, tmp_path):
    import fcntl

    out = str(tmp_path / "out")
    build(tree, out, progress=False)
    with open(os.path.join(out, STATE_DIR, "lock"), "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # as a running build holds it
        with pytest.raises(BuildError, match="another `ggt build` is writing here"):
            build(tree, out, progress=False)
    assert build(tree, out, progress=False).reused == 6  # released: builds again


def test_an_interrupted_build_does_not_load_partially(tree, tmp_path):
    path = os.path.join(tree, "test/GT/rain/001.png")
    good = Path(path).read_bytes()
    write(path, good[: len(good) // 2])
    out = str(tmp_path / "out")
    with pytest.raises(BuildError):
        build(tree, out, progress=False)
    assert shard_files(out)  # some shards are finished...
    with pytest.raises(Exception, match="No .*data files found"):
        datasets.load_dataset(out)  # ...but loading fails instead of giving part of the data
    assert "Build incomplete" in Path(os.path.join(out, "README.md")).read_text()
    write(path, good)
    build(tree, out, progress=False)
    assert len(datasets.load_dataset(out, split="test")) == 6


def test_skip_bad_shards_are_not_reused_without_skip_bad(tree, tmp_path):
    write(os.path.join(tree, "train/GT/rain/001.png"), b"")
    out = str(tmp_path / "out")
    build(tree, out, progress=False, on_bad_pairs="skip")
    with pytest.raises(BuildError, match="train/GT/rain/001.png: is empty"):
        build(tree, out, progress=False)


@pytest.mark.parametrize("via_link", [False, True])
def test_out_inside_raw_is_refused_by_real_path(tree, tmp_path, via_link):
    base = tree
    if via_link:  # the same folder under another name
        os.symlink(tree, tmp_path / "alias")
        base = str(tmp_path / "alias")
    with pytest.raises(BuildError, match="inside the raw release"):
        build(tree, os.path.join(base, "out"), progress=False)
    assert not os.path.exists(os.path.join(tree, "out"))
    with pytest.raises(BuildError, match="must differ"):
        build(tree, base, progress=False)


def test_a_killed_runs_temporary_files_are_removed_by_the_next_run(tree, tmp_path):
    out = str(tmp_path / "out")
    build(tree, out, progress=False)
    # What atomic.write_bytes and a shard writer leave when killed mid-write
    leftovers = ["README.md.tmp-4242-139872", "ggt_manifest.json.tmp-4242-139872",
                 f"{STATE_DIR}/data/rain/train-00000-of-00001.parquet.json.tmp-4242-1",
                 f"{STATE_DIR}/tmp/data__rain__train-00000-of-00001.parquet.partial"]
    for rel in leftovers:
        write(os.path.join(out, rel), b"half")
    write(os.path.join(out, "notes.tmp-kept"), b"not ours")
    assert build(tree, out, progress=False).reused == 6
    assert [rel for rel in leftovers if os.path.exists(os.path.join(out, rel))] == []
    assert os.path.exists(os.path.join(out, "notes.tmp-kept"))


@pytest.mark.slow
def test_a_build_of_another_raw_release_is_replaced_only_with_overwrite(tree, tmp_path, ggt_in_process):
    import shutil

    other = str(tmp_path / "other")
    shutil.copytree(tree, other)
    os.remove(os.path.join(other, "test/LQ/rain/001.jpg"))
    os.remove(os.path.join(other, "test/GT/rain/001.png"))
    out = str(tmp_path / "out")
    build(tree, out, progress=False)
    before = Path(os.path.join(out, "ggt_manifest.json")).read_bytes()
    os.symlink(tree, tmp_path / "alias")
    assert build(str(tmp_path / "alias"), out, progress=False).reused == 6  # the same release
    r = ggt_in_process("build", other, out, "-q")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert f"holds a build of {os.path.realpath(tree)}, not of {os.path.realpath(other)}; pass --overwrite" in r.stderr
    assert Path(os.path.join(out, "ggt_manifest.json")).read_bytes() == before
    r = ggt_in_process("build", other, out, "-q", "--overwrite")
    assert r.returncode == 0, r.stderr
    assert json.loads(Path(os.path.join(out, "ggt_manifest.json")).read_text())["totals"]["pairs"] == 14
    assert build(other, out, progress=False).reused == 6  # now it is the build of `other`


def test_an_unknown_layout_is_refused_not_read_as_folders(tree, tmp_path):
    from ggt_dataset.errors import LayoutError

    with pytest.raises(LayoutError, match=r"layout must be one of \['auto', 'folders', 'manifest'\], got 'bogus'"):
        build(tree, str(tmp_path / "out"), layout="bogus", progress=False)
    assert not (tmp_path / "out").exists()
