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


@pytest.mark.slow
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


@pytest.mark.slow
def test_evaluate_module_rejects_unequal_lists():
    import evaluate

    metric = evaluate.load(EVAL_DIR)
    img = Image.fromarray(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError):
        metric.compute(predictions=[img, img], references=[img], metrics=["psnr"], device="cpu")


@pytest.mark.slow
def test_evaluate_module_refuses_an_empty_metric_list():
    """metrics=[] used to mean every metric (learned ones included); None is the way to say all."""
    import evaluate

    from ggt_dataset.errors import GGTError

    metric = evaluate.load(EVAL_DIR)
    img = Image.fromarray(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(GGTError, match="no metrics named"):
        metric.compute(predictions=[img], references=[img], metrics=[], device="cpu")


@pytest.mark.slow
def test_evaluate_module_names_its_own_allow_partial():
    """A size mismatch past the protocol's limit: the message names the module's argument,
    not the CLI's --allow-partial, and that argument scores the pairs that fit."""
    import evaluate

    metric = evaluate.load(EVAL_DIR)
    rng = np.random.default_rng(0)
    good = Image.fromarray((rng.random((48, 48, 3)) * 255).astype(np.uint8))
    small = Image.fromarray((rng.random((8, 8, 3)) * 255).astype(np.uint8))
    with pytest.raises(Exception, match="pass allow_partial=True") as e:
        metric.compute(predictions=[good, small], references=[good, good], metrics=["psnr"], device="cpu")
    assert "--allow-partial" not in str(e.value)
    got = metric.compute(predictions=[good, small], references=[good, good], metrics=["psnr"],
                         device="cpu", allow_partial=True)
    assert got["nonfinite"]["psnr"] == 1 and got["psnr"] is None        # the one scored pair is exact
    assert len(got["failed"]) == 1 and "predictions[1]" in got["failed"][0]


def test_cli_refuses_an_empty_metrics_option(eval_set, identity_preds, tmp_path, capsys):
    """`--metrics ,` (say, from an empty shell variable) scored every metric; now it is refused."""
    from ggt_dataset.cli.main import main

    assert main(["score", identity_preds, "--reference", eval_set, "--out", str(tmp_path / "r"),
                 "--metrics", ",", "-q"]) == 1
    assert "no metrics named" in capsys.readouterr().err and not (tmp_path / "r").exists()
