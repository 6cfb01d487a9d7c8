import json
import os
import signal
import subprocess
import sys

import pytest
from conftest import image_bytes, make_tree, write

from ggt_dataset.errors import LayoutError
from ggt_dataset.raw_scan import scan


def ids(release):
    return [(p.split, p.id) for p in release.pairs]


def test_split_role_category_tree(tree):
    r = scan(tree)
    assert r.layout == "folders" and not r.problems
    assert len(r.pairs) == 15
    assert {p.category for p in r.pairs} == {"rain", "low_light", "mixed"}
    p = next(p for p in r.pairs if p.id == "low_light/001" and p.split == "test")
    assert p.lq_path == "test/LQ/Low-Light/001.jpg" and p.hq_path == "test/GT/Low-Light/001.png"
    # sorted: train before test, categories in paper order, then id
    assert ids(r)[:4] == [("train", "mixed/000"), ("train", "mixed/001"), ("train", "mixed/002"),
                          ("train", "rain/000")]


@pytest.mark.parametrize("pattern", ["{split}/{role}/{cat}", "{cat}/{split}/{role}", "{role}/{cat}/{split}",
                                     "GGT-100K/{split}/{role}/{cat}", "{split}/{cat}/{role}"])
def test_levels_in_any_order_and_case(tmp_path, pattern):
    for role, ext in (("lq", ".jpg"), ("Gt", ".png")):
        for split in ("Train", "TEST"):
            d = pattern.format(split=split, role=role, cat="oldphoto")
            write(tmp_path / d / "sub" / f"a{ext}", image_bytes(0, fmt="JPEG" if ext == ".jpg" else "PNG"))
    r = scan(str(tmp_path))
    assert not r.problems
    assert ids(r) == [("train", "old_photo/sub/a"), ("test", "old_photo/sub/a")]


def test_hq_aliases(tmp_path):
    make_tree(tmp_path, [("train", "snow", "x")], lq_dir="input", hq_dir="target")
    assert ids(scan(str(tmp_path))) == [("train", "snow/x")]


def test_unpaired_and_duplicate_files_are_problems_naming_the_file(tmp_path):
    make_tree(tmp_path, [("train", "rain", "a"), ("train", "rain", "b")])
    os.remove(tmp_path / "train/GT/rain/b.png")
    write(tmp_path / "train/GT/rain/c.png", image_bytes(0))
    write(tmp_path / "train/LQ/rain/a.png", image_bytes(1))  # a.jpg and a.png: same stem
    r = scan(str(tmp_path))
    messages = sorted(str(e) for e in r.problems)
    assert any(m.startswith("train/LQ/rain/b.jpg: LQ image has no HQ/GT partner named b.*") for m in messages)
    assert any(m.startswith("train/GT/rain/c.png: HQ/GT image has no LQ partner") for m in messages)
    assert any("train/LQ/rain/a.png: same LQ name as train/LQ/rain/a.jpg" in m for m in messages)


def test_unknown_category_and_split(tmp_path):
    make_tree(tmp_path, [("train", "sunny", "a"), ("val", "rain", "b")])
    r = scan(str(tmp_path))
    msgs = " | ".join(str(e) for e in r.problems)
    assert "train/LQ/sunny/a.jpg: no category folder in its path" in msgs
    assert "val/LQ/rain/b.jpg: split folder 'val' is not one of ['train', 'test']" in msgs
    assert not r.pairs


def test_defaults_for_flat_trees(tmp_path):
    write(tmp_path / "LQ/a.jpg", image_bytes(0, fmt="JPEG"))
    write(tmp_path / "HQ/a.png", image_bytes(1))
    r = scan(str(tmp_path))
    assert "no split folder" in str(r.problems[0])
    r = scan(str(tmp_path), split="test", category="low-light")
    assert ids(r) == [("test", "low_light/a")]
    with pytest.raises(LayoutError, match="--category 'sunny'"):
        scan(str(tmp_path), split="test", category="sunny")


def test_non_images_and_hidden_files_are_ignored_and_listed(tree):
    write(os.path.join(tree, "README.txt"), b"hi")
    write(os.path.join(tree, "train/LQ/rain/notes.txt"), b"hi")
    write(os.path.join(tree, "train/LQ/rain/.DS_Store"), b"x")
    write(os.path.join(tree, "teaser.png"), image_bytes(0))  # an image outside LQ/HQ folders
    r = scan(tree)
    assert not r.problems and len(r.pairs) == 15
    assert r.ignored == ["README.txt", "train/LQ/rain/notes.txt", "teaser.png"]


def test_tree_without_roles_says_what_was_expected(tmp_path):
    write(tmp_path / "photos/a.png", image_bytes(0))
    with pytest.raises(LayoutError) as e:
        scan(str(tmp_path))
    msg = str(e.value)
    assert "found no LQ/HQ image folders" in msg and "<root>/<split>/<LQ|HQ|GT>/<category>" in msg
    assert "photos/" in msg and "1 image files" in msg


