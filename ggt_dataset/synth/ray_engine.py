"""The Ray engine: the local engine's driver, with every provider call run by stateless Ray actors.

The driver is the only process that touches the journal, OUT_RAW and the release: it runs
the local engine (:func:`.engine.run_local`: the same feed, :class:`Pipeline`, :class:`Caller`,
budget and QC), but its backend and VLM clients are stand-ins (:class:`_Remote`) whose
``edit``/``ask`` run on a pool of :class:`SynthWorker` actors, which may sit on any node of
a cluster. So everything the local engine promises holds unchanged: each call is journalled
as sent before it leaves, an answered call is never paid twice, the budget is reserved in
the driver's journal at any concurrency, a killed driver resumes with the same command, and
the release is byte-identical (tested). The SQLite journal (WAL: one host only) never
leaves the driver's machine.

Actors receive the request (the LQ bytes, the prompt, the seed) and return the provider's
answer (image bytes and the call's facts): each result crosses the object store once,
actor to driver. QC runs on the driver, not in the actors: it is the local engine's own
code path (so the release cannot differ), it reads the driver's saved answer, and it is
cheap beside a provider call; a heavy NR metric would be a reason to move it later.

A worker node lost mid-run: the calls its actors had in flight come back as
:class:`WorkerLost`, a transient failure with no HTTP status, so the journal counts each
at the highest cost seen for its kind (it may have been billed) and the Caller retries it
on the actors left; the dead actors leave the pool. When none is left the run stops
(resumable). ``--address ADDR`` (or ``RAY_ADDRESS``) joins a running cluster; otherwise a
local Ray instance starts. Ray is an optional extra (``pip install 'ggt-100k[ray]'``).
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections import Counter
from typing import Any

from ..errors import GGTError
from .backend import TransientError

PLACE_TIMEOUT = 60.0    # seconds for the actors to be placed before the cluster is called too small


class WorkerLost(TransientError):
    """The Ray actor running a call died (its node was lost): the answer, if any, never came back.
    Not the provider's failure: a node with many calls in flight must not stop the run."""

    provider_failing = False


class SynthWorker:
    """One Ray actor: the run's clients, built once (a diffusers pipeline loads once per actor);
    no journal, no files: it only calls the provider and returns what it answered."""

    def __init__(self, cfg):
        from .parts import make_clients

        self.clients = dict(zip(("backend", "vlm", "judge"), make_clients(cfg)))

    def node(self) -> str:
        import ray

        return ray.get_runtime_context().get_node_id()

    async def edit(self, request):
        return await self.clients["backend"].edit(request)

    async def ask(self, client: str, image: bytes, mime: str, instruction: str, schema: dict | None):
        return await self.clients[client].ask(image, mime, instruction, schema)


class Pool:
    """The driver's view of the actors: least-busy dispatch, dead actors dropped, calls per node."""

    def __init__(self, actors: dict[Any, str]):
        self.busy = dict.fromkeys(actors, 0)
        self.node_of = actors
        self.calls_by_node: Counter[str] = Counter()
        self.on_empty = lambda reason: None     # the driver's Caller.stop, once it exists

    async def run(self, method: str, *args: Any) -> Any:
        import ray.exceptions

        if not self.busy:
            raise WorkerLost("no Ray worker is left")
        actor = min(self.busy, key=lambda a: self.busy[a])
        self.busy[actor] += 1
        try:
            result = await getattr(actor, method).remote(*args)
        except ray.exceptions.RayTaskError as e:    # the provider's own error, raised in the actor
            raise e.cause from None
        except (ray.exceptions.RayActorError, ray.exceptions.ObjectLostError) as e:
            self._drop(actor)
            raise WorkerLost(f"lost: the Ray worker on node {self.node_of[actor][:12]} died with this call in "
                             f"flight ({type(e).__name__}); sent again on the workers left") from None
        finally:
            if actor in self.busy:
                self.busy[actor] -= 1
        self.calls_by_node[self.node_of[actor]] += 1
        return result

    def _drop(self, actor: Any) -> None:
        if self.busy.pop(actor, None) is not None and not self.busy:
            self.on_empty("every Ray worker was lost (their nodes left the cluster); start workers and run "
                          "the same command to go on")


