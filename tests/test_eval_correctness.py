"""The protocols compute what they say: against independent implementations, batch- and order-free."""

from __future__ import annotations

import io

import numpy as np
import pyarrow.parquet as pq
import pytest
from ggt_dataset.eval import api, batcher, batches, scoring
from ggt_dataset.eval.metrics import Scorer
from ggt_dataset.eval.predictions import open_predictions
from ggt_dataset.eval.protocol import load
from ggt_dataset.eval.references import open_references
from iqa_reference import basicsr_psnr, basicsr_ssim, psnr_y, ssim_y
from PIL import Image


def _varied_pairs():
    """Photos with real degradations, noise, flat-ish gradients, odd sizes."""
    from skimage import data

    from ggt_dataset.degrade import DEGRADATIONS

    rng = np.random.default_rng(7)
    pairs = []
    for k, name in enumerate(["astronaut", "coffee", "chelsea", "rocket"]):
        hq = getattr(data, name)()[:97 + 8 * k, :131 - 6 * k, :3]
        cat = sorted(DEGRADATIONS)[k % len(DEGRADATIONS)]
        lq = DEGRADATIONS[cat](hq, np.random.default_rng(k))
        pairs.append((lq, hq))
    noise = rng.integers(0, 256, (45, 67, 3), dtype=np.uint8)
    pairs.append((np.clip(noise.astype(int) + rng.integers(-3, 4, noise.shape), 0, 255).astype(np.uint8), noise))
    grad = np.tile(np.linspace(0, 255, 80)[None, :, None], (40, 1, 3)).astype(np.uint8)
    pairs.append(((grad * 0.9).astype(np.uint8), grad))
    return pairs


def _tensor(a: np.ndarray, dtype):
    import torch

    return torch.from_numpy(a.astype(np.float64) / 255.0).permute(2, 0, 1)[None].to(dtype)


@pytest.mark.parametrize("k", range(6))
def test_psnr_matches_basicsr_y_convention(k):
    lq, hq = _varied_pairs()[k]
    scorer = Scorer(load("ggt").metric("psnr"), "cpu")
    got = scorer(_tensor(lq, scorer.dtype), _tensor(hq, scorer.dtype))[0]
    assert abs(got - psnr_y(lq, hq)) < 1e-4


@pytest.mark.parametrize("k", range(6))
def test_ssim_matches_rounded_y_convention(k):
    lq, hq = _varied_pairs()[k]
    scorer = Scorer(load("ggt").metric("ssim"), "cpu")
    got = scorer(_tensor(lq, scorer.dtype), _tensor(hq, scorer.dtype))[0]
    assert abs(got - ssim_y(lq, hq, rounded=True)) < 1e-4
    # And the choice matters only a little, but measurably: BasicSR's unrounded Y.
    assert abs(got - ssim_y(lq, hq, rounded=False)) < 5e-3


def _decoded_column(built: str, column: str) -> dict[str, np.ndarray]:
    import glob
    import os

    out = {}
    for f in glob.glob(os.path.join(built, "data", "*", "test-*.parquet")):
        t = pq.read_table(f, columns=["id", column]).to_pylist()
        out.update({r["id"]: np.asarray(Image.open(io.BytesIO(r[column]["bytes"])).convert("RGB")) for r in t})
    return out


@pytest.mark.slow
def test_score_end_to_end_equals_independent_values(eval_set, identity_preds, tmp_path):
    summary = api.score(identity_preds, eval_set, out=str(tmp_path / "r"), metrics=["psnr", "ssim"],
                        device="cpu")
    rows = pq.read_table(tmp_path / "r" / "per_image.parquet").to_pylist()
    lq, hq = _decoded_column(eval_set, "lq"), _decoded_column(eval_set, "hq")
    assert len(rows) == 18 == summary["counts"]["scored"]
    for r in rows:
        assert abs(r["psnr"] - psnr_y(lq[r["id"]], hq[r["id"]])) < 1e-4
        assert abs(r["ssim"] - ssim_y(lq[r["id"]], hq[r["id"]])) < 1e-4
    assert abs(summary["overall"]["psnr"]["mean"] - np.mean([r["psnr"] for r in rows])) < 1e-12


