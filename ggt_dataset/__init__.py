"""ggt-100k: the GGT-100K dataset as software.

    >>> import ggt_dataset
    >>> ggt_dataset.CATEGORIES
    ('mixed', 'rain', 'haze', 'snow', 'low_light', 'old_photo')

Nothing heavy is imported here: ``datasets`` (with pandas) takes most of a second,
and ``ggt VERB --help`` imports this package. ``FEATURES`` and ``load`` bring it in
on first use.
"""

from ._version import __version__
from .schema import CATEGORIES, SPLITS


def load(*args, **kwargs):
    """Load a built GGT-100K from a local folder or the Hub; see :func:`ggt_dataset.loading.load`."""
    from .loading import load as _load

    return _load(*args, **kwargs)


def __getattr__(name: str):
    if name == "FEATURES":   # PEP 562: the pair schema's Features need `datasets`
        from . import schema

        return schema.FEATURES
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["CATEGORIES", "FEATURES", "SPLITS", "__version__", "load"]
