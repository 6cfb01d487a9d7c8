"""eval/ssim.py: pyiqa's own SSIM within 1e-10 (checked against pyiqa itself), BasicSR's within
1e-6 (checked against tests/iqa_reference.py's OpenCV rendering of BasicSR's code), in strips."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from ggt_dataset.eval import ssim as fast_ssim
from ggt_dataset.eval.metrics import FAST_SSIM, MetricError, Scorer
from ggt_dataset.eval.protocol import MetricSpec, load
from iqa_reference import basicsr_psnr, basicsr_ssim

PYIQA_TOL, BASICSR_TOL = 1e-10, 1e-6


def _photo(name: str) -> np.ndarray:
    from skimage import data

    img = getattr(data, name)()
    return np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img[..., :3]


def _degraded(hq: np.ndarray, k: int) -> np.ndarray:
    from ggt_dataset.degrade import DEGRADATIONS

    cat = sorted(DEGRADATIONS)[k % len(DEGRADATIONS)]
    return DEGRADATIONS[cat](hq, np.random.default_rng(k))


def varied_pairs() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(prediction, ground truth), uint8 RGB: photos with the dataset's degradations (one whole,
    the others cropped to odd sizes), noise against other noise (a negative contrast-structure
    term: pyiqa's clamp), flat and nearly flat images, a gradient, 17x1031, 1031x17, 11x11."""
    rng = np.random.default_rng(13)
    pairs = {"astronaut-512x512": (_degraded(_photo("astronaut"), 0), _photo("astronaut"))}
    for k, (name, h, w) in enumerate([("coffee", 301, 455), ("chelsea", 17, 1031), ("camera", 1031, 17),
                                      ("rocket", 97, 131), ("coins", 64, 301)], start=1):
        hq = _photo(name)[:h, :w]
        pairs[f"{name}-{h}x{w}"] = (_degraded(hq, k), hq)
    noise = rng.integers(0, 256, (120, 97, 3), dtype=np.uint8)
    pairs["noise-vs-noise"] = (rng.integers(0, 256, noise.shape, dtype=np.uint8), noise)
    near = np.clip(noise.astype(int) + rng.integers(-3, 4, noise.shape), 0, 255).astype(np.uint8)
    pairs["noise-vs-near"] = (near, noise)
    flat = np.full((40, 52, 3), 128, np.uint8)
    pairs["flat-vs-flat"] = (flat, flat.copy())
    pairs["flat-vs-other-flat"] = (np.full_like(flat, 30), flat)
    pairs["flat-vs-speck"] = (np.where(rng.random(flat.shape) < 0.01, 255, flat).astype(np.uint8), flat)
    grad = np.tile(np.linspace(0, 255, 80)[None, :, None], (40, 1, 3)).astype(np.uint8)
    pairs["gradient"] = ((grad * 0.9).astype(np.uint8), grad)
    pairs["11x11"] = (rng.integers(0, 256, (11, 11, 3), dtype=np.uint8), rng.integers(0, 256, (11, 11, 3),
                                                                                       dtype=np.uint8))
    return pairs


PAIRS = varied_pairs()


def _tensor(a: np.ndarray, dtype, border: int = 0):
    """As the engine feeds a metric: (1, 3, H, W) in [0, 1], the protocol's border cropped."""
    import torch

    t = torch.from_numpy(a.astype(np.float64) / 255.0).permute(2, 0, 1)[None].to(dtype)
    return t[..., border:-border, border:-border] if border else t


def _both(spec: MetricSpec, pred, gt, border: int = 0) -> tuple[float, float]:
    fast, pyiqa = Scorer(spec, "cpu", kernel="fast"), Scorer(spec, "cpu", kernel="pyiqa")
    assert (fast.kernel, pyiqa.kernel) == (FAST_SSIM, "pyiqa")
    p, g = _tensor(pred, fast.dtype, border), _tensor(gt, fast.dtype, border)
    return float(fast(p, g)[0]), float(pyiqa(p, g)[0])


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["ggt", "ntire"])
@pytest.mark.parametrize("case", sorted(PAIRS))
def test_fast_ssim_is_pyiqa_within_1e10(protocol, case):
    """Each protocol's SSIM (rounding, clamp, ntire's 4 px border) on pyiqa's path and on ours."""
    proto = load(protocol)
    pred, gt = PAIRS[case]
    if min(gt.shape[:2]) - 2 * proto.crop_border < 11:
        pytest.skip("smaller than the protocol's minimum (refused before scoring)")
    fast, pyiqa = _both(proto.metric("ssim"), pred, gt, proto.crop_border)
    assert abs(fast - pyiqa) <= PYIQA_TOL, (fast, pyiqa)