@pytest.mark.slow
def test_basicsr_protocol_end_to_end_equals_basicsr_code(eval_set, identity_preds, tmp_path):
    """`ggt score --protocol basicsr`: every pair's PSNR within 1e-6 dB and SSIM within 1e-6 of
    BasicSR's calculate_psnr/calculate_ssim (tests/iqa_reference.py), and report.md says how."""
    from ggt_dataset.cli.main import main

    out = tmp_path / "r"
    assert main(["score", identity_preds, "--reference", eval_set, "--protocol", "basicsr", "--out", str(out),
                 "--metrics", "psnr,ssim", "--device", "cpu", "-q"]) == 0
    rows = pq.read_table(out / "per_image.parquet").to_pylist()
    lq, hq = _decoded_column(eval_set, "lq"), _decoded_column(eval_set, "hq")
    assert len(rows) == 18
    for r in rows:
        assert abs(r["psnr"] - basicsr_psnr(lq[r["id"]], hq[r["id"]])) < 1e-6
        assert abs(r["ssim"] - basicsr_ssim(lq[r["id"]], hq[r["id"]])) < 1e-6
        assert abs(r["ssim"] - ssim_y(lq[r["id"]], hq[r["id"]], rounded=False, clamp_cs=False)) < 1e-6
    md = (out / "report.md").read_text()
    assert "Y of YCbCr (BT.601) not rounded" in md and "No border is cropped" in md and "up to 32 px" in md


def test_ntire_report_states_its_preprocessing(eval_set, identity_preds, tmp_path):
    """ntire's 4 px crop and bicubic resize change numbers: report.md says so, not only summary.json."""
    api.score(identity_preds, eval_set, out=str(tmp_path / "r"), protocol="ntire", metrics=["psnr"], device="cpu")
    md = (tmp_path / "r" / "report.md").read_text()
    assert "A 4 px border is cropped from both images before the full-reference metrics" in md
    assert "resized to it (bicubic, OpenCV INTER_CUBIC)" in md


def test_ntire_crops_border_before_psnr(eval_set, identity_preds):
    summary = api.score(identity_preds, eval_set, protocol="ntire", metrics=["psnr"], device="cpu")
    lq, hq = _decoded_column(eval_set, "lq"), _decoded_column(eval_set, "hq")
    want = np.mean([psnr_y(lq[i], hq[i], border=4) for i in lq])
    assert abs(summary["overall"]["psnr"]["mean"] - want) < 1e-4
    plain = api.score(identity_preds, eval_set, protocol="ggt", metrics=["psnr"], device="cpu")
    assert plain["overall"]["psnr"]["mean"] != summary["overall"]["psnr"]["mean"]


def _run(eval_set, preds_dir, names, **kw):
    proto = load("ggt").subset(names)
    scorers = [Scorer(s, "cpu") for s in proto.metrics]
    return scoring.run(open_predictions(preds_dir), open_references(eval_set), proto, scorers,
                      progress=False, **kw).rows


@pytest.mark.slow
def test_batched_equals_one_at_a_time_and_any_worker_count(eval_set, identity_preds):
    """Batch 1 with one decode thread, batch 16 with 3, and the defaults (a thread per core, batch 8,
    each batch uploaded before the one before it runs): the same numbers, bit for bit."""
    one = _run(eval_set, identity_preds, ["psnr", "ssim"], batch_size=1, workers=1)
    for many in (_run(eval_set, identity_preds, ["psnr", "ssim"], batch_size=16, workers=3),
                 _run(eval_set, identity_preds, ["psnr", "ssim"])):
        assert [r["id"] for r in one] == [r["id"] for r in many]
        for a, b in zip(one, many):
            assert a["psnr"] == b["psnr"] and a["ssim"] == b["ssim"]


