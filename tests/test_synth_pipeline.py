"""ggt synth end to end with the real classical backend: LQ folder -> OUT_RAW -> ggt build -> ggt verify."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import image_bytes, write

from ggt_dataset.cli.main import main
from ggt_dataset.errors import GGTError
from ggt_dataset.synth.engine import SynthConfig, synthesize
from ggt_dataset.synth.journal import Journal
from ggt_dataset.synth.qc import QCConfig, Review, Validity


@pytest.fixture(scope="module")
def lq_dir(sample_raw, tmp_path_factory):
    """The sample pack's train LQ photos, in category folders (12 photos of 64 px)."""
    out = tmp_path_factory.mktemp("lq") / "lq"
    shutil.copytree(os.path.join(sample_raw, "train", "LQ"), out)
    return str(out)


@pytest.fixture(scope="module")
def synthesized(lq_dir, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("synth") / "raw")
    assert main(["synth", lq_dir, out, "-q"]) == 0
    return out


def _manifest(out):
    return [json.loads(line) for line in Path(out, "metadata.jsonl").read_text().splitlines()]


def test_classical_end_to_end_builds_and_verifies(synthesized, tmp_path, capsys):
    rows = _manifest(synthesized)
    assert rows, "the classical baseline should pass QC on some sample photos"
    for r in rows:
        assert "baseline, not a foundation model" in r["generator"]
        assert "Keep everything else exactly as it is" in r["prompt"]
        assert {"qc_validity_std", "qc_fidelity_structure", "qc_quality_gain"} <= set(r)
    report = json.loads(Path(os.path.join(synthesized, "synth-report.json")).read_text())
    assert report["released"] == len(rows) and report["calls"]["edit"] == {"ok": 12}
    assert sum(report["pairs"].values()) == 12
    built = str(tmp_path / "built")
    assert main(["build", synthesized, built, "-q"]) == 0
    assert main(["verify", built, "--full"]) == 0
    from ggt_dataset import manifest

    assert manifest.read(built)["totals"]["pairs"] == len(rows)


def test_rerun_sends_nothing_and_keeps_outputs(synthesized, lq_dir):
    before = Path(os.path.join(synthesized, "metadata.jsonl")).read_text()
    report = synthesize(lq_dir, synthesized, SynthConfig())
    assert report["calls"]["edit"] == {"ok": 12}          # no new call
    assert Path(os.path.join(synthesized, "metadata.jsonl")).read_text() == before


def test_a_rerun_leaves_no_temporary_files_in_the_release(synthesized, lq_dir):
    """Files linked by an earlier run are kept as they are: rename() onto the same file would leave its tmp."""
    synthesize(lq_dir, synthesized, SynthConfig())
    assert [p.name for p in Path(synthesized).rglob("*") if ".tmp-" in p.name] == []


def _sha(path) -> str:
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_an_edited_or_replaced_lq_is_synthesised_again_and_the_release_keeps_its_own_copy(tmp_path):
    """The release's LQ is a copy, not a link to LQ_DIR; a changed photo gets a new target, not the old one's."""
    from ggt_dataset.synth.backends.classical import restore_bytes

    lq = tmp_path / "lq"
    for i in range(3):
        write(str(lq / "rain" / f"{i}.png"), image_bytes(i, size=(48, 40)))
    out, cfg = str(tmp_path / "raw"), SynthConfig(qc=QCConfig((("validity", Validity()), ("review", Review("none")))))
    synthesize(str(lq), out, cfg)
    released = Path(out, "train", "LQ", "rain", "0.png")
    old = released.read_bytes()
    assert not released.samefile(lq / "rain" / "0.png")
    new = image_bytes(7, size=(48, 40))
    with open(lq / "rain" / "0.png", "r+b") as f:           # edited in place: same inode
        f.write(new)
        f.truncate()
    assert released.read_bytes() == old                     # the release did not change with it
    write(str(tmp_path / "other.png"), image_bytes(8, size=(48, 40)))
    os.replace(tmp_path / "other.png", lq / "rain" / "1.png")    # replaced: a new file under the old name
    report = synthesize(str(lq), out, cfg)
    assert report["changed_inputs"] == ["rain/0.png", "rain/1.png"] and report["released"] == 3
    assert report["calls"]["edit"] == {"ok": 5}             # the two changed photos, once more each
    j = Journal(os.path.join(out, ".ggt-synth", "journal.sqlite"))
    for name in ("0", "1"):
        row = j.pair(f"rain/{name}.png")
        assert _sha(Path(out, "train", "LQ", "rain", f"{name}.png")) == row["lq_sha256"] == _sha(lq / "rain" / f"{name}.png")
        gt = Path(out, "train", "GT", "rain", f"{name}.png").read_bytes()
        assert gt == restore_bytes((lq / "rain" / f"{name}.png").read_bytes(), f"rain/{name}.png")[0]
    report = synthesize(str(lq), out, cfg)                  # unchanged now: nothing is sent again
    assert report["changed_inputs"] == [] and report["calls"]["edit"] == {"ok": 5}
    built = str(tmp_path / "built")
    assert main(["build", out, built, "-q"]) == 0 and main(["verify", built, "--full"]) == 0


