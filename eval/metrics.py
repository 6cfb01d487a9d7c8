"""One protocol metric = one pyiqa metric with pinned options, scoring whole batches.

The maths is pyiqa's, untouched: this module only builds the metric with the
protocol's options, feeds it (N, 3, H, W) tensors in [0, 1] on the chosen device,
and returns one float64 per image. Metric facts (kind, direction) come from the
protocol, not from code.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np

from ..errors import GGTError
from .protocol import MetricSpec, Protocol


class MetricError(GGTError):
    """A metric cannot be built or run as the protocol says."""


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

    def __init__(self, spec: MetricSpec, device: str, unweighted: bool = False):
        import torch

        self.spec, self.device, self.unweighted = spec, device, unweighted
        self.dtype = torch.float64 if spec.dtype == "float64" else torch.float32
        self.model = build_pyiqa(spec, device, pretrained=not unweighted)

    @property
    def name(self) -> str:
        return self.spec.name

    def __call__(self, pred, gt=None) -> np.ndarray:
        """Scores for a batch: ``pred`` (and ``gt`` for FR) are (N, 3, H, W) tensors in [0, 1]."""
        import torch

        pred = pred.to(self.device, self.dtype)
        with torch.no_grad():
            if self.spec.kind == "FR":
                out = self.model(pred, gt.to(self.device, self.dtype))
            else:
                out = self.model(pred)
        return out.detach().reshape(pred.shape[0]).to("cpu", torch.float64).numpy()
