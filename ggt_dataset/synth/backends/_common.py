"""Helpers every provider client shares: lazy SDK import, Retry-After, image checks, prices.

Kept out of the provider modules so that each of them reads as "build request, call,
map the answer", and so that the same rules (what counts as transient, how a price is
computed) hold for every provider.
"""

from __future__ import annotations

import contextlib
import email.utils
import importlib
import io
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from ...errors import GGTError
from ..backend import BackendError

# Which pip extra brings which SDK; the message names the extra, not the bare package,
# so that the versions pyproject pins are the ones installed.
_EXTRA_OF = {"google.genai": ("google-genai", "gemini"), "openai": ("openai", "openai"),
             "diffusers": ("diffusers", "diffusers"), "torch": ("torch", "diffusers")}


def require(module: str, what: str) -> ModuleType:
    """Import an optional SDK, or raise a GGTError that names the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        package, extra = _EXTRA_OF.get(module, (module, module))
        raise GGTError(f"{what} needs the {package!r} package, which is not installed here ({e}). "
                       f"Install it with: pip install 'ggt-100k[{extra}]'") from e


def api_key(explicit: str | None, env_names: tuple[str, ...], provider: str) -> str:
    """The key passed in, else the first of ``env_names`` that is set."""
    if explicit:
        return explicit
    for name in env_names:
        if os.environ.get(name):
            return os.environ[name]
    raise BackendError(f"no {provider} API key: expected api_key= or one of the environment variables "
                       f"{', '.join(env_names)}, found none set. Export one and run again.")


def parse_retry_after(headers: Any) -> float | None:
    """Seconds to wait from ``retry-after-ms``, ``Retry-After`` (seconds or an HTTP date), or None.

    RFC 9110 section 10.2.3 allows either delay-seconds or an HTTP-date; OpenAI also sends
    ``retry-after-ms`` (its SDK reads it first, see openai/_base_client.py).
    """
    if headers is None:
        return None
    get = headers.get
    ms = get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = get("retry-after") or get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return None if parsed is None else max(0.0, parsed.timestamp() - time.time())


def parse_duration(text: str | None) -> float | None:
    """A google.protobuf.Duration in JSON form ("2s", "1.5s") as seconds."""
    if not text or not text.endswith("s"):
        return None
    try:
        return float(text[:-1])
    except ValueError:
        return None


def check_image(data: bytes, provider: str, cost: float = 0.0) -> tuple[int, int, str]:
    """Decode ``data`` fully with Pillow; return (width, height, format) or raise BackendError.

    ``cost``: what the answer was billed; the error carries it, so the journal counts it
    (a malformed image is still a paid answer, and a budget must see it)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            return im.width, im.height, (im.format or "").lower()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise BackendError(f"{provider} returned a malformed image: {len(data)} bytes that Pillow cannot "
                           f"decode ({e}). Expected a PNG/JPEG/WebP; the call is not retried.", cost=cost) from e


@dataclass(frozen=True)
class Price:
    """USD per 1M tokens. ``image_input`` defaults to ``text_input`` where a provider prices them alike."""

    text_input: float
    text_output: float
    image_output: float = 0.0
    image_input: float | None = None

    def __post_init__(self) -> None:
        # a NaN rate makes every cost NaN: the budget never stops and SQLite stores NULL
        rates = [v for v in (self.text_input, self.text_output, self.image_output, self.image_input) if v is not None]
        if not all(isinstance(v, (int, float)) and math.isfinite(v) and v >= 0 for v in rates):
            raise GGTError(f"price {self}: every rate must be a finite number >= 0 (USD per 1M tokens)")

    @classmethod
    def parse(cls, text: str, option: str = "--price", text_only: bool = False) -> Price:
        """A price as typed: ``TEXT_IN,TEXT_OUT`` for a VLM (``text_only``), ``TEXT_IN,TEXT_OUT,IMAGE_OUT[,IMAGE_IN]``
        for an image editor; USD per 1M tokens. ``option`` names it in the error.

            >>> Price.parse("0.5,3,60")
            Price(text_input=0.5, text_output=3.0, image_output=60.0, image_input=None)
        """
        try:
            values = [float(v) for v in text.split(",")]
        except ValueError:
            values = []
        sizes, shape = ((2,), "TEXT_IN,TEXT_OUT") if text_only else ((3, 4), "TEXT_IN,TEXT_OUT,IMAGE_OUT[,IMAGE_IN]")
        # float() reads "nan" and "inf": a NaN price fails every comparison (and SQLite stores it as NULL)
        if len(values) not in sizes or not all(math.isfinite(v) and v >= 0 for v in values):
            raise GGTError(f"{option} {text!r}: expected {shape}, finite numbers >= 0, USD per 1M tokens (e.g. "
                           f"{'1.5,9' if text_only else '0.5,3,60'})")
        if text_only:
            return cls(text_input=values[0], text_output=values[1])
        return cls(text_input=values[0], text_output=values[1], image_output=values[2],
                   image_input=values[3] if len(values) == 4 else None)

    def cost(self, *, text_in: int = 0, image_in: int = 0, text_out: int = 0, image_out: int = 0) -> float:
        image_in_rate = self.text_input if self.image_input is None else self.image_input
        total = (text_in * self.text_input + image_in * image_in_rate
                 + text_out * self.text_output + image_out * self.image_output)
        return round(total / 1_000_000, 8)


class Priced:
    """For clients that price their calls from a table: ``_price`` is None for an unknown model."""

    _price: Price | None

    @property
    def price_known(self) -> bool:
        """False for a model missing from the price table (its calls then cost 0 in the journal)."""
        return self._price is not None


def price_for(table: dict[str, Price], model: str, override: Price | None) -> Price | None:
    """The price of ``model``: an explicit override, an exact id, or the longest id it starts with
    (so dated snapshots such as ``gpt-image-2-2026-04-21`` find ``gpt-image-2``)."""
    if override is not None:
        return override
    if model in table:
        return table[model]
    prefixes = [k for k in table if model.startswith(k + "-")]
    return table[max(prefixes, key=len)] if prefixes else None


@contextlib.contextmanager
def provider_errors(map_error: Callable[[BaseException, str], BaseException], model: str) -> Iterator[None]:
    """Re-raise an SDK or transport error as backend.py's TransientError/BackendError (unknown ones as they are)."""
    try:
        yield
    except Exception as e:
        mapped = map_error(e, model)
        if mapped is e:
            raise
        raise mapped from e
