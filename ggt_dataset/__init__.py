"""ggt-100k: the GGT-100K dataset as software.

    >>> import ggt_dataset
    >>> ggt_dataset.CATEGORIES
    ('mixed', 'rain', 'haze', 'snow', 'low_light', 'old_photo')
"""

from importlib.metadata import PackageNotFoundError, version

from .schema import CATEGORIES, FEATURES, SPLITS

try:
    __version__ = version("ggt-100k")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"


def load(*args, **kwargs):
    """Load a built GGT-100K from a local folder or the Hub; see :func:`ggt_dataset.load.load`."""
    from .loading import load as _load

    return _load(*args, **kwargs)


__all__ = ["CATEGORIES", "FEATURES", "SPLITS", "__version__", "load"]
