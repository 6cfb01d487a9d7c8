"""Shared fixtures: tiny raw releases made in tmp_path, and an offline, private HF cache."""

from __future__ import annotations

import atexit
import io
import json
import os
import shutil
import sys
import tempfile

import numpy as np
import pytest
from PIL import Image


def _worker_exit() -> None:
    """A pytest-xdist worker's last step, once its results are sent and every other atexit
    handler has run: leave without the interpreter's teardown, 1.5-2 s of CPU per worker with
    torch and pyiqa loaded (as the ggt command does, ggt_dataset/cli/main.py)."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(0)


if os.environ.get("PYTEST_XDIST_WORKER"):
    atexit.register(_worker_exit)     # registered first, so it runs last

# Set before any test module imports `datasets`, which reads these once at import:
# offline (no Hub here), and a private cache (load_dataset on a folder writes an Arrow copy).
_HF_HOME = tempfile.mkdtemp(prefix="ggt-tests-hf-")
atexit.register(shutil.rmtree, _HF_HOME, True)
os.environ.update(HF_HOME=_HF_HOME, HF_DATASETS_CACHE=os.path.join(_HF_HOME, "datasets"), HF_HUB_OFFLINE="1")
# The evaluation suite's caches (reference scores, torch hub for weights) stay private too.
os.environ.update(GGT_CACHE_DIR=os.path.join(_HF_HOME, "ggt-eval"), TORCH_HOME=os.path.join(_HF_HOME, "torch"))


def pytest_collection_modifyitems(config, items):
    """Tests marked ``heavy`` run first, each with its module after it, kept whole (its module
    fixtures are made once); the rest keep file order. pytest-xdist hands each worker a
    contiguous run of this order and idle workers steal from the ends of the others' runs, so a
    test that holds a worker for a minute must start early or it finishes the suite alone."""
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
def refused_port():
    """A port on 127.0.0.1 where every connection is refused, for the test's duration: bound but
    never listening. A port merely closed again could be handed to another test's server, which
    then answers (seen once: a 501 instead of a refused connection)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


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


def made_once(tmp_path_factory, request, name: str, make) -> str:
    """``make(path)`` once per test run however many pytest-xdist workers there are, for the
    session fixtures below (each cost every worker seconds of CPU). The first worker here makes
    it in the run's common temp folder under a lock; the others wait, then reuse it.

    Shared across processes, these folders are read-only by contract: at the end of each
    worker's session the files must be as made, or the run fails naming the fixture (a test
    that damages one takes a copy, as ``built_copy`` does)."""
    from filelock import FileLock

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent                     # <run>/popen-gwN: <run> is the run's own
    base = root / "made-once"
    base.mkdir(exist_ok=True)
    path, done = base / name, base / f"{name}.done"
    with FileLock(str(base / f"{name}.lock")):
        if not done.exists():
            shutil.rmtree(path, ignore_errors=True)
            make(path)
            done.write_text(json.dumps(_tree_state(path)))
    made = json.loads(done.read_text())

    def unchanged() -> None:
        assert _tree_state(path) == made, (f"a test changed the shared fixture {name!r} ({path}); "
                                           "it must work on a copy")

    request.addfinalizer(unchanged)
    return str(path)


def _tree_state(path) -> list:
    """Every file under ``path``: relative name, size and modification time."""
    out = []
    for folder, _, files in sorted(os.walk(path)):
        for f in sorted(files):
            st = os.stat(os.path.join(folder, f))
            out.append([os.path.relpath(os.path.join(folder, f), path), st.st_size, st.st_mtime_ns])
    return out


@pytest.fixture(scope="session")
def sample_raw(tmp_path_factory, request):
    from ggt_dataset.sample import write_sample

    def make(path):
        write_sample(str(path / "raw"), train_per_category=2, test_per_category=1, size=64)

    return os.path.join(made_once(tmp_path_factory, request, "sample", make), "raw")


@pytest.fixture(scope="session")
def built(sample_raw, tmp_path_factory, request):
    from ggt_dataset.build import build

    def make(path):
        build(sample_raw, str(path / "ggt-100k"), progress=False)

    return os.path.join(made_once(tmp_path_factory, request, "built", make), "ggt-100k")