def test_review_decisions_are_applied_on_the_next_run(lq_dir, tmp_path):
    out = str(tmp_path / "raw")
    cfg = SynthConfig(qc=QCConfig().with_review("all"))
    report = synthesize(lq_dir, out, cfg)
    assert report["released"] == 0 and report["review_queue"] > 0
    path = os.path.join(out, "review.csv")
    rows = list(csv.DictReader(Path(path).read_text().splitlines()))
    rows[0]["decision"] = "accept"
    rows[1]["decision"] = "reject"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    report = synthesize(lq_dir, out, cfg)
    assert report["review_applied"] == {"accepted": 1, "rejected": 1}
    assert [r["id"] for r in _manifest(out)] == [rows[0]["id"]]
    assert report["review_queue"] == len(rows) - 2
    rows[2]["decision"] = "maybe"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows[2:3])
    with pytest.raises(GGTError, match="review.csv:2: decision 'maybe'"):
        synthesize(lq_dir, out, cfg)


def test_rejected_photos_are_listed_with_their_reasons_and_nothing_says_package_it(tmp_path, capsys):
    lq = tmp_path / "lq"
    for i in range(3):
        write(str(lq / "rain" / f"{i}.png"), image_bytes(i, size=(48, 40)))
    qc = tmp_path / "strict.yaml"
    qc.write_text("stages:\n  - validity: {min_std: 1000}\n  - review\n")
    out = tmp_path / "raw"
    assert main(["synth", str(lq), str(out), "-q", "--qc", str(qc), "--review", "none"]) == 0
    printed = capsys.readouterr().out
    assert f"3 photo(s) left out ({out}/rejections.csv):" in printed
    lines = printed.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split() == ["id", "category", "verdict", "reason"])
    assert [line.split()[:3] for line in lines[header + 1: header + 4]] == [
        ["rain/0", "rain", "rejected"], ["rain/1", "rain", "rejected"], ["rain/2", "rain", "rejected"]]
    assert "validity" in lines[header + 1] and "package it" not in printed
    assert "nothing to package yet: no pair is accepted" in printed
    rows = list(csv.DictReader((out / "rejections.csv").read_text().splitlines()))
    assert [(r["id"], r["verdict"]) for r in rows] == [("rain/0", "rejected"), ("rain/1", "rejected"),
                                                       ("rain/2", "rejected")]
    assert all(r["reason"].startswith("validity") and r["lq_file"].endswith(".png") for r in rows)


