"""``ggt sample``: a small raw release in GGT-100K's layout, made offline.

Clean crops of images that scikit-image ships are the HQ targets; each LQ is
the crop degraded for its category (see :mod:`ggt_dataset.degrade`). The pack
is written as a folder tree ``<split>/{LQ,GT}/<category>/<name>`` plus a
``metadata.jsonl`` manifest that carries each pair's source, licence and a
measured QC score (PSNR of LQ against HQ), so it exercises the whole schema.
Same arguments, same bytes.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from dataclasses import dataclass

import numpy as np
import yaml
from PIL import Image

from .atomic import write_text
from .degrade import DEGRADATIONS
from .errors import GGTError
from .raw_release import RELEASE_INFO_FILE
from .schema import CATEGORIES


@dataclass(frozen=True)
class Source:
    name: str  # scikit-image's name for it (skimage.data.<name>)
    license: str
    credit: str


# Colour images only, each with the licence scikit-image documents for it.
SOURCES: tuple[Source, ...] = (
    Source("astronaut", "public domain", "NASA Great Images database"),
    Source("chelsea", "CC0-1.0", "Stefan van der Walt"),
    Source("coffee", "CC0-1.0", "Rachel Michetti"),
    Source("rocket", "public domain", "SpaceX"),
    Source("hubble_deep_field", "public domain", "NASA, Hubble Space Telescope"),
    Source("retina", "CC0-1.0", "Mikael Häggström, via Wikimedia Commons"),
    Source("immunohistochemistry", "no known copyright restrictions",
           "Center for Microscopy And Molecular Imaging (CMMI)"),
)
# Only a folder carrying this file (written by us) is ever replaced.
SAMPLE_MARKER = ".ggt-sample"
# Formats as a real release mixes them: the JPEG-degraded categories ship JPEG LQs.
LQ_FORMAT = {"mixed": "JPEG", "old_photo": "JPEG"}


def _load_source(name: str) -> np.ndarray:
    try:
        import skimage.data
    except ImportError:
        raise GGTError("the sample pack is cut from scikit-image's images: "
                       "pip install 'ggt-100k[sample]'") from None
    return np.asarray(getattr(skimage.data, name)())[..., :3]


def _crop(img: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    side = int(min(h, w) * rng.uniform(0.55, 1.0))
    y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    crop = Image.fromarray(img[y:y + side, x:x + side])
    return np.asarray(crop.resize((size, size), Image.Resampling.LANCZOS))


def _encode(arr: np.ndarray, fmt: str) -> bytes:
    buf = io.BytesIO()
    if fmt == "JPEG":
        Image.fromarray(arr).save(buf, format="JPEG", quality=92)
    else:
        Image.fromarray(arr).save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return round(10 * np.log10(255.0**2 / mse), 4) if mse > 0 else float("inf")


def write_sample(raw: str, *, train_per_category: int = 6, test_per_category: int = 2,
                 size: int = 256, seed: int = 0) -> int:
    """Write the sample pack to ``raw`` (replacing a previous pack there); returns the pair count."""
    if os.path.exists(raw) and os.listdir(raw) and not os.path.isfile(os.path.join(raw, SAMPLE_MARKER)):
        raise GGTError(f"{raw}: exists and is not a sample pack; choose an empty or new folder")
    sources = {s.name: _load_source(s.name) for s in SOURCES}
    tmp = raw.rstrip("/") + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    rows = []
    for split, per_category in (("train", train_per_category), ("test", test_per_category)):
        for ci, category in enumerate(CATEGORIES):
            for i in range(per_category):
                rng = np.random.default_rng([seed, ci, i, split == "test"])
                src = SOURCES[(i + ci) % len(SOURCES)]
                rows.append(_write_pair(tmp, split, category, f"{src.name}_{i:03d}", src,
                                        sources[src.name], size, rng))
    with open(os.path.join(tmp, "metadata.jsonl"), "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r, sort_keys=True) + "\n" for r in rows)
    _write_info(tmp)
    write_text(os.path.join(tmp, SAMPLE_MARKER), "written by `ggt sample`; safe to replace\n")
    shutil.rmtree(raw, ignore_errors=True)
    os.replace(tmp, raw)
    return len(rows)


def _write_pair(root: str, split: str, category: str, name: str, src: Source, image: np.ndarray,
                size: int, rng: np.random.Generator) -> dict:
    hq = _crop(image, size, rng)
    lq = DEGRADATIONS[category](hq, rng)
    fmt = LQ_FORMAT.get(category, "PNG")
    lq_bytes = _encode(lq, fmt)
    lq_decoded = np.asarray(Image.open(io.BytesIO(lq_bytes)).convert("RGB"))
    paths = {"lq_file_name": f"{split}/LQ/{category}/{name}.{'jpg' if fmt == 'JPEG' else 'png'}",
             "hq_file_name": f"{split}/GT/{category}/{name}.png"}
    for key, data in (("lq_file_name", lq_bytes), ("hq_file_name", _encode(hq, "PNG"))):
        os.makedirs(os.path.dirname(os.path.join(root, paths[key])), exist_ok=True)
        with open(os.path.join(root, paths[key]), "wb") as f:
            f.write(data)
    return {**paths, "split": split, "category": category,
            "source": f"scikit-image sample '{src.name}' ({src.credit}); LQ synthesized by "
                      f"ggt_dataset.degrade.{category}",
            "license": src.license, "qc_lq_psnr": _psnr(lq_decoded, hq)}


def _write_info(root: str) -> None:
    licences = "\n".join(f"| {s.name} | {s.license} | {s.credit} |" for s in SOURCES)
    write_text(os.path.join(root, RELEASE_INFO_FILE), yaml.safe_dump({
        "pretty_name": "GGT-100K sample pack",
        "license": "other",  # the photos' own terms, which differ (each pair's `license` column)
        "license_name": "scikit-image-data",
        "license_link": "https://scikit-image.org/docs/stable/api/skimage.data.html",
        "description": ("A small stand-in for GGT-100K, made offline by `ggt sample`: clean crops of "
                        "scikit-image's sample photos are the HQ targets, and each LQ is that crop "
                        "degraded for its category. Unlike GGT-100K, the LQ is synthetic and the HQ "
                        "is the original; use it to test pipelines, not to train or rank models."),
        "source_license": "Each pair's `license` column gives its source photo's terms.",
        "homepage": "https://scikit-image.org/docs/stable/api/skimage.data.html",
        "paper": "",
        "citation": "",
        "tags": ["image-restoration", "sample"],
    }, sort_keys=False, width=100))
    write_text(os.path.join(root, "README.md"),
               "# GGT-100K sample pack (raw)\n\nMade by `ggt sample`. Source images and their licences:\n\n"
               "| image | licence | credit |\n|---|---|---|\n" + licences + "\n")
