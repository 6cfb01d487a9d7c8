"""Errors a user can act on. The CLI prints their message and exits non-zero; no traceback."""

from __future__ import annotations


class GGTError(Exception):
    """Base class: the message says what was expected, what was found and what to do."""

    exit_code = 1


class LayoutError(GGTError):
    """A raw release does not fit any layout we read."""


class BadPairError(GGTError):
    """One pair (or one of its images) cannot be packaged as it is."""

    def __init__(self, path: str, reason: str, pair_id: str | None = None):
        self.path, self.reason, self.pair_id = path, reason, pair_id
        super().__init__(f"{path}: {reason}")


class BadIdError(GGTError):
    """A pair id that is not a safe relative path (see ggt_dataset.ids)."""


class BuildError(GGTError):
    """A build cannot start or finish (existing output, bad options, refused input)."""


class VerifyError(GGTError):
    """A built dataset does not match its manifest or card."""


class PublishError(GGTError):
    """The Hub would reject the upload, or the upload failed."""
