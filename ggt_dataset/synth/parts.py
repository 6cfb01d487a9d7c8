"""What both engines build a pipeline from: the run's settings and, per process, its parts.

Both engines' drivers call :func:`make_parts` with the same :class:`SynthConfig`, so both
run the same caller and QC; the Ray engine's actors build only :func:`make_clients`. This
module sits below both, so neither engine imports the other to get them.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from typing import Any

from . import qc as qc_mod
from .calls import Caller, RetryPolicy
from .journal import Journal
from .out_raw import RESULTS


@dataclass(frozen=True)
class SynthConfig:
    backend: str = "classical"
    model: str | None = None
    prompter: str = "adaptive"
    vlm: str | None = None                  # adaptive prompts with this VLM (None: heuristic analyser)
    vlm_model: str | None = None
    engine: str = "local"
    concurrency: int = 8
    budget: float | None = None
    retry: RetryPolicy = RetryPolicy()  # noqa: RUF009 (frozen, so one shared default is safe)
    split: str = "auto"                     # photos no folder names: LQ_DIR's path, else train (inputs.py)
    category: str | None = None             # None or "auto": folders, else the analyser
    qc: qc_mod.QCConfig = qc_mod.QCConfig()  # noqa: RUF009 (frozen)
    skip_bad: bool = False
    source: str | None = None
    license: str | None = None              # a Hub licence id; None: settled by card_license.resolve
    license_name: str | None = None         # with license `other`, as the Hub needs
    license_link: str | None = None
    name: str | None = None
    seed: int = 0
    ray_actors: int = 2
    ray_address: str | None = None          # join this Ray cluster (None: RAY_ADDRESS, else a local instance)
    options: dict[str, Any] = field(default_factory=dict, compare=False)   # backend/VLM client options

    def settings(self) -> dict:
        """What fixes the generated targets: a later run into the same OUT_RAW must match."""
        return {"backend": self.backend, "model": self.model, "prompter": self.prompter,
                "vlm": self.vlm, "vlm_model": self.vlm_model}


def client_options(base_url: str | None = None, price: str | None = None, vlm_price: str | None = None,
                   judge_price: str | None = None) -> dict[str, dict[str, Any]]:
    """:attr:`SynthConfig.options` from the options' text: every client sends to ``base_url``; each
    price (``--price``, ``--vlm-price``, ``--judge-price``) is parsed by :meth:`Price.parse`."""
    from .backends._common import Price

    client = {"base_url": base_url} if base_url else {}
    return {"backend": {**client, **({"price": Price.parse(price, "--price")} if price else {})},
            "vlm": {**client, **({"price": Price.parse(vlm_price, "--vlm-price", text_only=True)}
                                 if vlm_price else {})},
            "judge": {**client, **({"price": Price.parse(judge_price, "--judge-price", text_only=True)}
                                   if judge_price else {})}}


@dataclass
class Parts:
    """What a pipeline needs, built once per process (or per Ray actor)."""

    journal: Journal
    caller: Caller
    backend: Any
    prompter: Any
    qc: qc_mod.QCConfig
    lq_dir: str
    judge_vision: Any = None
    nr: Any = None                       # qc_quality.NRScorer, built on first use
    nr_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def make_clients(cfg: SynthConfig) -> tuple[Any, Any, Any]:
    """The run's paid clients: the backend, the prompter's VLM and the QC judge (None when unused)."""
    from .backends import make_backend, make_vision

    backend = make_backend(cfg.backend, cfg.model, **cfg.options.get("backend", {}))
    vision = make_vision(cfg.vlm, cfg.vlm_model, **cfg.options.get("vlm", {})) if cfg.vlm else None
    judge_cfg = cfg.qc.stage("judge")
    judge = (make_vision(judge_cfg.vlm, judge_cfg.model, **cfg.options.get("judge", {}))
             if judge_cfg is not None else None)
    return backend, vision, judge


def make_parts(cfg: SynthConfig, lq_dir: str, out_raw: str, journal: Journal, concurrency: int,
               clients: tuple[Any, Any, Any] | None = None) -> Parts:
    """The pipeline's parts; ``clients`` (backend, VLM, judge) replaces :func:`make_clients`'s (the Ray
    engine passes stand-ins whose calls run on its actors)."""
    from .prompts import make_prompter

    backend, vision, judge = clients or make_clients(cfg)
    caller = Caller(journal, os.path.join(out_raw, RESULTS), concurrency=concurrency,
                    retry=cfg.retry, budget=cfg.budget, currency=getattr(backend, "currency", "USD"),
                    seed=cfg.seed)
    return Parts(journal, caller, backend, make_prompter(cfg.prompter, vision), cfg.qc, lq_dir,
                 judge_vision=judge)


async def close_parts(parts: Parts) -> None:
    for client in {id(c): c for c in (parts.backend, parts.prompter.vision, parts.judge_vision) if c}.values():
        await client.aclose()
