"""The classical backend: ``ggt_dataset.restore`` (OpenCV) behind the backend interface.

A baseline, not a foundation model: it denoises, dehazes, brightens and adds
contrast where simple estimates say so, ignores the prompt, runs offline on the
CPU and costs nothing. Releases made with it say so in ``generator`` and on the card.
"""

from __future__ import annotations

import asyncio

from ..backend import BackendError, EditRequest, EditResult

MODEL = "opencv-restore-v1"


def restore_bytes(image: bytes, name: str) -> tuple[bytes, list[str]]:
    """``restore.restore_png``, an undecodable image being the backend's final error."""
    from ...eval.decode import ImageDecodeError
    from ...restore import restore_png

    try:
        return restore_png(image, name)
    except ImageDecodeError as e:
        raise BackendError(str(e)) from None


class ClassicalBackend:
    name = "classical"
    model = MODEL
    foundation_model = False

    def __init__(self, model: str | None = None, **options):
        if model not in (None, MODEL):
            raise BackendError(f"the classical backend has one model, {MODEL!r}; got {model!r}")

    async def edit(self, request: EditRequest) -> EditResult:
        # CPU work in a thread, so the event loop keeps serving other pairs meanwhile.
        data, steps = await asyncio.to_thread(restore_bytes, request.image, request.pair_id)
        return EditResult(status="ok", image=data, model=MODEL, cost=0.0, currency="USD",
                          detail="; ".join(steps) or "no step needed", meta={"steps": steps})

    async def aclose(self) -> None:
        return None
