"""Shared fixtures: tiny raw releases made in tmp_path, and an offline, private HF cache."""

from __future__ import annotations

import atexit
import io
import os
import shutil
import tempfile

import numpy as np
import pytest
from PIL import Image

# Set before any test module imports `datasets`, which reads these once at import:
# offline (no Hub here), and a private cache (load_dataset on a folder writes an Arrow copy).
_HF_HOME = tempfile.mkdtemp(prefix="ggt-tests-hf-")
atexit.register(shutil.rmtree, _HF_HOME, True)
os.environ.update(HF_HOME=_HF_HOME, HF_DATASETS_CACHE=os.path.join(_HF_HOME, "datasets"), HF_HUB_OFFLINE="1")
# The evaluation suite's caches (reference scores, torch hub for weights) stay private too.
os.environ.update(GGT_CACHE_DIR=os.path.join(_HF_HOME, "ggt-eval"), TORCH_HOME=os.path.join(_HF_HOME, "torch"))



def pytest_collection_modifyitems(config, items):
    """Tests marked ``heavy`` run first, each with its module after it, kept whole (its module
    fixtures are made once); the rest keep file order. pytest-xdist hands each worker a contiguous run of this
    order and idle workers steal from the ends of the others' runs, so a test that holds a worker
    for a minute must start early or it finishes the suite alone."""
    heavy = {item.module.__name__ for item in items if item.get_closest_marker("heavy")}
    items.sort(key=lambda item: (item.module.__name__ not in heavy, not item.get_closest_marker("heavy")))

# A user protocol with classical no-reference metrics that need no downloads.
NR_PROTOCOL = """name: nr-offline
metadata: {version: 1}
pyiqa: ">=0.1.16,<0.1.17"
reference_scores: true
metrics:
  psnr: {pyiqa: psnr, kind: FR, better: higher, options: {test_y_channel: true, color_space: ycbcr}}
  piqe: {pyiqa: piqe, kind: NR, better: lower}
  entropy: {pyiqa: entropy, kind: NR, better: higher}
"""


def image_bytes(seed: int = 0, size: tuple[int, int] = (40, 32), fmt: str = "PNG", mode: str = "RGB",
                **save) -> bytes:
    rng = np.random.default_rng(seed)
    arr = (rng.random((size[1], size[0], 3)) * 255).astype(np.uint8)
    img = Image.fromarray(arr).convert(mode) if mode != "RGB" else Image.fromarray(arr)
    buf = io.BytesIO()
    img.save(buf, format=fmt, **save)
    return buf.getvalue()


