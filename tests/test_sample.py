import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ggt_dataset.degrade import DEGRADATIONS
from ggt_dataset.errors import GGTError
from ggt_dataset.sample import SOURCES, write_sample
from ggt_dataset.schema import CATEGORIES


def tree_digest(root):
    h = hashlib.sha256()
    for dirpath, dirs, files in sorted(os.walk(root)):
        dirs.sort()
        for fn in sorted(files):
            p = os.path.join(dirpath, fn)
            h.update(os.path.relpath(p, root).encode() + Path(p).read_bytes())
    return h.hexdigest()


def test_one_degradation_per_category():
    assert set(DEGRADATIONS) == set(CATEGORIES)


@pytest.mark.parametrize("category", CATEGORIES)
def test_degradations_degrade(category):
    import skimage.data

    clean = np.asarray(Image.fromarray(skimage.data.astronaut()).resize((96, 96)))
    out = DEGRADATIONS[category](clean, np.random.default_rng(0))
    assert out.shape == clean.shape and out.dtype == np.uint8
    psnr = 10 * np.log10(255**2 / np.mean((out.astype(float) - clean) ** 2))
    assert 5 < psnr < 32, psnr  # visibly degraded, still the same scene
    again = DEGRADATIONS[category](clean, np.random.default_rng(0))
    assert np.array_equal(out, again)


def test_sample_pack_layout_licences_and_determinism(sample_raw, tmp_path):
    rows = [json.loads(x) for x in Path(os.path.join(sample_raw, "metadata.jsonl")).read_text().splitlines()]
    assert len(rows) == 18 and {r["category"] for r in rows} == set(CATEGORIES)
    assert {r["split"] for r in rows} == {"train", "test"}
    for r in rows:
        assert os.path.isfile(os.path.join(sample_raw, r["lq_file_name"]))
        assert r["license"] in {s.license for s in SOURCES} and r["qc_lq_psnr"] > 0
    readme = Path(os.path.join(sample_raw, "README.md")).read_text()
    assert all(s.name in readme and s.license in readme for s in SOURCES)
    lq = Image.open(os.path.join(sample_raw, "train/LQ/mixed/astronaut_000.jpg"))
    assert lq.format == "JPEG" and lq.size == (64, 64)
    again = str(tmp_path / "again")
    write_sample(again, train_per_category=2, test_per_category=1, size=64)
    assert tree_digest(again) == tree_digest(sample_raw)


def test_sample_refuses_to_overwrite_other_folders(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("mine")
    with pytest.raises(GGTError, match="not a sample pack"):
        write_sample(str(tmp_path / "x"))
    assert (tmp_path / "x" / "keep.txt").read_text() == "mine"


def test_sample_does_not_replace_a_release_that_only_looks_like_one(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "ggt-release.yaml").write_text("pretty_name: mine\n")
    with pytest.raises(GGTError):
        write_sample(str(tmp_path / "x"))
    assert (tmp_path / "x" / "ggt-release.yaml").exists()