@pytest.mark.slow
def test_equals_pyiqa_alone_reading_the_files_itself(eval_set, identity_preds, tmp_path):
    """pyiqa's own way (its file reader, one metric, batch 1) gives the same numbers."""
    import pyiqa

    rows = _run(eval_set, identity_preds, ["psnr", "ssim"])
    gt_dir = tmp_path / "gt"
    import glob

    for f in glob.glob(f"{eval_set}/data/*/test-*.parquet"):
        for r in pq.read_table(f, columns=["id", "hq"]).to_pylist():
            p = gt_dir / (r["id"] + ".png")
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(r["hq"]["bytes"])
    names = open_predictions(identity_preds).names
    for name in ("psnr", "ssim"):
        spec = load("ggt").metric(name)
        m = pyiqa.create_metric(spec.pyiqa, device="cpu", **spec.pyiqa_options())
        for r in rows[:6]:
            alone = float(m(names[r["id"]], str(gt_dir / f"{r['id']}.png")))
            assert abs(alone - r[name]) < 1e-5, (name, r["id"])


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="no CUDA device here")
def test_cpu_and_cuda_agree(eval_set, identity_preds):
    cpu = api.score(identity_preds, eval_set, metrics=["psnr", "ssim"], device="cpu")
    gpu = api.score(identity_preds, eval_set, metrics=["psnr", "ssim"], device="cuda")
    for name, tol in (("psnr", 1e-4), ("ssim", 1e-6)):
        assert abs(cpu["overall"][name]["mean"] - gpu["overall"][name]["mean"]) < tol


@pytest.mark.slow
def test_waiting_pairs_stay_bounded_with_many_distinct_sizes(monkeypatch):
    """Every pair a different size, so no group ever fills: the run still scores as it reads. At
    every metric call fewer than 17 ground truths are read but not yet scored (the decode window,
    the pixels allowed to wait, the batch uploaded ahead), never all 40, and no batch holds more
    than the waiting budget. Through public interfaces: memory.in_memory and scoring.run."""
    from ggt_dataset.eval.memory import in_memory
    from PIL import Image

    images = [Image.fromarray(np.zeros((300 + k, 300, 3), np.uint8)) for k in range(40)]
    preds, refs = in_memory(images, images)
    read, scored, lags, pixels = [], [0], [], []
    real_iter, real_call = refs.iter_hq, Scorer.__call__

    def reading(wanted):
        for pair_id, data in real_iter(wanted):
            read.append(pair_id)
            yield pair_id, data

    def call(self, pred, gt=None):
        lags.append(len(read) - scored[0])
        pixels.append(pred.shape[0] * pred.shape[2] * pred.shape[3])
        out = real_call(self, pred, gt)
        scored[0] += pred.shape[0]
        return out

    monkeypatch.setattr(refs, "iter_hq", reading)
    monkeypatch.setattr(Scorer, "__call__", call)
    proto = load("ggt").subset(["psnr"])
    result = scoring.run(preds, refs, proto, [Scorer(proto.metric("psnr"), "cpu")], workers=1, progress=False)
    assert len(result.rows) == 40 and all(r["psnr"] == float("inf") for r in result.rows)
    assert max(lags) <= 16 and max(pixels) <= 2 * batcher.BATCH_PIXELS["cpu"]


