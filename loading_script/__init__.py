"""The `datasets` builder for a raw GGT-100K release (installed as ``ggt_dataset.loading_script``).

Since datasets 4.0, ``load_dataset`` no longer runs loading scripts; a builder
class still works when imported::

    from ggt_dataset.loading_script import GGT100K

    builder = GGT100K(data_dir="/data/GGT-100K-raw", config_name="rain")
    builder.download_and_prepare(file_format="parquet")
    ds = builder.as_dataset(split="test")

``ggt build`` writes the Hub-ready folder (card, per-category shards, manifest,
resume) from the same readers and the same rows.
"""

from .builder import GGT100K, GGTConfig

__all__ = ["GGT100K", "GGTConfig"]
