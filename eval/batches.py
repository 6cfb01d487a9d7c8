"""Decoded images -> (N, 3, H, W) float batches on the metrics' device, each side uploaded once.

One ``Upload`` is one side (predictions or ground truths) of one batch: its integers
stacked once and sent to the device once; every metric's float view of it (float32 or
float64, border-cropped or not) is made there from those integers and kept for the
batch's other metrics, and ``scoring`` shares a ground-truth Upload between submissions.

On CUDA the integers are stacked straight into page-locked (pinned) host memory and
copied with ``non_blocking`` on a side stream: the copy of the next batch runs on the
copy engine while this batch's metrics compute (``batcher.Batcher`` uploads batch k+1
before it runs batch k), and uint8 crosses the bus, a quarter of float32's bytes. On the
CPU the same steps run with no pinning and no stream, so the tests exercise them. Images that
``decode.decode_on`` decoded on the device (opt-in JPEG decoding) are stacked there.

The numbers are the CPU conversion's, bit for bit: ``x.to(dtype) / scale`` with ``scale``
a 0-dim tensor on the device. CUDA divides two tensors exactly (IEEE, correctly rounded);
a Python float divisor would take its ``a * (1 / b)`` shortcut instead
(aten/src/ATen/native/cuda/BinaryDivTrueKernel.cu), up to one ulp away from the CPU's.
"""

from __future__ import annotations

import contextlib

import numpy as np

from .decode import Decoded, host_pixels


def side_stream(device: str):
    """The stream uploads go on: a CUDA side stream, or None on the CPU (no overlap to have)."""
    import torch

    return torch.cuda.Stream(device=torch.device(device)) if device.startswith("cuda") else None


class Upload:
    """One side of one batch on ``device``; ``tensor(dtype, border)`` gives its float views."""

    def __init__(self, arrays: list[Decoded], device: str = "cpu", stream=None):
        import torch

        self.device, self.ready = device, None
        self.views: dict[tuple, torch.Tensor] = {}        # (dtype, border) -> the float batch
        self.ints: torch.Tensor | None = None             # (N, H, W, 3) integers on the device
        if any(isinstance(d.pixels, torch.Tensor) for d in arrays):   # decode_on: JPEGs on the device
            if all(d.scale == 255.0 for d in arrays):
                self.scale = 255.0
                self.ints = torch.stack([_on(d.pixels, device) for d in arrays])
                return
            arrays = [Decoded(host_pixels(d), d.scale, d.note) for d in arrays]    # with 16-bit ones: host
        first = arrays[0]
        if not all(d.scale == first.scale and d.pixels.dtype == first.pixels.dtype for d in arrays):
            # 8- and 16-bit images in one batch: each converted by its own scale on the host (rare).
            self.scale, self.arrays = 1.0, arrays
            return
        self.scale = first.scale
        pin = stream is not None
        # np.stack writes into the (pinned) buffer: no second host copy of the batch.
        host = torch.empty((len(arrays), *first.pixels.shape), dtype=torch.from_numpy(np.empty(0, first.pixels.dtype)).dtype,
                           pin_memory=pin)
        np.stack([d.pixels for d in arrays], out=host.numpy())
        with torch.cuda.stream(stream) if pin else contextlib.nullcontext():
            self.ints = host.to(device, non_blocking=pin)
        if pin:
            self.ready = torch.cuda.Event()
            self.ready.record(stream)
        self.host = host            # alive until the copy is done (the batch's metrics wait for it)

    def tensor(self, dtype, border: int = 0):
        key = (dtype, border)
        if key not in self.views:
            self.views[key] = self._convert(dtype, border)
        return self.views[key]

    def _convert(self, dtype, border: int):
        import torch

        if self.ints is None:
            return self._mixed(dtype, border)
        if self.ready is not None:          # the compute stream waits for the side stream's copy
            current = torch.cuda.current_stream(self.ints.device)
            current.wait_event(self.ready)
            self.ints.record_stream(current)
            self.ready = None
        # Channels first and the border crop on the integers, then one conversion that writes the
        # float batch contiguous (a float copy less than converting first).
        batch = self.ints.permute(0, 3, 1, 2)
        if border:
            batch = batch[..., border:-border, border:-border]
        batch = batch.to(dtype, memory_format=torch.contiguous_format)
        return batch.div_(torch.full((), self.scale, dtype=dtype, device=batch.device))

    def _mixed(self, dtype, border: int):
        import torch

        # As a uniform batch would be: each image converted to dtype, then divided by its scale.
        batch = torch.stack([torch.from_numpy(d.pixels.astype(np.float64)).to(dtype)
                             .div_(torch.full((), d.scale, dtype=dtype)) for d in self.arrays])
        batch = batch.permute(0, 3, 1, 2)
        if border:
            batch = batch[..., border:-border, border:-border]
        return batch.contiguous().to(self.device)


def _on(pixels, device: str):
    """An image's integers as a tensor on ``device`` (a numpy array is copied there)."""
    import torch

    if isinstance(pixels, np.ndarray):
        pixels = torch.from_numpy(np.ascontiguousarray(pixels))
    return pixels.to(device)


def tensor(arrays: list[Decoded], dtype, border: int = 0, device: str = "cpu"):
    """The (N, 3, H, W) batch of ``arrays`` in [0, 1] as ``dtype`` on ``device`` (no overlap: one call)."""
    return Upload(arrays, device).tensor(dtype, border)
