"""ggt_dataset.hub: which failures mean "the Hub could not be asked", and the one message for them."""

from __future__ import annotations

import httpx2
import pytest
from huggingface_hub.errors import LocalEntryNotFoundError, OfflineModeIsEnabled

from ggt_dataset import hub


def _chained(outer: BaseException, cause: BaseException) -> BaseException:
    """``outer`` as ``raise outer from cause`` leaves it."""
    outer.__cause__ = cause
    return outer


@pytest.mark.parametrize("exc, expected", [
    (httpx2.ConnectError("[Errno 111] Connection refused"), True),
    (httpx2.ReadTimeout("timed out"), True),
    (OfflineModeIsEnabled("offline"), True),
    # datasets: ConnectionError("Couldn't reach ...") from LocalEntryNotFoundError from httpx's error
    (_chained(ConnectionError("Couldn't reach 'org/x' on the Hub"),
              _chained(LocalEntryNotFoundError("no cache"), httpx2.ConnectError("refused"))), True),
    # huggingface_hub's LFS upload: RuntimeError("Error while uploading ...") from httpx's error
    (_chained(RuntimeError("Error while uploading 'a.parquet' to the Hub."), httpx2.ConnectError("refused")), True),
    # hf_xet raises Python's ConnectionError for an HTTP status too: the Hub answered
    (ConnectionError("Server error: HTTP status server error (501 Not Implemented)"), False),
    (RuntimeError("Error while uploading 'a.parquet' to the Hub."), False),
    (ValueError("Invalid metadata in README.md."), False),
])
def test_unreachable_online(exc, expected, monkeypatch):
    # huggingface_hub reads HF_HUB_OFFLINE once, at import; this session runs offline (conftest)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    assert hub.unreachable(exc) is expected


def test_unreachable_offline(monkeypatch):
    """Offline, datasets re-raises its ConnectionError "from None": no OfflineModeIsEnabled left to see."""
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    assert hub.unreachable(ConnectionError("Couldn't reach 'org/x' on the Hub (OfflineModeIsEnabled)"))
    assert not hub.unreachable(ValueError("Invalid metadata in README.md."))


def test_message_is_one_line_naming_the_endpoint():
    message = hub.unreachable_message("cannot load org/x", httpx2.ConnectError("[Errno 111]\nrefused"))
    assert "\n" not in message and hub.endpoint() in message and "run the same command again" in message