@pytest.mark.parametrize("options", [
    {"test_y_channel": True, "color_space": "ycbcr", "downsample": True},    # 512 px: pooled by 2
    {"test_y_channel": True, "color_space": "ycbcr", "crop_border": 3},
    {"test_y_channel": True},                                                 # pyiqa's default: yiq
])
@pytest.mark.slow
def test_fast_ssim_follows_pyiqa_options(options):
    spec = MetricSpec("ssim", "ssim", "FR", "higher", options=tuple(sorted(options.items())))
    for case in ("astronaut-512x512", "coffee-301x455", "noise-vs-noise"):
        fast, pyiqa = _both(spec, *PAIRS[case])
        assert abs(fast - pyiqa) <= PYIQA_TOL, (case, fast, pyiqa)


@pytest.mark.slow
def test_strips_give_the_whole_image_value(monkeypatch):
    """Strips overlapping by 10 rows, the last one short, change nothing (pyiqa within 1e-10)."""
    spec = load("ggt").metric("ssim")
    pred, gt = PAIRS["coffee-301x455"]
    whole, pyiqa = _both(spec, pred, gt)
    monkeypatch.setattr(fast_ssim, "STRIP_PIXELS", 40 * 480)      # 30 output rows a strip: 10 strips
    strips, _ = _both(spec, pred, gt)
    assert abs(strips - whole) <= 1e-12 and abs(strips - pyiqa) <= PYIQA_TOL


def test_batched_equals_one_at_a_time():
    spec = load("ggt").metric("ssim")
    import torch

    s = Scorer(spec, "cpu")
    pairs = [PAIRS["noise-vs-noise"], PAIRS["noise-vs-near"]]
    batch = s(torch.cat([_tensor(p, s.dtype) for p, _ in pairs]), torch.cat([_tensor(g, s.dtype) for _, g in pairs]))
    assert list(batch) == [s(_tensor(p, s.dtype), _tensor(g, s.dtype))[0] for p, g in pairs]


@pytest.mark.parametrize("case", sorted(PAIRS))
def test_basicsr_protocol_is_basicsr_code(case):
    """basicsr's PSNR within 1e-6 dB and SSIM within 1e-6 of BasicSR's calculate_psnr/_ssim."""
    proto = load("basicsr")
    pred, gt = PAIRS[case]
    for name, want, tol in (("psnr", basicsr_psnr(pred, gt), BASICSR_TOL), ("ssim", basicsr_ssim(pred, gt),
                                                                             BASICSR_TOL)):
        s = Scorer(proto.metric(name), "cpu")
        got = float(s(_tensor(pred, s.dtype), _tensor(gt, s.dtype))[0])
        assert got == want == float("inf") or abs(got - want) <= tol, (name, got, want)
    assert Scorer(proto.metric("ssim"), "cpu").kernel == FAST_SSIM


def test_basicsr_and_ggt_ssim_differ_by_their_conventions():
    """On a whole degraded photo the two conventions differ measurably (rounding Y, the clamp)."""
    pred, gt = PAIRS["astronaut-512x512"]
    ggt, bsr = Scorer(load("ggt").metric("ssim"), "cpu"), Scorer(load("basicsr").metric("ssim"), "cpu")
    a = ggt(_tensor(pred, ggt.dtype), _tensor(gt, ggt.dtype))[0]
    b = bsr(_tensor(pred, bsr.dtype), _tensor(gt, bsr.dtype))[0]
    assert 1e-5 < abs(a - b) < 5e-3, (a, b)


