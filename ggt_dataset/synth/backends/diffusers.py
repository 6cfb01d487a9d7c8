"""An open image-editing model run locally with ``diffusers`` (Qwen-Image-Edit, FLUX.1 Kontext).

For users who cannot send photos to a provider, or want ground truth they can regenerate
bit for bit: the weights run on your GPU, the seed fixes the sampler, and nothing is paid.
The pipeline class comes from diffusers (``QwenImageEditPlusPipeline`` for
Qwen-Image-Edit-2509, as on its model card and in diffusers' QwenImage docs;
``FluxKontextPipeline`` for FLUX.1-Kontext-dev), loaded once with ``from_pretrained``
(``local_files_only`` when ``HF_HUB_OFFLINE`` is set) and called in a worker thread, one
image at a time behind a lock, so the async engine keeps its event loop.

Failures say what to do: diffusers or torch missing names the pip extra, weights missing
names the repo and the download command, no CUDA says so.
"""

from __future__ import annotations

import asyncio
import io
import os
import time
from pathlib import Path
from typing import Any

from ...errors import GGTError
from ..backend import EditRequest, EditResult
from ._common import require

DEFAULT_MODEL = "Qwen/Qwen-Image-Edit-2509"     # Apache-2.0; FLUX.1-Kontext-dev is non-commercial

# Known repos -> (diffusers pipeline class, call defaults from each model card).
PIPELINES: dict[str, tuple[str, dict[str, Any]]] = {
    "Qwen/Qwen-Image-Edit": ("QwenImageEditPipeline",
                             {"num_inference_steps": 50, "true_cfg_scale": 4.0, "negative_prompt": " "}),
    "Qwen/Qwen-Image-Edit-2509": ("QwenImageEditPlusPipeline",
                                  {"num_inference_steps": 40, "true_cfg_scale": 4.0, "negative_prompt": " ",
                                   "guidance_scale": 1.0}),
    "black-forest-labs/FLUX.1-Kontext-dev": ("FluxKontextPipeline",
                                             {"num_inference_steps": 28, "guidance_scale": 2.5}),
}


class DiffusersBackend:
    """Local image editing with a diffusers pipeline.

    Args:
        model: a Hub repo id or a local folder holding ``model_index.json``.
        pipeline: diffusers class name for a repo not in :data:`PIPELINES` (default: ``DiffusionPipeline``).
        device: ``"cuda"`` (default), ``"cuda:1"``, or ``"cpu"`` (works, but takes many minutes an image).
        dtype: torch dtype name for the weights.
        steps: sampler steps; None uses the model card's value.
        cache_dir: Hugging Face cache to read weights from (default: the hub cache).
        call_options: extra keyword arguments for the pipeline call (override the defaults).
    """

    name = "diffusers"
    foundation_model = True

    def __init__(self, model: str | None = None, *, pipeline: str | None = None, device: str = "cuda",
                 dtype: str = "bfloat16", steps: int | None = None, cache_dir: str | None = None,
                 call_options: dict[str, Any] | None = None):
        self.model = model or DEFAULT_MODEL
        self.device, self.dtype, self.cache_dir = device, dtype, cache_dir
        known_class, defaults = PIPELINES.get(self.model, ("DiffusionPipeline", {}))
        self.pipeline_class = pipeline or known_class
        self.call_options = {**defaults, **({"num_inference_steps": steps} if steps else {}), **(call_options or {})}
        self._diffusers = require("diffusers", "the diffusers backend")
        self._torch = require("torch", "the diffusers backend")
        self._check_device()
        self._check_weights()
        self._pipe: Any = None
        self._lock = asyncio.Lock()

    def _check_device(self) -> None:
        if self.device.startswith("cuda") and not self._torch.cuda.is_available():
            raise GGTError(f"the diffusers backend was asked for device {self.device!r}, but torch sees no CUDA "
                           f"device here (torch {self._torch.__version__}). Run on a machine with an NVIDIA GPU, "
                           "or pass device='cpu' (minutes per image).")

    def offline(self) -> bool:
        return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")

    def _check_weights(self) -> None:
        """Fail now, not after minutes of loading, when offline and the weights are not on disk."""
        if Path(self.model).is_dir():
            if not (Path(self.model) / "model_index.json").is_file():
                raise GGTError(f"{self.model} is a folder without model_index.json; expected a diffusers "
                               "pipeline folder (as `hf download REPO --local-dir FOLDER` writes).")
            return
        if not self.offline():
            return
        from huggingface_hub import try_to_load_from_cache

        if not isinstance(try_to_load_from_cache(self.model, "model_index.json", cache_dir=self.cache_dir), str):
            raise GGTError(self._missing_weights("HF_HUB_OFFLINE is set and"))

    def _missing_weights(self, why: str) -> str:
        where = self.cache_dir or "the Hugging Face cache"
        return (f"{why} the weights of {self.model!r} are not in {where}. Download them once on a machine with "
                f"internet: `hf download {self.model}` (or huggingface_hub.snapshot_download), then copy the "
                "cache here or pass a local folder as the model.")

    def load(self) -> Any:
        """Load the pipeline onto the device (blocking; minutes for a 20B model). Called once."""
        if self._pipe is not None:
            return self._pipe
        cls = getattr(self._diffusers, self.pipeline_class, None)
        if cls is None:
            raise GGTError(f"diffusers {self._diffusers.__version__} has no class {self.pipeline_class!r}; "
                           "upgrade it (pip install -U 'ggt-100k[diffusers]') or pass pipeline= with a class it has.")
        try:
            pipe = cls.from_pretrained(self.model, dtype=getattr(self._torch, self.dtype),
                                       local_files_only=self.offline(), cache_dir=self.cache_dir)
        except (OSError, ValueError) as e:     # huggingface_hub's not-found errors are OSErrors
            raise GGTError(self._missing_weights(f"loading failed ({type(e).__name__}: {e});")) from e
        self._pipe = pipe.to(self.device)
        return self._pipe

    async def edit(self, request: EditRequest) -> EditResult:
        async with self._lock:           # one GPU pipeline: one image at a time
            return await asyncio.to_thread(self._run, request)

    def _run(self, request: EditRequest) -> EditResult:
        from PIL import Image

        pipe = self.load()
        started = time.monotonic()
        with Image.open(io.BytesIO(request.image)) as im:
            image = im.convert("RGB")
        generator = (self._torch.Generator(device=self.device).manual_seed(request.seed)
                     if request.seed is not None else None)
        out = pipe(image=image, prompt=request.prompt, generator=generator, **self.call_options).images[0]
        buf = io.BytesIO()
        out.save(buf, format="PNG")
        meta = {"seconds": round(time.monotonic() - started, 3), "device": self.device, "seed": request.seed,
                "pipeline": self.pipeline_class, "width": out.width, "height": out.height,
                **{k: v for k, v in self.call_options.items() if isinstance(v, (int, float, str))}}
        return EditResult(status="ok", image=buf.getvalue(), model=self.model, cost=0.0, meta=meta)

    async def aclose(self) -> None:
        self._pipe = None
