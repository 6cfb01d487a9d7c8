"""Backends and VLMs by name: ``make_backend("gemini")``, ``make_vision("openai", "gpt-5.5")``.

The CLI and the engine know providers only by these names. Each class is imported when
asked for, and each SDK only inside its class, so ``import ggt_dataset.synth`` works with
no provider SDK installed, and a missing one is a GGTError naming the pip extra.

    >>> sorted(BACKENDS)
    ['classical', 'diffusers', 'gemini', 'openai']
    >>> sorted(VISION_MODELS)
    ['gemini', 'openai']
"""

from __future__ import annotations

import importlib
from typing import Any

from ...errors import GGTError
from ..backend import Backend, VisionModel

# name -> (module, class). Hard-coded, not discovered: the list of providers is part of
# what a run records, and a typo should fail here rather than load something unexpected.
BACKENDS: dict[str, tuple[str, str]] = {
    "gemini": ("ggt_dataset.synth.backends.gemini", "GeminiBackend"),
    "openai": ("ggt_dataset.synth.backends.openai", "OpenAIImageBackend"),
    "diffusers": ("ggt_dataset.synth.backends.diffusers", "DiffusersBackend"),
    "classical": ("ggt_dataset.synth.backends.classical", "ClassicalBackend"),
}
VISION_MODELS: dict[str, tuple[str, str]] = {
    "gemini": ("ggt_dataset.synth.backends.vision", "GeminiVision"),
    "openai": ("ggt_dataset.synth.backends.vision", "OpenAIVision"),
}


def make_backend(name: str, model: str | None = None, **options: Any) -> Backend:
    """Build the image-editing backend called ``name``.

    Args:
        name: one of :data:`BACKENDS`.
        model: the provider's model id; None takes the backend's default.
        **options: passed to the class (``api_key``, ``base_url``, ``timeout``, ...).
    """
    return _build(BACKENDS, "backend", name, model, options)


def make_vision(name: str, model: str | None = None, **options: Any) -> VisionModel:
    """Build the VLM called ``name`` (one of :data:`VISION_MODELS`); arguments as :func:`make_backend`."""
    return _build(VISION_MODELS, "vision model", name, model, options)


def _build(table: dict[str, tuple[str, str]], kind: str, name: str, model: str | None,
           options: dict[str, Any]) -> Any:
    if name not in table:
        raise GGTError(f"unknown {kind} {name!r}; expected one of {', '.join(sorted(table))}")
    module_name, class_name = table[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name != module_name:
            raise
        raise GGTError(f"the {name} {kind} is not part of this installation ({module_name} is missing); "
                       "update ggt-100k") from e
    cls = getattr(module, class_name)
    return cls(model=model, **options) if model is not None else cls(**options)
