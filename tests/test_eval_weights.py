"""Weight files: only regular files are opened (a FIFO or a device would be hashed forever),
and the NIQE model, which has no published hash, is checked by its content.

The CLI runs in a subprocess with a timeout: the bug these tests guard against is a hang."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

NIQE_REL = os.path.join("torch", "hub", "pyiqa", "niqe_modelparameters.mat")


def ggt_weights_list(weights_dir, metrics="niqe"):
    return subprocess.run([sys.executable, "-m", "ggt_dataset.cli.main", "weights", "list", "ggt",
                           "--metrics", metrics, "--weights-dir", str(weights_dir)],
                          capture_output=True, text=True, timeout=120, check=False)


def niqe_file(tmp_path):
    path = tmp_path / "w" / NIQE_REL
    path.parent.mkdir(parents=True)
    return path


def save_niqe(path, mu_shape=(1, 36), cov_shape=(36, 36)):
    import scipy.io

    rng = np.random.default_rng(0)
    scipy.io.savemat(str(path), {"mu_prisparam": rng.random(mu_shape), "cov_prisparam": rng.random(cov_shape)})


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
@pytest.mark.slow
def test_a_fifo_is_named_as_not_a_weight_file(tmp_path):
    os.mkfifo(niqe_file(tmp_path))
    r = ggt_weights_list(tmp_path / "w")
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"{tmp_path / 'w' / NIQE_REL}: is a FIFO, not a regular file" in r.stdout


@pytest.mark.slow
def test_a_link_to_dev_zero_is_named_not_hashed(tmp_path):
    niqe_file(tmp_path).symlink_to("/dev/zero")
    r = ggt_weights_list(tmp_path / "w")
    assert r.returncode == 1 and "is a character device, not a regular file" in r.stdout


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
@pytest.mark.slow
def test_a_fifo_in_a_timm_snapshot_is_named(tmp_path):
    snap = tmp_path / "w" / "huggingface" / "hub" / "models--timm--resnet50.a1_in1k" / "snapshots" / "abc"
    snap.mkdir(parents=True)
    os.mkfifo(snap / "model.safetensors")
    r = ggt_weights_list(tmp_path / "w", "topiq_nr")
    assert r.returncode == 1 and f"{snap / 'model.safetensors'}: is a FIFO" in r.stdout


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
@pytest.mark.slow
def test_score_with_a_fifo_weight_fails_before_any_work(eval_set, identity_preds, tmp_path):
    os.mkfifo(niqe_file(tmp_path))
    r = subprocess.run([sys.executable, "-m", "ggt_dataset.cli.main", "score", identity_preds,
                        "--reference", eval_set, "--out", str(tmp_path / "r"), "--metrics", "psnr,niqe",
                        "--weights-dir", str(tmp_path / "w"), "-q"],
                       capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 1 and "is a FIFO, not a regular file" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "r").exists()


@pytest.mark.slow
def test_niqe_model_is_checked_by_content(tmp_path):
    """No hash is published for it: a file of that name that is not the model is refused."""
    path = niqe_file(tmp_path)
    unrelated = tmp_path / "photo.png"
    unrelated.write_bytes(b"\x89PNG\r\n\x1a\n not a mat file")
    path.symlink_to(unrelated)
    r = ggt_weights_list(tmp_path / "w")
    assert r.returncode == 1 and "is not a MATLAB .mat file" in r.stdout and " ok " not in r.stdout
    path.unlink()
    save_niqe(path, cov_shape=(18, 18))        # a .mat, but not NIQE's
    r = ggt_weights_list(tmp_path / "w")
    assert r.returncode == 1 and "no finite numeric cov_prisparam of 36x36 values" in r.stdout
    save_niqe(path)                            # the right keys and shapes
    r = ggt_weights_list(tmp_path / "w")
    assert r.returncode == 0 and f"niqe       ok       {path}" in r.stdout, r.stdout + r.stderr


@pytest.mark.parametrize("env", [{}, {"XDG_CACHE_HOME": "/x"}, {"TORCH_HOME": "~/t"},
                                 {"TORCH_HOME": "/t", "XDG_CACHE_HOME": "/x"}])
def test_torch_hub_dir_without_torch_is_the_folder_torch_hub_gives(monkeypatch, env):
    import torch.hub
    from ggt_dataset.eval import weights

    for key in ("TORCH_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(torch.hub, "_hub_dir", None)           # as before any set_dir
    want = torch.hub.get_dir()
    monkeypatch.delitem(sys.modules, "torch.hub")              # as when nothing imported torch
    assert weights.torch_hub_dir() == want


@pytest.mark.slow       # a subprocess that imports torch and pyiqa after the listing
def test_weights_list_imports_no_torch_and_what_is_imported_later_looks_in_weights_dir(tmp_path):
    """`ggt weights list` names folders without torch or pyiqa (2-4 s of imports); the stores
    torch.hub, huggingface_hub and pyiqa compute when imported afterwards are --weights-dir's."""
    w = tmp_path / "w"
    script = (
        "import sys\nfrom ggt_dataset.cli.main import main\n"
        f"rc = main(['weights', 'list', 'ggt', '--metrics', 'niqe', '--weights-dir', {str(w)!r}])\n"
        "print('rc', rc, 'torch' in sys.modules, 'pyiqa' in sys.modules)\n"
        "import huggingface_hub.constants, torch.hub\nfrom pyiqa.utils import download_util\n"
        "print(torch.hub.get_dir()); print(download_util.DEFAULT_CACHE_DIR); "
        "print(huggingface_hub.constants.HF_HUB_CACHE, flush=True)\n"
        "import os; os._exit(0)\n")        # as `ggt` does: no teardown, 1.6 s of CPU with pyiqa loaded
    env = {k: v for k, v in os.environ.items() if k not in ("TORCH_HOME", "HF_HUB_CACHE")}
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                       check=False, env=env)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "rc 1 False False" in lines and "MISSING  metric 'niqe' (niqe) needs" in r.stdout
    assert lines[-3:] == [str(w / "torch" / "hub"), str(w / "torch" / "hub" / "pyiqa"),
                          str(w / "huggingface" / "hub")]
