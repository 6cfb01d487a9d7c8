import json
import os
import re
import shutil
from pathlib import Path

import pytest

from ggt_dataset.verify import verify


def first_shard(out):
    return json.load(open(os.path.join(out, "ggt_manifest.json")))["shards"][0]["path"]


def test_clean_build_verifies_fully(built):
    report = verify(built, full=True)
    assert report.ok, report.faults
    assert report.shards == 12 and report.rows == 18 and report.images_decoded == 36


def test_one_flipped_byte_is_a_fault(built_copy):
    path = os.path.join(built_copy, first_shard(built_copy))
    data = bytearray(Path(path).read_bytes())
    data[len(data) // 3] ^= 0x01
    Path(path).write_bytes(bytes(data))
    report = verify(built_copy)
    assert not report.ok
    assert any(f.startswith(path) and "sha256 differs" in f for f in report.faults)


def test_missing_stray_and_truncated_shards(built_copy):
    shards = json.loads(Path(os.path.join(built_copy, "ggt_manifest.json")).read_text())["shards"]
    os.remove(os.path.join(built_copy, shards[0]["path"]))
    with open(os.path.join(built_copy, shards[1]["path"]), "r+b") as f:
        f.truncate(100)
    shutil.copy(os.path.join(built_copy, shards[2]["path"]),
                os.path.join(built_copy, "data/rain/extra.parquet"))
    faults = "\n".join(verify(built_copy).faults)
    assert f"{shards[0]['path']}: missing" in faults
    assert "100 bytes, manifest says" in faults and "not a readable Parquet file" in faults
    assert "data/rain/extra.parquet: not in the manifest" in faults


def test_card_that_disagrees_with_the_shards(built_copy):
    card = os.path.join(built_copy, "README.md")
    text = Path(card).read_text()
    Path(card).write_text(text.replace("num_examples: 12", "num_examples: 13", 1))
    assert any("num_examples" in f for f in verify(built_copy).faults)
    Path(card).write_text("---\nconfigs: [oops\n---\n")
    assert any("YAML header does not parse" in f for f in verify(built_copy).faults)
    os.remove(card)
    assert any("README.md: missing" in f for f in verify(built_copy).faults)


def test_unfinished_build_says_so(built_copy):
    os.remove(os.path.join(built_copy, "ggt_manifest.json"))
    report = verify(built_copy)
    assert len(report.faults) == 1 and "build did not finish" in report.faults[0]


def test_full_catches_image_bytes_that_do_not_match_their_hash(built_copy):
    # Rewrite one shard with a corrupted image but a consistent manifest hash: only --full sees it.
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ggt_dataset.hashing import file_sha256
    from ggt_dataset.shards import ARROW_SCHEMA

    manifest_path = os.path.join(built_copy, "ggt_manifest.json")
    meta = json.loads(Path(manifest_path).read_text())
    shard = meta["shards"][0]
    path = os.path.join(built_copy, shard["path"])
    rows = pq.read_table(path).to_pylist()
    rows[0]["hq"]["bytes"] = rows[0]["hq"]["bytes"][:-200]
    pq.write_table(pa.Table.from_pylist(rows, schema=ARROW_SCHEMA), path)
    shard.update(sha256=file_sha256(path), num_bytes=os.path.getsize(path))
    from ggt_dataset.manifest import counts
    meta["counts"] = counts(meta["shards"])
    Path(manifest_path).write_text(json.dumps(meta))
    assert verify(built_copy).ok
    faults = verify(built_copy, full=True).faults
    assert len(faults) == 1 and f"pair {rows[0]['id']!r} hq: bytes do not match their sha256" in faults[0]


def test_dropping_a_shard_from_the_manifest_is_caught(built_copy):
    # Remove a shard and its entry, fix up the totals: the split counts and card no longer add up.
    path = os.path.join(built_copy, "ggt_manifest.json")
    meta = json.loads(Path(path).read_text())
    gone = meta["shards"].pop(0)
    os.remove(os.path.join(built_copy, gone["path"]))
    meta["totals"]["pairs"] -= gone["num_rows"]
    Path(path).write_text(json.dumps(meta))
    faults = "\n".join(verify(built_copy).faults)
    assert "counts differ from what its shards add up to" in faults
    assert "num_examples" in faults


@pytest.mark.parametrize("content,match", [("[]", "not a ggt build manifest"), ("null", "not a ggt build manifest"),
                                           ('{"format": "ggt-100k/build-manifest"}', "'shards' missing")])
def test_damaged_manifest_is_a_fault_not_a_crash(built_copy, content, match):
    Path(os.path.join(built_copy, "ggt_manifest.json")).write_text(content)
    faults = verify(built_copy).faults
    assert len(faults) == 1 and match in faults[0]


@pytest.mark.parametrize("edit,match", [
    (lambda m: m["totals"].pop("pairs"), r"'totals' lacks or mistypes \['pairs'\]"),
    (lambda m: m.update(format_version="1"), r"'format_version' is '1', expected an integer"),
    (lambda m: m["release"].pop("pretty_name"), r"'release' lacks or mistypes \['pretty_name'\]"),
    (lambda m: m.update(built_with=None), r"'built_with' lacks or mistypes \['ggt-100k'\]")])
@pytest.mark.slow
def test_manifest_fields_that_are_missing_or_mistyped_are_named(built_copy, edit, match, ggt_in_process):
    path = os.path.join(built_copy, "ggt_manifest.json")
    meta = json.loads(Path(path).read_text())
    edit(meta)
    Path(path).write_text(json.dumps(meta))
    faults = verify(built_copy).faults
    assert len(faults) == 1 and faults[0].startswith(path) and re.search(match, faults[0])
    run = ggt_in_process("verify", built_copy, "-q")
    assert run.returncode == 1 and "unexpected" not in run.stdout + run.stderr
    assert re.search(match, run.stdout)


@pytest.mark.slow
def test_files_beside_the_dataset_are_warnings_and_secrets_say_so(built_copy, ggt_in_process):
    for rel in ("data/rain/.DS_Store", ".env", "notes.txt", "secrets.txt"):
        Path(os.path.join(built_copy, rel)).write_bytes(b"x")
    os.symlink("/etc/hostname", os.path.join(built_copy, "linked"))
    report = verify(built_copy)
    assert report.ok  # none of them is published, so the build stays publishable
    warned = {w.split(": ", 1)[0][len(built_copy) + 1:]: w for w in report.warnings}
    assert set(warned) == {"data/rain/.DS_Store", ".env", "notes.txt", "secrets.txt", "linked"}
    assert "LOOKS LIKE A SECRET" in warned[".env"] and "LOOKS LIKE A SECRET" in warned["secrets.txt"]
    assert "a symlink" in warned["linked"] and "not part of the dataset" in warned["notes.txt"]
    run = ggt_in_process("verify", built_copy, "-q")
    assert run.returncode == 0 and run.stdout.count("warning: ") == 5, run.stdout
