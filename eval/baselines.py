"""Baseline predictions for a split: what a submission looks like, and references to compare with.

  identity    the LQ image itself, byte for byte: the score of doing nothing. Not a floor on
              fidelity metrics (PSNR, SSIM): a restorer that gets tone or detail wrong can fall
              below it; a restorer should beat it on the perceptual and no-reference metrics
  classical   ggt_dataset.restore: OpenCV denoise + dehaze + brighten + contrast
Written as ``OUT/<id>.png``, one file per pair, each renamed into place when complete
(``ids.id_path``: an id that would land outside OUT is refused).
"""

from __future__ import annotations

import io

from PIL import Image

from ..atomic import write_bytes
from ..errors import GGTError
from ..ids import id_path
from .references import open_references

BASELINES = ("identity", "classical")


def _classical(data: bytes, name: str) -> bytes:
    from ..restore import restore_png

    return restore_png(data, name)[0]


def run_baseline(name: str, dataset: str, out: str, split: str = "test", progress: bool = False) -> int:
    """Write baseline ``name``'s predictions for ``split`` of ``dataset`` into ``out``; returns the count."""
    if name not in BASELINES:
        raise GGTError(f"unknown baseline {name!r}; choose from {', '.join(BASELINES)}")
    refs = open_references(dataset, split)
    from tqdm.auto import tqdm

    n = 0
    for pair_id, data in tqdm(refs.iter_lq(set(refs.ids)), total=len(refs.ids), desc=name,
                              disable=not progress):
        if name == "identity":
            fmt = Image.open(io.BytesIO(data)).format or "PNG"
            ext, body = "." + {"JPEG": "jpg"}.get(fmt, fmt.lower()), data
        else:
            ext, body = ".png", _classical(data, f"{dataset} (lq {pair_id})")
        write_bytes(id_path(out, pair_id, ext, where=f"{dataset} split {split}"), body, durable=False)
        n += 1
    return n
