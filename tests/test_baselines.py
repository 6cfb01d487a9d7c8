"""Baselines: identity is the LQ byte for byte; the classical restorer keeps size and helps where it should."""

from __future__ import annotations

import glob
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from ggt_dataset.eval.baselines import run_baseline
from ggt_dataset.eval.predictions import open_predictions
from ggt_dataset.eval.references import open_references

from ggt_dataset.cli.main import main
from ggt_dataset.restore import dehaze, noise_sigma, restore


def test_identity_is_the_lq_bytes(eval_set, identity_preds):
    refs = open_references(eval_set)
    names = open_predictions(identity_preds).names
    lqs = dict(refs.iter_lq(set(refs.ids)))
    assert len(lqs) == len(names) == 18     # an empty iterator compares nothing
    for pair_id, lq in lqs.items():
        assert Path(names[pair_id]).read_bytes() == lq


def test_classical_writes_one_png_per_pair(eval_set, tmp_path):
    n = run_baseline("classical", eval_set, str(tmp_path / "c"))
    names = open_predictions(str(tmp_path / "c")).names
    assert n == 18 and len(names) == 18 and all(p.endswith(".png") for p in names.values())


def test_restorer_steps_respond_to_the_image():
    from skimage import data

    rng = np.random.default_rng(0)
    clean = data.astronaut()[100:228, 100:228]
    noisy = np.clip(clean + rng.normal(0, 15, clean.shape), 0, 255).astype(np.uint8)
    assert noise_sigma(noisy[:, :, 0]) > 8 > noise_sigma(clean[:, :, 0])
    out, steps = restore(noisy)
    assert out.shape == noisy.shape and steps[0].startswith("denoise")
    err = lambda a: np.abs(a.astype(int) - clean.astype(int)).mean()
    assert err(out) < err(noisy)
    assert any(s.startswith("gamma") for s in restore((clean // 6).astype(np.uint8))[1])
    hazy = (clean * 0.35 + 160).astype(np.uint8)
    assert "dehaze" in restore(hazy)[1] and dehaze(hazy).std() > hazy.std()


def _with_test_id(built: str, dst: Path, pair_id: str, *, via_datasets: bool) -> str:
    """A copy of ``built`` whose first test id is ``pair_id``, as a hostile Hub dataset could have.

    Without ggt_manifest.json the copy is read through ``datasets``, as a Hub id is."""
    shutil.copytree(built, dst, ignore=shutil.ignore_patterns("ggt_manifest.json") if via_datasets else None)
    shard = min(dst.glob("data/*/test-*.parquet"))
    table = pq.read_table(shard)
    ids = table.column("id").to_pylist()
    ids[0] = pair_id
    pq.write_table(table.set_column(table.schema.get_field_index("id"), "id", pa.array(ids)), shard)
    return str(dst)


@pytest.mark.parametrize("via_datasets", [False, True])
@pytest.mark.parametrize("pair_id", ["../../escape", "/tmp/ggt-escape-test", "rain/x\x1b[2J"])
def test_baseline_refuses_an_id_that_would_write_outside_out(eval_set, tmp_path, capsys, pair_id, via_datasets):
    # A name per case: datasets' cache would otherwise hand a later case an earlier case's table.
    ref = _with_test_id(eval_set, tmp_path / f"ref{len(pair_id)}", pair_id, via_datasets=via_datasets)
    out = tmp_path / "a" / "b" / "out"
    rc = main(["baseline", "identity", ref, "--out", str(out)])
    text = "".join(capsys.readouterr())
    assert rc != 0 and "Traceback" not in text
    assert f"id {pair_id!r}" in text and "\x1b" not in text
    assert not list(tmp_path.rglob("escape*")) and not glob.glob("/tmp/ggt-escape-test*")
    assert not out.exists()
