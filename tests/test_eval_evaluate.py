"""The `evaluate` module: loaded offline from eval/, the same numbers as `ggt score`."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from ggt_dataset.eval import api
from ggt_dataset.eval.predictions import open_predictions
from ggt_dataset.eval.references import open_references
from PIL import Image

EVAL_DIR = os.path.join(os.path.dirname(__file__), "..", "eval", "ggt_iqa")


def test_evaluate_module_matches_ggt_score(eval_set, identity_preds):
    import evaluate

    metric = evaluate.load(EVAL_DIR)
    refs = open_references(eval_set)
    names = open_predictions(identity_preds).names
    gt = dict(refs.iter_hq(set(refs.ids)))
    preds = [Image.open(names[i]) for i in refs.ids]
    got = metric.compute(predictions=preds, references=[Image.open(io.BytesIO(gt[i])) for i in refs.ids],
                         metrics=["psnr", "ssim"], categories=[refs.categories[i] for i in refs.ids],
                         device="cpu")
    want = api.score(identity_preds, eval_set, metrics=["psnr", "ssim"], device="cpu")
    for m in ("psnr", "ssim"):
        assert got[m] == pytest.approx(want["overall"][m]["mean"], abs=1e-12)
        for cat, vals in got["per_category"].items():
            assert vals[m] == pytest.approx(want["per_category"][cat][m]["mean"], abs=1e-12)
    assert got["protocol"] == "ggt" and got["protocol_sha256"] == want["fingerprint"]["protocol_sha256"]


def test_evaluate_module_rejects_unequal_lists():
    import evaluate

    metric = evaluate.load(EVAL_DIR)
    img = Image.fromarray(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError):
        metric.compute(predictions=[img, img], references=[img], metrics=["psnr"], device="cpu")
