"""The Ray Data engine: the same :class:`Pipeline` in a pool of actors, for many GPUs or nodes.

The driver reads the journal's pending keys with ``ray.data.read_sql`` (streamed, not
listed in memory) and maps them with ``map_batches`` over the actors (:func:`plan`:
``min(ray_actors, concurrency)`` actors with ``concurrency // actors`` calls in flight
each, so never more than ``--concurrency`` in total); each actor opens its own journal
connection and runs its calls on its own event loop. Everything a pair produces goes to
the journal and the results folder, so the driver writes the release exactly as the local
engine does. The budget is shared: reservations live in the journal (see calls.py).

One host only: the journal is SQLite in WAL mode, whose shared-memory index works only
between processes on one machine (https://www.sqlite.org/wal.html, "all processes using
a database must be on the same host computer"), so a Ray cluster of several nodes is
refused; use the GPUs/CPUs of one node, or ``--engine local``. ``RAY_ADDRESS`` may name a
one-node cluster; otherwise a local Ray instance is started. The driver holds OUT_RAW's
run lock throughout. On Ctrl-C the driver stops at once; calls that were in flight are
marked lost on the next run.
Ray is an optional extra (``pip install 'ggt-100k[ray]'``: ~240 MB, ~2.5 s import).
"""

from __future__ import annotations

import asyncio
import os

from ..errors import GGTError


class SynthActor:
    """One Ray actor: a journal connection, a backend client and a pipeline, reused across batches."""

    def __init__(self, cfg, lq_dir: str, out_raw: str, journal_path: str, concurrency: int):
        from .journal import Journal
        from .parts import make_parts
        from .pipeline import Pipeline

        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.journal = Journal(journal_path)
        self.parts = make_parts(cfg, lq_dir, out_raw, self.journal, concurrency)
        self.pipeline = Pipeline(self.parts)

    def __call__(self, batch: dict) -> dict:
        keys = [str(k) for k in batch["key"]]
        asyncio.set_event_loop(self.loop)       # Ray calls us from its own thread
        states = self.loop.run_until_complete(self._run(keys))
        stop = self.parts.caller.stop_reason or ""
        return {"key": keys, "state": list(states), "stopped": [stop] * len(keys)}


    async def _run(self, keys: list[str]) -> list[str]:
        return list(await asyncio.gather(*(self.pipeline.process(k) for k in keys)))


def plan(concurrency: int, actors: int) -> tuple[int, int]:
    """(actors, calls in flight per actor), so that actors * per_actor <= concurrency."""
    actors = max(1, min(actors, concurrency))
    return actors, concurrency // actors


def run_ray(cfg, lq_dir: str, out_raw: str, journal) -> str | None:
    """Process every pending pair on Ray; returns why the run stopped early (None: it finished)."""
    try:
        import ray
        import ray.data
        import ray.exceptions
    except ImportError:
        raise GGTError("--engine ray needs Ray Data: pip install 'ggt-100k[ray]' "
                       "(or 'ray[data]')") from None
    if not ray.is_initialized():
        ray.init(address=os.environ.get("RAY_ADDRESS"), include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    if len(nodes) > 1:
        raise GGTError(f"--engine ray: the Ray cluster has {len(nodes)} nodes, but the synthesis journal "
                       "(SQLite in WAL mode) works only between processes on one host; use a one-node "
                       "cluster (or unset RAY_ADDRESS), or --engine local")
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    actors, per_actor = plan(cfg.concurrency, cfg.ray_actors)
    keys = ray.data.read_sql(journal.TODO_SQL, journal.connector())
    done = keys.map_batches(SynthActor, batch_size=2 * per_actor, compute=ray.data.ActorPoolStrategy(
        size=actors), fn_constructor_args=(cfg, lq_dir, out_raw, journal.path, per_actor), num_cpus=0.5)
    stopped = None
    try:
        for batch in done.iter_batches(batch_size=None, batch_format="numpy"):
            stopped = stopped or next((str(s) for s in batch["stopped"] if s), None)
    except ray.exceptions.RayError as e:
        cause = str(e).strip().splitlines()
        raise GGTError(f"the Ray engine failed: {cause[-1] if cause else type(e).__name__} "
                       "(the journal keeps what was done; run again to resume)") from None
    return stopped