@pytest.fixture
def built_copy(built, tmp_path):
    """A private copy of the session's build, for tests that damage it."""
    import shutil

    out = str(tmp_path / "ggt-100k")
    shutil.copytree(built, out)
    return out


def _eval_set(tmp_path_factory, request, name: str, per_category: int) -> str:
    from ggt_dataset.build import build
    from ggt_dataset.sample import write_sample

    def make(path):
        write_sample(str(path / "raw"), train_per_category=1, test_per_category=per_category, size=96)
        build(str(path / "raw"), str(path / "ggt"), progress=False)

    return os.path.join(made_once(tmp_path_factory, request, name, make), "ggt")


@pytest.fixture(scope="session")
def eval_set(tmp_path_factory, request):
    """A built sample pack with 3 test pairs per category (18 pairs of 96 px), for scoring."""
    return _eval_set(tmp_path_factory, request, "evalset", per_category=3)


def _baseline(name: str, eval_set: str, tmp_path_factory, request, key: str = "preds") -> str:
    from ggt_dataset.eval.baselines import run_baseline

    def make(path):
        run_baseline(name, eval_set, str(path / name))

    return os.path.join(made_once(tmp_path_factory, request, f"{key}-{name}", make), name)


@pytest.fixture(scope="session")
def identity_preds(eval_set, tmp_path_factory, request):
    """The LQ images as predictions, named by id: a real, imperfect submission."""
    return _baseline("identity", eval_set, tmp_path_factory, request)


@pytest.fixture(scope="session")
def classical_preds(eval_set, tmp_path_factory, request):
    """The classical OpenCV baseline's outputs: a second submission, better than identity on some pairs only."""
    return _baseline("classical", eval_set, tmp_path_factory, request)


@pytest.fixture(scope="session")
def small_eval_set(tmp_path_factory, request):
    """One test pair per category (6 pairs of 96 px), for the tests that run a real network on
    every image (FID's Inception, MUSIQ): each image is a CPU forward pass."""
    return _eval_set(tmp_path_factory, request, "evalset-small", per_category=1)


@pytest.fixture(scope="session")
def small_preds(small_eval_set, tmp_path_factory, request):
    """identity's and classical's predictions of ``small_eval_set``."""
    return tuple(_baseline(name, small_eval_set, tmp_path_factory, request, key="small-preds")
                 for name in ("identity", "classical"))


@pytest.fixture(scope="session")
def two_reports(eval_set, identity_preds, classical_preds, tmp_path_factory, request):
    """identity's and classical's reports (PSNR, SSIM) by the real `ggt score`, labelled by name;
    each names the outputs it scored."""
    from benchmark_fixtures import score

    def make(path):
        for name, p in (("identity", identity_preds), ("classical", classical_preds)):
            score(p, eval_set, path / name, "--label", name)

    base = made_once(tmp_path_factory, request, "two-reports", make)
    return [os.path.join(base, name) for name in ("identity", "classical")]


@pytest.fixture(scope="session")
def odd_build(tmp_path_factory, request):
    """Licences with commas, and an LQ whose aspect differs from its HQ."""
    from ggt_dataset.build import build

    rows = [("a", "CC BY-SA 4.0, attribution Jane", (64, 32)), ("b", "CC0-1.0", (48, 48)),
            ("c", "CC BY 4.0, attribution Joe", (48, 48))]

    def make(path):
        raw = path / "raw"
        raw.mkdir(parents=True)
        with open(raw / "metadata.jsonl", "w") as f:
            for i, (name, lic, size) in enumerate(rows):
                write(str(raw / "lq" / f"{name}.png"), image_bytes(i, size=size))
                write(str(raw / "hq" / f"{name}.png"), image_bytes(10 + i, size=(48, 48)))
                f.write(json.dumps({"lq_file_name": f"lq/{name}.png", "hq_file_name": f"hq/{name}.png",
                                    "split": "test", "category": "rain", "license": lic}) + "\n")
        build(str(raw / "metadata.jsonl"), str(path / "built"), progress=False)

    return os.path.join(made_once(tmp_path_factory, request, "odd", make), "built")
