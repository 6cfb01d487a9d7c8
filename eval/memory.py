"""Predictions and references held in memory (lists of images), for the ``evaluate`` module.

Images are encoded losslessly to PNG and then go through exactly the decode rules
and engine that ``ggt score`` uses, so both give the same numbers.
"""

from __future__ import annotations

import hashlib
import io

from PIL import Image

from .predictions import Predictions
from .references import References, fingerprint


def png_bytes(image) -> bytes:
    if isinstance(image, (bytes, bytearray)):
        return bytes(image)
    if isinstance(image, dict) and image.get("bytes"):
        return image["bytes"]
    if not isinstance(image, Image.Image):
        raise TypeError(f"expected PIL images or encoded bytes, got {type(image).__name__}")
    buf = io.BytesIO()
    image.save(buf, format="PNG")       # lossless; keeps I;16 and palette as they are
    return buf.getvalue()


def in_memory(predictions: list, references: list, categories: list[str] | None = None,
              ids: list[str] | None = None) -> tuple[Predictions, References]:
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    ids = [str(i) for i in (ids or range(len(references)))]
    cats = list(categories) if categories else ["all"] * len(ids)
    if len(cats) != len(ids) or len(ids) != len(references) or len(set(ids)) != len(ids):
        raise ValueError(f"{len(references)} references need as many categories and unique ids; "
                         f"got {len(cats)} categories and {len(set(ids))} unique ids of {len(ids)}")
    pred_data = dict(zip(ids, map(png_bytes, predictions)))
    ref_data = dict(zip(ids, map(png_bytes, references)))
    rows = [(i, c, hashlib.sha256(ref_data[i]).hexdigest()) for i, c in zip(ids, cats)]
    preds = Predictions("predictions", "memory", {i: f"predictions[{k}]" for k, i in enumerate(ids)},
                        {}, pred_data.__getitem__)
    refs = References("references", "memory", ids, dict(zip(ids, cats)), fingerprint(rows),
                      lambda wanted, column: ((i, ref_data[i]) for i in ids if i in wanted))
    return preds, refs