def test_missing_root():
    with pytest.raises(LayoutError, match="/nonexistent: no such file"):
        scan("/nonexistent")


def test_symlinked_split_folders_are_followed_and_cycles_cut(tmp_path):
    make_tree(tmp_path / "store", [("test", "rain", "a")])
    make_tree(tmp_path / "raw", [("train", "rain", "b")])
    os.symlink(tmp_path / "store" / "test", tmp_path / "raw" / "test")
    os.symlink(tmp_path / "raw", tmp_path / "raw" / "train" / "loop")
    r = scan(str(tmp_path / "raw"))
    assert ids(r) == [("train", "rain/b"), ("test", "rain/a")]


def test_file_names_that_are_not_utf8(tmp_path):
    make_tree(tmp_path, [("train", "rain", "a")])
    bad = os.path.join(os.fsencode(tmp_path), b"train/LQ/rain/b\xff.jpg")
    with open(bad, "wb") as f:
        f.write(image_bytes(0, fmt="JPEG"))
    r = scan(str(tmp_path))
    assert ids(r) == [("train", "rain/a")] and "not valid UTF-8" in str(r.problems[0])


def test_file_names_that_make_unsafe_ids_are_bad_pairs(tmp_path):
    # A backslash or a control character in a file name would be stored in the id, which
    # later names a file (ggt baseline writes OUT/<id>.png).
    make_tree(tmp_path, [("train", "rain", "a"), ("train", "rain", "b\\..\\..\\x"), ("train", "rain", "c\x1b[2J")])
    r = scan(str(tmp_path))
    assert ids(r) == [("train", "rain/a")]
    msgs = sorted(str(e) for e in r.problems)
    assert len(msgs) == 4 and all("rename the file" in m for m in msgs)
    assert any(m.startswith("train/LQ/rain/b\\..\\..\\x.jpg: its pair id") and "backslash" in m for m in msgs)
    assert any(m.startswith("train/LQ/rain/c\\x1b[2J.jpg: its pair id") and "control character" in m
               for m in msgs)
    assert not any("\x1b" in m for m in msgs)     # escaped in messages, never raw


def test_fifo_named_like_an_image_is_listed_as_ignored_not_read(tmp_path):
    make_tree(tmp_path, [("train", "rain", "a")])
    os.mkfifo(tmp_path / "train/LQ/rain/pipe.jpg")
    os.mkfifo(tmp_path / "train/GT/rain/pipe.png")
    r = scan(str(tmp_path))
    assert ids(r) == [("train", "rain/a")] and not r.problems
    assert r.ignored == ["train/GT/rain/pipe.png", "train/LQ/rain/pipe.jpg"]


@pytest.mark.slow
def test_build_with_a_fifo_in_the_tree_finishes(tmp_path):
    # The bug was a hang, so the CLI runs in a subprocess with a timeout.
    raw, out = tmp_path / "raw", tmp_path / "out"
    make_tree(raw, [("train", "rain", "a"), ("test", "rain", "b")])
    os.remove(raw / "test/LQ/rain/b.jpg")
    os.mkfifo(raw / "test/LQ/rain/b.jpg")      # its GT partner is a real file
    cmd = [sys.executable, "-m", "ggt_dataset.cli.main", "build", str(raw), str(out), "-q"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "test/GT/rain/b.png: HQ/GT image has no LQ partner" in r.stdout + r.stderr
    r = subprocess.run(cmd + ["--skip-bad"], capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0, r.stderr
    manifest = json.loads((out / "ggt_manifest.json").read_text())
    assert "test/LQ/rain/b.jpg" in json.dumps(manifest)


def test_unreadable_folder_is_a_layout_error_naming_it(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root reads every folder")
    make_tree(tmp_path, [("train", "rain", "a")])
    os.chmod(tmp_path / "train/GT", 0)
    try:
        with pytest.raises(LayoutError, match="train/GT: cannot list this folder"):
            scan(str(tmp_path))
    finally:
        os.chmod(tmp_path / "train/GT", 0o755)


def test_synth_scan_of_lq_dir_skips_a_fifo(tmp_path):
    # ggt synth reads LQ_DIR through walk_images too; the alarm turns the old hang into a failure.
    from ggt_dataset.synth.inputs import scan as synth_scan
    from ggt_dataset.synth.journal import Journal

    write(tmp_path / "lq/rain/a.png", image_bytes(0))
    os.mkfifo(tmp_path / "lq/rain/pipe.png")
    journal = Journal(str(tmp_path / "journal.sqlite"))
    old = signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(RuntimeError("scan blocked on a FIFO")))
    signal.alarm(20)
    try:
        assert synth_scan(journal, str(tmp_path / "lq")) == []
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    assert [k for (k,) in journal.db.execute("SELECT key FROM pairs")] == ["rain/a.png"]
    journal.close()
