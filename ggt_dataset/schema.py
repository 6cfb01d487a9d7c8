"""The pair schema: the one definition of a GGT pair that everything else imports.

A row is one real-world low-quality photo (``lq``), its generated high-quality
target (``hq``), the degradation ``category`` and nullable metadata. Images are
stored as the bytes they were released in (no re-encode).

``FEATURES`` (and ``COLUMNS``) are made on first use: they need ``datasets``, which
takes most of a second to import, and the names and spellings here are all that
``ggt --help`` and the raw-release readers need.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import datasets

# Bump when a column is added, removed or changes meaning: it is part of every
# build's fingerprint, so a resumed build never mixes shards of two schemas.
SCHEMA_VERSION = 1

# The six categories of the paper, in the paper's order. The order is fixed
# here (not discovered) so that shard layout and card tables are deterministic.
CATEGORIES: tuple[str, ...] = ("mixed", "rain", "haze", "snow", "low_light", "old_photo")

# Spellings met in raw trees. Keys are compared after lower-casing and turning
# "-", " " and "." into "_".
CATEGORY_ALIASES: dict[str, str] = {
    "mixed": "mixed", "general": "mixed", "general_mixed": "mixed", "mix": "mixed",
    "mixed_degradation": "mixed",
    "rain": "rain", "rainy": "rain", "derain": "rain", "deraining": "rain",
    "haze": "haze", "hazy": "haze", "dehaze": "haze", "dehazing": "haze", "fog": "haze", "foggy": "haze",
    "snow": "snow", "snowy": "snow", "desnow": "snow", "desnowing": "snow",
    "low_light": "low_light", "lowlight": "low_light", "dark": "low_light", "night": "low_light",
    "old_photo": "old_photo", "oldphoto": "old_photo", "old": "old_photo", "old_photos": "old_photo",
    "oldphotos": "old_photo", "old_photograph": "old_photo",
}

SPLITS: tuple[str, ...] = ("train", "test")
SPLIT_ALIASES: dict[str, str] = {"train": "train", "training": "train", "trainset": "train",
                                 "test": "test", "testing": "test", "testset": "test"}

# Which image of the pair a folder holds.
ROLE_ALIASES: dict[str, str] = {
    "lq": "lq", "lr": "lq", "input": "lq", "inputs": "lq", "degraded": "lq", "low_quality": "lq",
    "hq": "hq", "gt": "hq", "target": "hq", "targets": "hq", "groundtruth": "hq",
    "ground_truth": "hq", "high_quality": "hq", "clean": "hq",
}

# Hard-coded (not taken from PIL's registry) so that which files a build picks up
# does not change with the Pillow version installed.
IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}
)

# Column names, in table order.
ID, LQ, HQ, CATEGORY = "id", "lq", "hq", "category"
QC_SCORES = "qc_scores"
# Made on first use (module __getattr__ below); annotated here so readers and type checkers see them.
FEATURES: datasets.Features
COLUMNS: tuple[str, ...]


def _features() -> datasets.Features:
    import datasets

    return datasets.Features({
        ID: datasets.Value("string"),
        LQ: datasets.Image(),
        HQ: datasets.Image(),
        CATEGORY: datasets.Value("string"),
        # Where the LQ photo came from (a source dataset, a camera, a URL) and its licence.
        "source": datasets.Value("string"),
        "license": datasets.Value("string"),
        # Sizes as `datasets` decodes them (EXIF orientation applied).
        "lq_width": datasets.Value("int32"),
        "lq_height": datasets.Value("int32"),
        "hq_width": datasets.Value("int32"),
        "hq_height": datasets.Value("int32"),
        # How the HQ target was made.
        "generator": datasets.Value("string"),
        "prompt": datasets.Value("string"),
        # Quality-control scores, one entry per score the release carries, sorted by name.
        QC_SCORES: datasets.List({"name": datasets.Value("string"), "score": datasets.Value("float64")}),
        # sha256 of the original image bytes, as stored in lq.bytes / hq.bytes.
        "lq_sha256": datasets.Value("string"),
        "hq_sha256": datasets.Value("string"),
    })


def __getattr__(name: str):
    # PEP 562: called only while the name is missing; after the first use both are plain globals.
    if name not in ("FEATURES", "COLUMNS"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    global FEATURES, COLUMNS
    FEATURES = _features()
    COLUMNS = tuple(FEATURES)
    return globals()[name]


IMAGE_COLUMNS: tuple[str, ...] = (LQ, HQ)
# Free-form string metadata a raw release may supply per pair.
TEXT_METADATA: tuple[str, ...] = ("source", "license", "generator", "prompt")


def _key(name: str) -> str:
    return name.strip().lower().replace("-", "_").replace(" ", "_").replace(".", "_")


# Cached: a 100K-pair tree asks about the same few folder names millions of times.
@functools.lru_cache(maxsize=4096)
def normalize_category(name: str) -> str | None:
    """The canonical category for a raw spelling, or None when it is not one."""
    return CATEGORY_ALIASES.get(_key(name))


@functools.lru_cache(maxsize=4096)
def normalize_split(name: str) -> str | None:
    return SPLIT_ALIASES.get(_key(name))


@functools.lru_cache(maxsize=4096)
def normalize_role(name: str) -> str | None:
    return ROLE_ALIASES.get(_key(name))
