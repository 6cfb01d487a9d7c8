"""No-reference scores, the ground-truth cache, weights, and learned architectures without weights."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import NR_PROTOCOL
from ggt_dataset.eval import api, scoring, weights
from ggt_dataset.eval.metrics import Scorer
from ggt_dataset.eval.predictions import open_predictions
from ggt_dataset.eval.protocol import load
from ggt_dataset.eval.references import open_references

from ggt_dataset.cli.main import main


@pytest.fixture
def nr_protocol(tmp_path):
    f = tmp_path / "nr.yaml"
    f.write_text(NR_PROTOCOL)
    return str(f)


@pytest.mark.slow
def test_reference_scores_are_cached_and_keyed(eval_set, built, identity_preds, nr_protocol, tmp_path):
    cache = str(tmp_path / "cache")
    first = api.score(identity_preds, eval_set, protocol=nr_protocol, device="cpu", cache_dir=cache,
                      out=str(tmp_path / "r1"))
    assert {m: v["cache"] for m, v in first["reference"].items()} == {"piqe": "miss", "entropy": "miss"}
    second = api.score(identity_preds, eval_set, protocol=nr_protocol, device="cpu", cache_dir=cache)
    assert {m: v["cache"] for m, v in second["reference"].items()} == {"piqe": "hit", "entropy": "hit"}
    for m in ("piqe", "entropy"):
        assert first["reference"][m]["overall"] == second["reference"][m]["overall"]
    # The cached values are what scoring the ground truth directly gives.
    proto = load(nr_protocol)
    refs = open_references(eval_set)
    scorer = Scorer(proto.metric("piqe"), "cpu")
    import torch
    from ggt_dataset.eval.decode import decode

    gt = {i: decode(b, i) for i, b in refs.iter_hq(set(refs.ids[:3]))}
    # Each image on its own, as a 1xCxHxW batch scaled to [0, 1]: the scorer's public input.
    as_batch = lambda d: torch.from_numpy(d.pixels[None]).to(scorer.dtype).div_(d.scale).permute(0, 3, 1, 2)
    direct = {i: float(scorer(as_batch(d))[0]) for i, d in gt.items()}
    cached = json.loads(Path(next((tmp_path / "cache" / "reference").glob("piqe-*.json"))).read_text())["scores"]
    for i, v in direct.items():
        assert cached[i] == pytest.approx(v, abs=1e-9)
    # Another test set, or other options, is a different key.
    other = open_references(built)
    assert scoring.cache.reference_key(scorer, other) != scoring.cache.reference_key(scorer, refs)
    from dataclasses import replace

    changed = Scorer(replace(proto.metric("piqe"), dtype="float64"), "cpu")
    assert scoring.cache.reference_key(changed, refs) != scoring.cache.reference_key(scorer, refs)
    md = (tmp_path / "r1" / "report.md").read_text()
    assert "*ground truth*" in md and "piqe ↓" in md


@pytest.mark.slow
def test_unweighted_musiq_plumbing_batches_like_one_at_a_time():
    """pyiqa's real MUSIQ architecture, built without pretrained weights: shapes, device, batching."""
    import torch

    spec = load("ggt").metric("musiq")
    scorer = Scorer(spec, "cpu", unweighted=True)
    assert scorer.unweighted
    torch.manual_seed(0)
    x = torch.rand(3, 3, 64, 80)
    batch = scorer(x)
    single = np.concatenate([scorer(x[i:i + 1]) for i in range(3)])
    assert batch.shape == (3,) and batch.dtype == np.float64
    np.testing.assert_allclose(batch, single, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_unweighted_metric_runs_through_engine_but_no_report(small_eval_set, small_preds, tmp_path):
    from ggt_dataset.eval import report

    proto = load("ggt").subset(["psnr", "musiq"])
    scorers = [Scorer(proto.metric("psnr"), "cpu"), Scorer(proto.metric("musiq"), "cpu", unweighted=True)]
    res = scoring.run(open_predictions(small_preds[0]), open_references(small_eval_set), proto, scorers,
                     cache_dir=str(tmp_path / "c"), progress=False, batch_size=4)
    assert len(res.rows) == 6 and all(np.isfinite(r["musiq"]) for r in res.rows)
    assert set(res.reference) == {"musiq"} and len(res.reference["musiq"]) == 6
    with pytest.raises(report.ReportError):
        report.write(str(tmp_path / "r"), {"metrics": {}}, res.rows, ["musiq"])


def test_missing_weights_name_the_file_and_where_to_put_it(eval_set, identity_preds, tmp_path, capsys):
    rc = main(["score", identity_preds, "--reference", eval_set, "--out", str(tmp_path / "r"),
               "--metrics", "psnr,lpips,musiq", "--weights-dir", str(tmp_path / "w"), "-q"])
    err = capsys.readouterr().err
    assert rc == 1 and not (tmp_path / "r").exists()
    assert f"{tmp_path}/w/torch/hub/pyiqa/LPIPS_v0.1_alex-df73285e.pth" in err
    assert f"{tmp_path}/w/torch/hub/checkpoints/alexnet-owt-7be5be79.pth" in err
    assert "musiq_koniq_ckpt-e95806b9.pth" in err and "ggt weights fetch ggt" in err


def test_pre_placed_weight_with_wrong_hash_is_refused(tmp_path, capsys):
    weights.use_weights_dir(str(tmp_path / "w"))
    spec = load("ggt").metric("musiq")
    path = weights.expected_path(spec.weights[0])
    import os

    os.makedirs(os.path.dirname(path))
    Path(path).write_bytes(b"not the checkpoint")
    found, problems = weights.resolve(spec)
    assert not found and "does not match the protocol's e95806b9" in problems[0]
    assert main(["weights", "list", "ggt", "--metrics", "musiq,psnr", "--weights-dir", str(tmp_path / "w")]) == 1
    out = capsys.readouterr().out
    assert "psnr       no files needed" in out and "MISSING" in out


def test_pre_placed_timm_snapshot_is_found(tmp_path):
    weights.use_weights_dir(str(tmp_path / "w"))
    spec = load("ggt").metric("topiq_nr")
    timm = spec.weights[1]
    snap = tmp_path / "w" / "huggingface" / "hub" / "models--timm--resnet50.a1_in1k" / "snapshots" / "abc"
    snap.mkdir(parents=True)
    (snap / "model.safetensors").write_bytes(b"x")
    assert weights.locate(timm) == str(snap / "model.safetensors")


def test_weights_fetch_offline_fails_cleanly(tmp_path, capsys):
    rc = main(["weights", "fetch", "ggt", "--metrics", "niqe", "--weights-dir", str(tmp_path / "w")])
    err = capsys.readouterr().err
    assert rc == 1 and "niqe" in err and "Traceback" not in err


def test_wrong_pyiqa_range_is_an_error(tmp_path, eval_set, identity_preds, capsys):
    f = tmp_path / "old.yaml"
    f.write_text(NR_PROTOCOL.replace('">=0.1.16,<0.1.17"', '"<0.1.12"'))
    rc = main(["score", identity_preds, "--reference", eval_set, "--out", str(tmp_path / "r"),
               "--protocol", str(f), "-q"])
    assert rc == 1 and "defined for pyiqa <0.1.12" in capsys.readouterr().err


def test_cuda_device_refused_without_cuda(eval_set, identity_preds, tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    rc = main(["score", identity_preds, "--reference", eval_set, "--out", str(tmp_path / "r"),
               "--metrics", "psnr", "--device", "cuda", "-q"])
    assert rc == 1 and "CUDA is not available" in capsys.readouterr().err


def test_streaming_fid_moments_equal_numpys_two_pass_mean_and_covariance():
    """FID's moments are accumulated batch by batch (the Inception plumbing, reference cache and
    distance are tested in test_eval_many.py with the real network)."""
    from ggt_dataset.eval.fid import Moments

    rng = np.random.default_rng(0)
    feats = rng.normal(size=(50, 16))
    m = Moments(16)
    m.update(feats[:20])
    m.update(feats[20:])
    mu, cov = m.stats()
    np.testing.assert_allclose(mu, feats.mean(0), atol=1e-12)
    np.testing.assert_allclose(cov, np.cov(feats, rowvar=False), atol=1e-10)


def test_undefined_fid_is_null_with_its_reason_and_the_report_is_written(eval_set, identity_preds, tmp_path):
    """FID of a one-image set is NaN; summary.json holds finite numbers only (it was a failed write)."""
    from ggt_dataset.eval import report
    from ggt_dataset.eval.fid import FIDScorer, Moments

    one = Moments(4)
    one.update(np.ones((1, 4)))
    assert np.isnan(FIDScorer.distance(one, one))
    proto = load("ggt").subset(["psnr"]).with_optional(["fid"])
    preds, refs = open_predictions(identity_preds), open_references(eval_set)
    result = scoring.run(preds, refs, proto, [Scorer(proto.metric("psnr"), "cpu")], progress=False)
    result.sets["fid"] = {"value": FIDScorer.distance(one, one), "n": 1, "n_reference": 1, "cache": "miss"}
    summary = report.summarize(result, proto, refs=refs, preds=preds, device="cpu", weight_files={},
                               label="one")
    report.write(str(tmp_path / "r"), summary, result.rows)
    back = report.read_summary(str(tmp_path / "r"))
    assert back["sets"]["fid"]["value"] is None and "at least 2 images" in back["sets"]["fid"]["undefined"]
    assert "undefined: nan" in (tmp_path / "r" / "report.md").read_text()


def test_fid_needs_its_inception_file(eval_set, identity_preds, tmp_path, capsys):
    rc = main(["score", identity_preds, "--reference", eval_set, "--out", str(tmp_path / "r"),
               "--metrics", "psnr", "--fid", "--weights-dir", str(tmp_path / "w"), "-q"])
    assert rc == 1 and "pt_inception-2015-12-05-6726825d.pth" in capsys.readouterr().err


@pytest.mark.slow
def test_metrics_available_with_nothing_available_is_an_error(eval_set, identity_preds, tmp_path, capsys):
    f = tmp_path / "learned.yaml"
    ggt = load("ggt")
    # include merges metrics by name: every inherited one is dropped (null), musiq alone stays
    dropped = "".join(f"  {m.name}: null\n" for m in (*ggt.metrics, *ggt.optional) if m.name != "musiq")
    f.write_text("include: " + ggt.source + "\nname: learned\nmetadata: {version: 1}\n"
                 "metrics:\n" + dropped + "  musiq: {pyiqa: musiq, kind: NR, better: higher, weights: "
                 "[{store: pyiqa, file: musiq_koniq_ckpt-e95806b9.pth}]}\n")
    rc = main(["score", identity_preds, "--reference", eval_set, "--out", str(tmp_path / "r"),
               "--protocol", str(f), "--metrics", "available", "-q"])
    err = capsys.readouterr().err
    assert rc == 1 and "no metric of protocol 'learned'" in err and f"ggt weights list {f}" in err