class _Remote:
    """A client on the driver whose facts (name, model, price, estimate) are the local client's and
    whose calls run on the pool: the Caller journals and budgets it like the local one."""

    def __init__(self, local: Any, pool: Pool, role: str):
        self._local, self._pool, self._role = local, pool, role

    def __getattr__(self, name: str) -> Any:
        return getattr(self._local, name)

    async def edit(self, request):
        return await self._pool.run("edit", request)

    async def ask(self, image: bytes, mime: str, instruction: str, schema: dict | None = None):
        return await self._pool.run("ask", self._role, image, mime, instruction, schema)

    async def aclose(self) -> None:
        await self._local.aclose()


def plan(concurrency: int, actors: int) -> tuple[int, int]:
    """(actors, calls in flight per actor), so that actors * per_actor <= concurrency."""
    actors = max(1, min(actors, concurrency))
    return actors, concurrency // actors


def run_ray(cfg, lq_dir: str, out_raw: str, journal, run_local, progress=None) -> tuple[str | None, dict]:
    """Process every pending pair with the calls on Ray; returns (why it stopped early or None, Ray facts).

    ``run_local`` is the local engine's own loop (engine.run_local), given by the caller so that
    this module does not import the engine that imports it: the pairs run through that same code,
    only with clients that send each call to an actor."""
    ray = _connect(cfg.ray_address)
    from .parts import make_clients, make_parts

    pool = Pool(_start_actors(ray, cfg))
    try:
        backend, vlm, judge = (_Remote(c, pool, role) if c is not None else None
                               for role, c in zip(("backend", "vlm", "judge"), make_clients(cfg)))
        parts = make_parts(cfg, lq_dir, out_raw, journal, cfg.concurrency, clients=(backend, vlm, judge))
        pool.on_empty = parts.caller.stop
        stopped = asyncio.run(run_local(cfg, lq_dir, out_raw, journal, progress, parts=parts))
    finally:
        for actor in pool.node_of:
            ray.kill(actor)
    facts = {"nodes": len(set(pool.node_of.values())), "actors": len(pool.node_of),
             "actors_left": len(pool.busy), "calls_by_node": dict(pool.calls_by_node)}
    return stopped, facts


def check_address(address: str | None) -> None:
    """A HOST:PORT cluster address (``--address`` or ``RAY_ADDRESS``) must answer: ``ray.init`` retries an
    unreachable one for minutes, printing warnings, before it gives up."""
    address = address or os.environ.get("RAY_ADDRESS") or ""
    host, sep, port = address.rpartition(":")
    if not sep or "://" in address or not port.isdigit():      # none, "auto", or a ray:// client address
        return
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as e:
        raise GGTError(f"--engine ray: no Ray cluster answers at {address} ({e.strerror or e}); start one "
                       "(ray start --head) or give its address (ray status on the head node prints it)") from None


def _connect(address: str | None):
    try:
        import ray
    except ImportError:
        raise GGTError("--engine ray needs Ray: pip install 'ggt-100k[ray]' (or 'ray')") from None
    if not ray.is_initialized():    # address None: RAY_ADDRESS if set, else a new local instance
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
        except ConnectionError as e:
            raise GGTError(f"--engine ray: cannot join the Ray cluster at {address or 'RAY_ADDRESS'} ({e}); "
                           "check the address (ray status on the head node prints it)") from None
    return ray


def _start_actors(ray, cfg) -> dict[Any, str]:
    """The actors, spread over the nodes, each with its node id; those the cluster cannot place are dropped."""
    count, _ = plan(cfg.concurrency, cfg.ray_actors)
    # diffusers runs the model on the actor's GPU; an API client needs little CPU
    need = {"num_gpus": 1} if cfg.backend == "diffusers" else {"num_cpus": 0.5}
    cls = ray.remote(**need, max_concurrency=cfg.concurrency, scheduling_strategy="SPREAD")(SynthWorker)
    actors = [cls.remote(cfg) for _ in range(count)]
    refs = {a.node.remote(): a for a in actors}
    ready, pending = ray.wait(list(refs), num_returns=len(refs), timeout=PLACE_TIMEOUT)
    for ref in pending:
        ray.kill(refs[ref])
    placed, failed = {}, []
    for ref in ready:
        try:
            placed[refs[ref]] = ray.get(ref)
        except ray.exceptions.RayError as e:    # its clients failed to build (the same for all), or it died
            failed.append(str(e).strip().splitlines()[-1:] or [type(e).__name__])
    if not placed and failed:
        raise GGTError(f"--engine ray: no worker could start: {failed[0][0]}")
    if not placed:
        raise GGTError(f"--engine ray: no worker could be placed in {PLACE_TIMEOUT:g} s; each asks for {need} "
                       "and the cluster has no node with that free (ray status shows its resources)")
    return placed
