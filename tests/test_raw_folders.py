import os

import pytest
from conftest import image_bytes, make_tree, write

from ggt_dataset.errors import LayoutError
from ggt_dataset.release import scan


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
