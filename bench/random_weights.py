"""Build pyiqa's real metric architectures with random weights, offline: for timing only.

Machines without network (the test machines, a lent GPU) cannot fetch the learned metrics'
checkpoints, and pyiqa's ``pretrained=False`` still downloads backbones (torchvision's
AlexNet/VGG16, timm's ViT and ResNet, OpenAI's CLIP). Inside ``random_weights()`` every
such fetch is answered with randomly initialised weights of the right shapes, so each metric's
forward pass does the same work as with the real weights. The scores are meaningless: the bench
labels them "random weights, timing only" and ``metrics.Scorer(unweighted=True)`` marks the
scorer, which ``report.write`` refuses. Nothing in the library imports this module.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile

import numpy as np

# OpenAI CLIP's published configurations (embed_dim, image_resolution, vision_layers, vision_width,
# vision_patch_size, context_length, vocab_size, transformer_width, heads, layers).
CLIP_CONFIGS = {
    "RN50": (1024, 224, (3, 4, 6, 3), 64, None, 77, 49408, 512, 8, 12),
    "ViT-B/32": (512, 224, 12, 768, 32, 77, 49408, 512, 8, 12),
}


class _Random(dict):
    """What a checkpoint load returns inside random_weights(): any key gives another, and
    ``load_state_dict`` of it keeps the module's own random initialisation."""

    def __getitem__(self, key):
        return _Random()


def _patched(obj, name: str, value, saved: list) -> None:
    saved.append((obj, name, getattr(obj, name)))
    setattr(obj, name, value)


def _clip_loader(module, arch: str, pair: bool):
    """The module's own build_model over a random CLIP (class ``arch``) of the named configuration."""
    def load(name, device="cpu", jit=False, download_root=None):
        model = module.build_model(getattr(module, arch)(*CLIP_CONFIGS[name]).state_dict()).to(device)
        if str(device) == "cpu":
            model.float()
        return (model, module._transform(model.visual.input_resolution)) if pair else model
    return load


@contextlib.contextmanager
def random_weights():
    """While active, pyiqa metrics build with random weights and never touch the network."""
    import pyiqa.archs  # noqa: F401  (the arch modules, imported so their names can be patched)
    import scipy.io
    import timm
    import torch
    import torchvision.models._api as tv_api
    from pyiqa.archs import afine_arch, afineclip_model, clip_model, clipiqa_arch

    saved: list = []
    with tempfile.TemporaryDirectory(prefix="ggt-random-weights-") as tmp:
        sentinel = os.path.join(tmp, "random-weights.pth")
        open(sentinel, "wb").close()
        real_load, real_lsd, real_create = torch.load, torch.nn.Module.load_state_dict, timm.create_model

        def load(f, *a, **k):
            return _Random() if getattr(f, "name", f) == sentinel else real_load(f, *a, **k)

        def load_state_dict(self, state_dict, *a, **k):
            if isinstance(state_dict, _Random):
                return torch.nn.modules.module._IncompatibleKeys([], [])
            return real_lsd(self, state_dict, *a, **k)

        rng = np.random.default_rng(0)
        a = rng.normal(size=(36, 36))
        niqe_params = {"mu_prisparam": rng.normal(size=(1, 36)), "cov_prisparam": a @ a.T + 36 * np.eye(36)}
        _patched(torch, "load", load, saved)
        _patched(torch.nn.Module, "load_state_dict", load_state_dict, saved)
        _patched(tv_api.WeightsEnum, "get_state_dict", lambda self, *a, **k: _Random(), saved)
        _patched(timm, "create_model", lambda *a, **k: real_create(*a, **{**k, "pretrained": False}), saved)
        _patched(scipy.io, "loadmat", lambda path, *a, **k: dict(niqe_params), saved)
        for name, module in list(sys.modules.items()):
            if name.startswith("pyiqa.") and module is not None:
                for attr in ("load_file_from_url", "load_pretrained_network"):
                    if hasattr(module, attr):
                        value = (lambda *a, **k: sentinel) if attr == "load_file_from_url" else (lambda *a, **k: None)
                        _patched(module, attr, value, saved)
        _patched(clipiqa_arch, "load", _clip_loader(clip_model, "CLIP", pair=False), saved)
        _patched(afine_arch, "load", _clip_loader(afineclip_model, "AFINECLIP", pair=True), saved)
        try:
            yield
        finally:
            for obj, name, value in reversed(saved):
                setattr(obj, name, value)
