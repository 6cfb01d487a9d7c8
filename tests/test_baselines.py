"""Baselines: identity is the LQ byte for byte; the classical restorer keeps size and helps where it should."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ggt_dataset.eval.baselines import run_baseline
from ggt_dataset.eval.predictions import open_predictions
from ggt_dataset.eval.references import open_references

from ggt_dataset.restore import dehaze, noise_sigma, restore


def test_identity_is_the_lq_bytes(eval_set, identity_preds):
    refs = open_references(eval_set)
    names = open_predictions(identity_preds).names
    for pair_id, lq in refs.iter_lq(set(refs.ids)):
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