def test_review_all_on_a_rerun_keeps_accepted_pairs_until_a_person_rejects_one(tmp_path):
    """--review all after an accepting run: the pairs go to review.csv but stay in the release."""
    from PIL import Image

    lq = tmp_path / "lq"
    for i in range(3):
        write(str(lq / "rain" / f"{i}.png"), image_bytes(i, size=(48, 40)))
    out = str(tmp_path / "raw")
    first = synthesize(str(lq), out, SynthConfig(qc=QCConfig((("validity", Validity()), ("review", Review("none"))))))
    assert first["released"] == 3
    review_all = SynthConfig(qc=QCConfig((("validity", Validity()), ("review", Review("all")))))
    report = synthesize(str(lq), out, review_all)
    assert report["released"] == 3 and len(_manifest(out)) == 3 and report["review_queue"] == 3
    rows = list(csv.DictReader(Path(out, "review.csv").read_text().splitlines()))
    for r in rows:                          # candidates a viewer opens: named by id, with an extension
        assert r["hq_candidate"] == f"review/train/{r['id']}.png"
        with Image.open(Path(out, r["hq_candidate"])) as im:
            assert im.size == (48, 40)
    rows[0]["decision"] = "reject"
    with open(Path(out, "review.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    report = synthesize(str(lq), out, review_all)
    assert report["review_applied"] == {"accepted": 0, "rejected": 1} and report["released"] == 2
    assert [r["id"] for r in _manifest(out)] == ["rain/1", "rain/2"] and report["review_queue"] == 2
    assert not Path(out, "review", "train", "rain", "0.png").exists()     # decided: no longer a candidate


@pytest.mark.slow
def test_split_auto_reads_lq_dirs_own_path(tmp_path, capsys):
    """The demo's `ggt synth sample-raw/test/LQ ...` wrote test photos into the train split."""
    lq = tmp_path / "sample-raw" / "test" / "LQ"
    write(str(lq / "rain" / "0.png"), image_bytes(0, size=(48, 40)))
    args = ["-q", "--review", "none", "--qc", str(tmp_path / "qc.yaml")]
    (tmp_path / "qc.yaml").write_text("stages: [validity]\n")
    assert main(["synth", str(lq), str(tmp_path / "auto"), *args]) == 0
    assert [(r["split"], r["lq_file_name"]) for r in _manifest(str(tmp_path / "auto"))] == [("test", "test/LQ/rain/0.png")]
    assert main(["synth", str(lq), str(tmp_path / "train"), "--split", "train", *args]) == 0
    assert [r["split"] for r in _manifest(str(tmp_path / "train"))] == ["train"]
    assert main(["synth", str(lq), str(tmp_path / "bad"), "--split", "val", *args]) == 1
    assert "--split 'val' is not one of ['train', 'test'] or 'auto'" in capsys.readouterr().err
    from ggt_dataset.synth.inputs import split_of

    assert split_of(str(tmp_path / "sample-raw" / "Test")) == "test"
    assert split_of(str(tmp_path / "test" / "photos")) == "train"       # only LQ_DIR and role/split folders


def test_changed_qc_reruns_qc_without_new_calls(lq_dir, tmp_path):
    out = str(tmp_path / "raw")
    synthesize(lq_dir, out, SynthConfig(qc=QCConfig((("validity", Validity()),))))
    assert len(_manifest(out)) == 12
    report = synthesize(lq_dir, out, SynthConfig(qc=QCConfig((("validity", Validity(min_std=1000.0)),
                                                              ("review", Review("none"))))))
    assert report["reopened_for_qc"] == 12 and report["calls"]["edit"] == {"ok": 12}
    assert report["released"] == 0 and report["pairs"] == {"rejected": 12}


def test_other_settings_into_same_out_are_refused(synthesized, lq_dir):
    with pytest.raises(GGTError, match="other settings"):
        synthesize(lq_dir, synthesized, SynthConfig(prompter="fixed"))


def test_flat_folder_categories_from_option_or_analyser(tmp_path):
    import numpy as np
    from PIL import Image

    flat = tmp_path / "flat"
    write(str(flat / "noise.png"), image_bytes(1, size=(48, 40)))
    dark = (np.random.default_rng(0).random((40, 48, 3)) * 40).astype(np.uint8)
    Image.fromarray(dark).save(flat / "night.png")
    write(str(flat / "rain" / "r1.png"), image_bytes(2, size=(48, 40)))
    fast = SynthConfig(qc=QCConfig((("validity", Validity()),)))
    synthesize(str(flat), str(tmp_path / "a"), fast)
    j = Journal(str(tmp_path / "a" / ".ggt-synth" / "journal.sqlite"))
    got = {r["key"]: (r["id"], r["category_from"]) for r in j.rows(("accepted", "rejected", "review"))}
    assert got["night.png"] == ("low_light/night", "analyser")
    assert got["rain/r1.png"] == ("rain/r1", "folder")
    from dataclasses import replace

    synthesize(str(flat), str(tmp_path / "b"), replace(fast, category="snow"))
    ids = sorted(r["id"] for r in _manifest(str(tmp_path / "b")))
    assert ids == ["rain/r1", "snow/night", "snow/noise"]


def test_bad_input_is_named_and_nothing_is_written(tmp_path, capsys):
    lq = tmp_path / "lq"
    write(str(lq / "ok.png"), image_bytes(1))
    write(str(lq / "broken.png"), image_bytes(2)[:60])
    out = tmp_path / "out"
    assert main(["synth", str(lq), str(out), "-q", "--category", "rain"]) == 1
    err = capsys.readouterr().err
    assert "broken.png" in err and "Traceback" not in err and "--skip-bad" in err
    assert not out.exists()
    assert main(["synth", str(lq), str(out), "-q", "--category", "rain", "--skip-bad",
                 "--review", "none"]) == 0
    report = json.loads(Path(out / "synth-report.json").read_text())
    assert report["skipped_inputs"][0]["path"].endswith("broken.png")


@pytest.mark.parametrize("name, why", [("a\nb.png", "contains a control character"),
                                       ("a\\b.png", "contains a backslash")])
def test_a_file_name_that_makes_an_unsafe_pair_id_is_bad_input(tmp_path, capsys, name, why):
    lq = tmp_path / "lq"
    write(str(lq / "rain" / "ok.png"), image_bytes(1, size=(48, 40)))
    write(str(lq / "rain" / name), image_bytes(2, size=(48, 40)))
    out = tmp_path / "out"
    assert main(["synth", str(lq), str(out), "-q", "--review", "none"]) == 1
    err = capsys.readouterr().err
    assert "its pair: id 'rain/a" in err and why in err and "Traceback" not in err
    assert not out.exists()
    assert main(["synth", str(lq), str(out), "-q", "--review", "none", "--skip-bad"]) == 0
    assert [r["id"] for r in _manifest(str(out))] == ["rain/ok"]


def test_a_header_promising_more_pixels_than_the_data_holds_is_bad_input_at_scan(tmp_path, capsys):
    """A 9000x9000 PNG header over a tiny IDAT passes the header and CRC checks; it is refused at scan,
    once, not failed on every run."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    lq = tmp_path / "lq"
    write(str(lq / "rain" / "ok.png"), image_bytes(1, size=(48, 40)))
    write(str(lq / "rain" / "huge.png"), b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 9000, 9000, 8, 2, 0, 0, 0))
          + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b""))
    out = tmp_path / "out"
    assert main(["synth", str(lq), str(out), "-q", "--review", "none"]) == 1
    err = capsys.readouterr().err
    assert "huge.png: cannot be decoded (OSError: image file is truncated" in err
    assert "Traceback" not in err and not out.exists()
    assert main(["synth", str(lq), str(out), "-q", "--review", "none", "--skip-bad"]) == 0
    assert main(["synth", str(lq), str(out), "-q", "--review", "none", "--skip-bad"]) == 0   # and stays out


def test_duplicate_ids_are_bad_input(tmp_path):
    lq = tmp_path / "lq"
    write(str(lq / "a.png"), image_bytes(1))
    write(str(lq / "a.jpg"), image_bytes(2, fmt="JPEG"))
    with pytest.raises(GGTError, match="same pair id 'rain/a'"):
        synthesize(str(lq), str(tmp_path / "out"), SynthConfig(category="rain"))


def test_compare_ranks_combinations(lq_dir, tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["synth", "compare", lq_dir, "--out", str(out), "--prompters", "fixed,adaptive", "-q"]) == 0
    table = capsys.readouterr().out
    assert "classical-fixed" in table and "classical-adaptive" in table and "piqe" in table
    data = json.loads(Path(out / "compare.json").read_text())
    assert [r["mean_rank"] for r in data["rows"]] == sorted(r["mean_rank"] for r in data["rows"])
    assert all(r["pairs"] == 12 for r in data["rows"])


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession:DeprecationWarning")
def test_compare_ranks_three_backends_through_their_real_clients(lq_dir, tmp_path, monkeypatch, capsys):
    """classical, and the real gemini and openai clients against the local fake API, on one probe set."""
    pytest.importorskip("google.genai")
    pytest.importorskip("openai")
    from ggt_dataset.synth.fake_server import FakeAPIServer

    monkeypatch.setenv("GEMINI_API_KEY", "test-key")
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    out = tmp_path / "cmp"
    with FakeAPIServer() as srv:
        assert main(["synth", "compare", lq_dir, "--out", str(out), "--backends", "classical,gemini,openai",
                     "--prompters", "fixed", "--base-url", srv.base_url, "-q"]) == 0
        sent = srv.counts_by_image()
    ranked = json.loads(Path(out / "compare.json").read_text())["rows"]
    assert [r["mean_rank"] for r in ranked] == sorted(r["mean_rank"] for r in ranked)     # best first
    rows = {r["name"]: r for r in ranked}
    assert set(rows) == {"classical-fixed", "gemini-fixed", "openai-fixed"}
    assert rows["classical-fixed"]["spent"] == 0 and rows["gemini-fixed"]["spent"] > 0 < rows["openai-fixed"]["spent"]
    assert all(r["pairs"] == 12 for r in rows.values())
    assert len(sent) == 12 and set(sent.values()) == {2}          # each photo once per provider
    assert "openai-fixed" in capsys.readouterr().out
