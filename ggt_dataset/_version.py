"""The installed ggt-100k version, in a module of its own so that any module can state it
without importing the package root (which would tie it into an import cycle)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ggt-100k")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"