@pytest.fixture(scope="module")
def tiny_pair_set(tmp_path_factory):
    """A built test split with a 64 px pair and an 8x8 one (the build accepts it), LQ as predictions."""
    import shutil

    from conftest import image_bytes, write

    from ggt_dataset.cli.main import main

    base = tmp_path_factory.mktemp("tiny")
    for name, size in (("big", (64, 64)), ("tiny", (8, 8))):
        for role, seed in (("LQ", 0), ("GT", 1)):
            write(str(base / "raw" / "test" / role / "rain" / f"{name}.png"), image_bytes(seed, size=size))
    assert main(["build", str(base / "raw"), str(base / "built")]) == 0
    shutil.copytree(base / "raw" / "test" / "LQ", base / "preds")
    return str(base / "built"), str(base / "preds")


def _score_cli(capsys, tiny_pair_set, out, *args) -> tuple[int, str]:
    from ggt_dataset.cli.main import main

    built, preds = tiny_pair_set
    capsys.readouterr()
    code = main(["score", preds, "--reference", built, "--out", str(out), "--device", "cpu", "-q", *args])
    return code, capsys.readouterr().err


def test_pair_smaller_than_a_metric_needs_is_named_not_a_crash(tiny_pair_set, tmp_path, capsys):
    """SSIM's 11x11 window on an 8x8 pair ended the whole run ('Kernel size can't be greater than
    actual input size', unnamed, nothing written); it is now a per-pair failure like an unreadable file."""
    import json

    code, err = _score_cli(capsys, tiny_pair_set, tmp_path / "r", "--metrics", "psnr,ssim")
    assert code == 1 and "unexpected" not in err and "1 prediction(s) cannot be scored" in err
    assert "rain/tiny.png: 8x8 px, smaller than the 11x11 px protocol 'ggt' needs (ssim needs 11x11 px)" in err
    assert "--allow-partial" in err and not (tmp_path / "r" / "summary.json").exists()

    code, err = _score_cli(capsys, tiny_pair_set, tmp_path / "p", "--metrics", "psnr,ssim", "--allow-partial")
    assert code == 0, err
    s = json.loads((tmp_path / "p" / "summary.json").read_text())
    assert s["partial"] and s["counts"]["scored"] == 1 and "rain/tiny.png: 8x8 px" in s["counts"]["failed"][0]

    # The minimum follows the protocol: psnr alone takes 8x8; ntire crops 4 px first, leaving nothing.
    assert _score_cli(capsys, tiny_pair_set, tmp_path / "q", "--metrics", "psnr")[0] == 0
    code, err = _score_cli(capsys, tiny_pair_set, tmp_path / "n", "--metrics", "psnr", "--protocol", "ntire")
    assert code == 1 and "(psnr needs 1x1 px after a 4 px border crop)" in err


@pytest.mark.parametrize("border", [0, 3])
def test_batch_tensor_is_each_image_divided_by_its_scale(border):
    """batches.tensor (channels first, cropped, converted once) equals numpy's x / scale per image,
    bit for bit, for a uniform batch and for 8- and 16-bit images mixed."""
    import torch
    from ggt_dataset.eval.decode import Decoded

    rng = np.random.default_rng(3)
    eight = [Decoded(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8), 255.0, "") for _ in range(3)]
    sixteen = Decoded(rng.integers(0, 65536, (20, 24, 3), dtype=np.uint16), 65535.0, "16-bit->float")
    for batch in (eight, eight[:2] + [sixteen]):
        for dtype in (torch.float64, torch.float32):
            got = batches.tensor(batch, dtype, border)
            h, w = 20 - 2 * border, 24 - 2 * border
            want = np.stack([(d.pixels.astype(np.float64) / d.scale) for d in batch]).transpose(0, 3, 1, 2)
            want = want[..., border:border + h, border:border + w]
            if dtype == torch.float32:      # the conversion first, then the division, in float32
                want = np.stack([(d.pixels.astype(np.float32) / np.float32(d.scale)) for d in batch])
                want = want.transpose(0, 3, 1, 2)[..., border:border + h, border:border + w]
            assert got.is_contiguous() and got.dtype == dtype and tuple(got.shape) == (3, 3, h, w)
            assert np.array_equal(got.numpy(), want)
