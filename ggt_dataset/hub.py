"""When the Hub cannot be asked: one test for it and one message, shared by load, view, score and publish.

huggingface_hub and datasets report a Hub they cannot reach in many shapes (httpx's
ConnectError or timeout, OfflineModeIsEnabled, datasets' ConnectionError "Couldn't reach
...", an upload's RuntimeError wrapping any of these) and never name the endpoint they
tried, which is what a user with HF_ENDPOINT or a proxy needs to see.
"""

from __future__ import annotations

from .errors import GGTError


class HubUnreachableError(GGTError):
    """The Hub (HF_ENDPOINT) did not answer, or HF_HUB_OFFLINE forbids asking it."""


def endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


def offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def _chain(exc: BaseException | None):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) says the Hub could not be asked, rather than what it answered."""
    import httpx2
    from huggingface_hub.errors import OfflineModeIsEnabled

    # Online, not Python's ConnectionError itself: hf_xet raises it for an HTTP error status too
    # (a 501 from the Hub is an answer); datasets' "Couldn't reach" one is chained from httpx's.
    # Offline, datasets re-raises that one "from None", dropping the OfflineModeIsEnabled behind it.
    network = (httpx2.TransportError, OfflineModeIsEnabled, *((ConnectionError,) if offline() else ()))
    return any(isinstance(e, network) for e in _chain(exc))


def unreachable_message(what: str, exc: BaseException) -> str:
    """One line: what failed, the endpoint, why, and what to do."""
    if offline():
        return (f"{what}: HF_HUB_OFFLINE is set, so the Hub at {endpoint()} is not asked; unset "
                "HF_HUB_OFFLINE and run the same command again")
    cause = next((e for e in _chain(exc) if type(e).__module__.startswith("httpx")), exc)
    reason = " ".join(f"{type(cause).__name__}: {cause}".split())
    return (f"{what}: cannot reach the Hub at {endpoint()} ({reason}); check the network (or HF_ENDPOINT) "
            "and run the same command again")
