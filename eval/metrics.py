"""One protocol metric = one pyiqa metric with pinned options, scoring whole batches.

The maths is pyiqa's: this module builds the metric with the protocol's options,
feeds it (N, 3, H, W) tensors in [0, 1] on the chosen device, and returns one float64
per image. SSIM runs by default on ``ssim.py``'s kernel (the same float64 sums, equal
to pyiqa's within 1e-10, several times faster and in bounded memory); ``kernel="pyiqa"``
keeps pyiqa's own path, and reports record which ran. Metric facts (kind, direction)
come from the protocol, not from code.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np

from ..errors import GGTError
from .protocol import MetricSpec, Protocol


class MetricError(GGTError):
    """A metric cannot be built or run as the protocol says."""


KERNELS = ("fast", "pyiqa")       # --kernel: ours where we have one, or pyiqa's everywhere
FAST_SSIM = "ggt-ssim-fft"        # the name reports record for eval/ssim.py's kernel
# pyiqa SSIM options eval/ssim.py reproduces; 'convention' is ours (not passed to pyiqa).
_SSIM_OPTIONS = {"test_y_channel", "color_space", "downsample", "crop_border", "convention"}


def pyiqa_version() -> str:
    from importlib.metadata import version

    return version("pyiqa")


def check_pyiqa(protocol: Protocol) -> None:
    from packaging.specifiers import SpecifierSet

    have = pyiqa_version()
    if protocol.pyiqa and have not in SpecifierSet(protocol.pyiqa):
        raise MetricError(f"protocol {protocol.name!r} is defined for pyiqa {protocol.pyiqa}, but "
                          f"pyiqa {have} is installed; scores would not be comparable. "
                          f"Install a matching pyiqa (pip install 'pyiqa{protocol.pyiqa}').")


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise MetricError(f"--device {device}: CUDA is not available here (use --device cpu or auto)")
    if device != "cpu" and not device.startswith("cuda"):
        raise MetricError(f"--device must be auto, cpu or cuda[:N], got {device!r}")
    return device


def build_pyiqa(spec: MetricSpec, device: str, pretrained: bool = True):
    """pyiqa's own metric object, built with the protocol's options (downloads if allowed)."""
    import pyiqa

    options = spec.pyiqa_options()
    if not pretrained:
        options["pretrained"] = False
    try:
        # pyiqa prints "Loading pretrained model ..." on stdout; keep ours clean for reports.
        with contextlib.redirect_stdout(io.StringIO()):
            return pyiqa.create_metric(spec.pyiqa, device=device, **options)
    except Exception as e:  # noqa: BLE001 (pyiqa raises anything while building a metric)
        raise MetricError(f"metric {spec.name!r}: pyiqa could not build {spec.pyiqa!r} with "
                          f"{options} ({type(e).__name__}: {e})") from None


class Scorer:
    """A protocol metric ready to score batches.

    ``unweighted=True`` builds pyiqa's real architecture without pretrained weights,
    to test plumbing (batching, devices, caching) where the weights cannot be had;
    reports refuse such scores.
    """

    def __init__(self, spec: MetricSpec, device: str, unweighted: bool = False, kernel: str = "fast"):
        import torch

        if kernel not in KERNELS:
            raise MetricError(f"--kernel must be one of {', '.join(KERNELS)}, got {kernel!r}")
        self.spec, self.device, self.unweighted = spec, device, unweighted
        self.dtype = torch.float64 if spec.dtype == "float64" else torch.float32
        fast, convention = _fast_ssim(spec), dict(spec.options).get("convention", "pyiqa")
        # On a GPU pyiqa's own conv2d is fast: ours runs there only for what pyiqa cannot compute.
        if fast and kernel == "fast" and (device == "cpu" or convention != "pyiqa"):
            self.kernel, self.model = FAST_SSIM, fast
        elif convention != "pyiqa":
            raise MetricError(f"metric {spec.name!r}: the {convention} SSIM convention (Y not rounded, "
                              f"contrast term not clamped) has no pyiqa equivalent; score it with --kernel fast")
        else:
            self.kernel, self.model = "pyiqa", build_pyiqa(spec, device, pretrained=not unweighted)

    @property
    def name(self) -> str:
        return self.spec.name

    def __call__(self, pred, gt=None) -> np.ndarray:
        """Scores for a batch: ``pred`` (and ``gt`` for FR) are (N, 3, H, W) tensors in [0, 1]."""
        import torch

        pred = crop_to_multiple(pred.to(self.device, self.dtype), self.spec.crop_to_multiple)
        if gt is not None:
            gt = crop_to_multiple(gt.to(self.device, self.dtype), self.spec.crop_to_multiple)
        with torch.no_grad():
            if self.spec.pyiqa in ONE_AT_A_TIME:
                out = torch.cat([self._run(pred[i:i + 1].clone(), None if gt is None else gt[i:i + 1].clone())
                                 .reshape(1) for i in range(pred.shape[0])])
            else:
                out = self._run(pred, gt)
        return out.detach().reshape(pred.shape[0]).to("cpu", torch.float64).numpy()

    def _run(self, pred, gt):
        return self.model(pred, gt) if self.spec.kind == "FR" else self.model(pred)


# pyiqa metrics that take one image per call, on a copy: AFINE normalises its input in place
# (it would change the batch every later metric reads) and its score mapping branches on a
# tensor (`if exp_pow >= 10`), which fails for a batch of more than one (archs/afine_arch.py).
ONE_AT_A_TIME = frozenset({"afine_nr", "afine_fr", "afine_all", "afine_all_scale"})


def crop_to_multiple(batch, multiple: int):
    """The top-left crop of (N, C, H, W) ``batch`` to sides that are multiples of ``multiple``
    (HarnessIR's rule for AFINE: never a centre crop, which would cut each method's outputs
    differently, nor a resize, which would change the sharpness being measured)."""
    if multiple <= 1:
        return batch
    h, w = batch.shape[-2:]
    return batch[..., :h - h % multiple, :w - w % multiple]


def kernels(scorers) -> dict[str, str]:
    """What computed each metric, for the report's fingerprint: ``pyiqa`` or one of ours."""
    return {s.name: getattr(s, "kernel", "pyiqa") for s in scorers}


def _fast_ssim(spec: MetricSpec):
    """eval/ssim.py's kernel for this metric with its options bound, or None where it has none."""
    options = dict(spec.options)
    if spec.pyiqa != "ssim" or set(options) - _SSIM_OPTIONS or not options.get("test_y_channel", True):
        return None
    convention = options.get("convention", "pyiqa")
    if convention not in ("pyiqa", "basicsr"):
        raise MetricError(f"metric {spec.name!r}: convention must be pyiqa or basicsr, got {convention!r}")
    if convention == "basicsr" and (options.get("color_space") != "ycbcr" or options.get("downsample")):
        raise MetricError(f"metric {spec.name!r}: the basicsr convention is SSIM on the Y of YCbCr "
                          f"without downsampling (color_space: ycbcr, downsample: false)")

    def model(pred, gt):
        import torch

        from . import ssim

        # pyiqa's defaults where the protocol leaves an option out (SSIM.__init__'s).
        return torch.from_numpy(ssim.ssim(pred, gt, convention, bool(options.get("downsample", False)),
                                          int(options.get("crop_border", 0)),
                                          options.get("color_space", "yiq")))
    return model