def test_basicsr_ssim_refuses_pyiqa_kernel():
    with pytest.raises(MetricError, match="basicsr SSIM convention .* has no pyiqa equivalent; score it with "
                                          "--kernel fast"):
        Scorer(load("basicsr").metric("ssim"), "cpu", kernel="pyiqa")


def _score(capsys, eval_set, preds, out, *args) -> tuple[int, str]:
    from ggt_dataset.cli.main import main

    capsys.readouterr()
    code = main(["score", preds, "--reference", eval_set, "--out", str(out), "--device", "cpu", "-q",
                 "--metrics", "psnr,ssim", *args])
    return code, capsys.readouterr().err


@pytest.mark.slow
def test_cli_kernel_choice_is_in_the_fingerprint(eval_set, identity_preds, tmp_path, capsys):
    """The same numbers (1e-10) both ways; summary.json says which code computed each metric."""
    import pyarrow.parquet as pq

    rows = {}
    for kernel in ("fast", "pyiqa"):
        code, err = _score(capsys, eval_set, identity_preds, tmp_path / kernel, "--kernel", kernel)
        assert code == 0, err
        s = json.loads((tmp_path / kernel / "summary.json").read_text())
        assert s["fingerprint"]["kernels"] == {"psnr": "pyiqa", "ssim": FAST_SSIM if kernel == "fast" else "pyiqa"}
        rows[kernel] = {r["id"]: r for r in pq.read_table(tmp_path / kernel / "per_image.parquet").to_pylist()}
    assert rows["fast"].keys() == rows["pyiqa"].keys() and len(rows["fast"]) == 18
    for i, r in rows["fast"].items():
        assert abs(r["ssim"] - rows["pyiqa"][i]["ssim"]) <= PYIQA_TOL and r["psnr"] == rows["pyiqa"][i]["psnr"]


def test_cli_basicsr_with_pyiqa_kernel_is_a_clear_error(eval_set, identity_preds, tmp_path, capsys):
    code, err = _score(capsys, eval_set, identity_preds, tmp_path / "r", "--protocol", "basicsr",
                       "--kernel", "pyiqa")
    assert code != 0 and "Traceback" not in err and "unexpected" not in err
    assert "metric 'ssim': the basicsr SSIM convention" in err and "--kernel fast" in err
    assert not (tmp_path / "r" / "summary.json").exists()


@pytest.mark.slow
def test_4k_pair_is_scored_in_under_2_gb(tmp_path):
    """`ggt score` of one 3840x2160 pair (PSNR, SSIM) peaks under 2 GB (pyiqa's own SSIM: about 1 KB
    a pixel, over 8 GB). The child reads its own VmHWM: ru_maxrss would carry pytest's peak."""
    from PIL import Image

    from ggt_dataset.build import build

    rng = np.random.default_rng(4)
    small = rng.integers(0, 256, (270, 480, 3), dtype=np.uint8)
    hq = np.asarray(Image.fromarray(small).resize((3840, 2160), Image.BICUBIC))
    lq = np.clip(hq.astype(np.int16) + rng.integers(-8, 9, hq.shape, dtype=np.int16), 0, 255).astype(np.uint8)
    for role, img in (("LQ", lq), ("GT", hq)):
        path = tmp_path / "raw" / "test" / role / "rain" / "big.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(path, compress_level=1)
    build(str(tmp_path / "raw"), str(tmp_path / "ds"), progress=False)
    code = ("import sys\nfrom ggt_dataset.cli.main import main\nrc = main(sys.argv[1:])\n"
            "print(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')), file=sys.stderr)\n"
            "sys.exit(rc)")
    done = subprocess.run([sys.executable, "-c", code, "score", str(tmp_path / "raw" / "test" / "LQ"), "--reference",
                           str(tmp_path / "ds"), "--out", str(tmp_path / "r"), "--metrics", "psnr,ssim",
                           "--device", "cpu", "-q"], check=False, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    peak_mb = int(done.stderr.strip().splitlines()[-1]) / 1024
    assert peak_mb < 2048, peak_mb
    s = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert s["fingerprint"]["kernels"]["ssim"] == FAST_SSIM and s["counts"]["scored"] == 1