def write(path, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def make_tree(root, pairs, *, lq_ext=".jpg", hq_ext=".png", lq_dir="LQ", hq_dir="GT"):
    """pairs: iterable of (split, category_folder, name); writes <root>/<split>/<LQ|GT>/<cat>/<name>."""
    for i, (split, cat, name) in enumerate(pairs):
        write(os.path.join(root, split, lq_dir, cat, name + lq_ext),
              image_bytes(i, fmt="JPEG" if lq_ext == ".jpg" else "PNG"))
        write(os.path.join(root, split, hq_dir, cat, name + hq_ext), image_bytes(1000 + i))
    return str(root)


@pytest.fixture
def ggt_in_process(capsys, monkeypatch):
    """``ggt ARGS`` run in this process, its exit code and output as ``subprocess.run`` gives them.

    A subprocess pays 3-5 s of imports (torch, pyiqa) per call; tests that run several
    commands use this instead. ``env`` is applied for the test's duration. The process
    globals a run may point elsewhere (``--weights-dir`` moves torch.hub's, huggingface_hub's
    and pyiqa's stores, see eval/weights.py ``use_weights_dir``) are restored afterwards.
    """
    import subprocess

    import huggingface_hub.constants as hf_constants
    import torch.hub
    from pyiqa.utils import download_util

    from ggt_dataset.cli.main import main

    monkeypatch.setattr(torch.hub, "_hub_dir", torch.hub._hub_dir)
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", hf_constants.HF_HUB_CACHE)
    monkeypatch.setattr(download_util, "DEFAULT_CACHE_DIR", download_util.DEFAULT_CACHE_DIR)
    for key in ("TORCH_HOME", "HF_HUB_CACHE"):          # saved now, restored after the test
        if key in os.environ:
            monkeypatch.setenv(key, os.environ[key])
        else:
            monkeypatch.delenv(key, raising=False)

    def run(*args, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        for key, value in (env or {}).items():
            monkeypatch.setenv(key, value)
        capsys.readouterr()
        try:
            code = main([str(a) for a in args])
        except SystemExit as stop:                        # argparse's usage errors
            code = stop.code if isinstance(stop.code, int) else 1
        out = capsys.readouterr()
        return subprocess.CompletedProcess(list(args), code, out.out, out.err)

    return run


@pytest.fixture
def tree(tmp_path):
    pairs = [(s, c, f"{i:03d}") for s, n in (("train", 3), ("test", 2))
             for c in ("rain", "Low-Light", "general") for i in range(n)]
    return make_tree(tmp_path / "raw", pairs)


@pytest.fixture(scope="session")
def sample_raw(tmp_path_factory):
    from ggt_dataset.sample import write_sample

    root = tmp_path_factory.mktemp("sample") / "raw"
    write_sample(str(root), train_per_category=2, test_per_category=1, size=64)
    return str(root)


@pytest.fixture(scope="session")
def built(sample_raw, tmp_path_factory):
    from ggt_dataset.build import build

    out = str(tmp_path_factory.mktemp("built") / "ggt-100k")
    build(sample_raw, out, progress=False)
    return out


@pytest.fixture
def built_copy(built, tmp_path):
    """A private copy of the session's build, for tests that damage it."""
    import shutil

    out = str(tmp_path / "ggt-100k")
    shutil.copytree(built, out)
    return out


@pytest.fixture(scope="session")
def eval_set(tmp_path_factory):
    """A built sample pack with 3 test pairs per category (18 pairs of 96 px), for scoring."""
    from ggt_dataset.build import build
    from ggt_dataset.sample import write_sample

    base = tmp_path_factory.mktemp("evalset")
    write_sample(str(base / "raw"), train_per_category=1, test_per_category=3, size=96)
    build(str(base / "raw"), str(base / "ggt"), progress=False)
    return str(base / "ggt")


@pytest.fixture(scope="session")
def identity_preds(eval_set, tmp_path_factory):
    """The LQ images as predictions, named by id: a real, imperfect submission."""
    from ggt_dataset.eval.baselines import run_baseline

    out = str(tmp_path_factory.mktemp("preds") / "identity")
    run_baseline("identity", eval_set, out)
    return out


@pytest.fixture(scope="session")
def classical_preds(eval_set, tmp_path_factory):
    """The classical OpenCV baseline's outputs: a second submission, better than identity on some pairs only."""
    from ggt_dataset.eval.baselines import run_baseline

    out = str(tmp_path_factory.mktemp("preds") / "classical")
    run_baseline("classical", eval_set, out)
    return out


@pytest.fixture(scope="session")
def two_reports(eval_set, identity_preds, classical_preds, tmp_path_factory):
    """identity's and classical's reports (PSNR, SSIM) by the real `ggt score`, labelled by name;
    each names the outputs it scored."""
    from benchmark_fixtures import score

    base = tmp_path_factory.mktemp("two-reports")
    return [score(p, eval_set, base / name, "--label", name)
            for name, p in (("identity", identity_preds), ("classical", classical_preds))]


@pytest.fixture(scope="session")
def odd_build(tmp_path_factory):
    """Licences with commas, and an LQ whose aspect differs from its HQ."""
    import json

    from ggt_dataset.build import build

    raw = tmp_path_factory.mktemp("odd") / "raw"
    raw.mkdir()
    rows = [("a", "CC BY-SA 4.0, attribution Jane", (64, 32)), ("b", "CC0-1.0", (48, 48)),
            ("c", "CC BY 4.0, attribution Joe", (48, 48))]
    with open(raw / "metadata.jsonl", "w") as f:
        for i, (name, lic, size) in enumerate(rows):
            write(str(raw / "lq" / f"{name}.png"), image_bytes(i, size=size))
            write(str(raw / "hq" / f"{name}.png"), image_bytes(10 + i, size=(48, 48)))
            f.write(json.dumps({"lq_file_name": f"lq/{name}.png", "hq_file_name": f"hq/{name}.png",
                                "split": "test", "category": "rain", "license": lic}) + "\n")
    out = str(tmp_path_factory.mktemp("odd") / "built")
    build(str(raw / "metadata.jsonl"), out, progress=False)
    return out
