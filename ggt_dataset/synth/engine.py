"""``synthesize()``: LQ_DIR -> OUT_RAW, on the local asyncio engine or on Ray Data.

A run: open (or create) the journal; mark calls a kill cut off as lost; apply
review.csv; add LQ_DIR's new images; re-open pairs whose QC settings changed (their
paid answers are reused, only QC runs again); process every pending or failed pair;
write metadata.jsonl, the review queue, card facts and report. Re-running the same command
resumes; nothing paid is asked for twice (see journal.py).

Engines:
  local  one process: ``concurrency`` provider calls in flight (a semaphore), pairs
         fed from the journal through a bounded queue, CPU work in threads.
  ray    the local engine's driver (the only process that touches the journal and
         OUT_RAW), with every provider call run by stateless Ray actors on any node of
         a cluster (ray_engine.py); a lost node's calls are retried on the nodes left.
Both write the same files for the same input (tested). One run per OUT_RAW at a time:
the run holds an exclusive lock on OUT_RAW/.ggt-synth/lock (a second run is refused).
"""

from __future__ import annotations

import asyncio
import math
import os
import signal
from dataclasses import asdict

from ..errors import GGTError
from . import card_license
from . import qc as qc_mod
from .calls import BudgetReached, Caller
from .journal import Journal
from .out_raw import RESULTS, STATE_DIR
from .parts import SynthConfig, close_parts, make_clients, make_parts
from .pipeline import Pipeline, generator_label

ENGINES = ("local", "ray")


# -- the local engine ---------------------------------------------------------------------
async def run_local(cfg: SynthConfig, lq_dir: str, out_raw: str, journal: Journal, progress=None,
                    parts=None) -> str | None:
    """Process every pending pair; returns why the run stopped early (None: it finished).

    ``parts``: made by the caller (the Ray engine's driver, whose clients call its actors)."""
    parts = parts or make_parts(cfg, lq_dir, out_raw, journal, cfg.concurrency)
    pipeline = Pipeline(parts)
    queue: asyncio.Queue = asyncio.Queue(maxsize=2 * cfg.concurrency)
    _on_signals(parts.caller)

    async def feed() -> None:
        for key in journal.keys(("pending", "failed")):
            if parts.caller.stopping.is_set():
                break
            await queue.put(key)
        for _ in range(workers):
            await queue.put(None)

    fatal: list[BaseException] = []

    async def work() -> None:
        while (key := await queue.get()) is not None:
            if parts.caller.stopping.is_set():
                continue
            try:
                state = await pipeline.process(key)
                if progress:
                    progress(state)
            except Exception as e:  # noqa: BLE001 (stop sending, let calls in flight finish, re-raise after)
                fatal.append(e)
                parts.caller.stop(f"stopped after an error: {type(e).__name__}: {e}")

    # a few more than call slots (CPU stages overlap calls), but never more than there are pairs:
    # --concurrency 20000000 must not start twenty million workers for six photos
    counts = journal.counts()
    workers = min(cfg.concurrency, counts.get("pending", 0) + counts.get("failed", 0)) + 2
    try:
        await asyncio.gather(feed(), *(work() for _ in range(workers)))
    finally:
        _restore_signals()
        await close_parts(parts)
    if fatal:
        raise fatal[0]
    return parts.caller.stop_reason


def _on_signals(caller: Caller) -> None:
    """First SIGINT/SIGTERM: send nothing new, let calls in flight finish and be journalled."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, _stop_then_default, caller, sig)
        except (NotImplementedError, RuntimeError, ValueError):   # not the main thread
            pass


def _stop_then_default(caller: Caller, sig: int) -> None:
    caller.stop(f"interrupted by {signal.Signals(sig).name}")
    asyncio.get_running_loop().remove_signal_handler(sig)      # a second signal acts at once


def _restore_signals() -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.remove_signal_handler(sig)
        except (NotImplementedError, RuntimeError, ValueError):
            pass


# -- the run ------------------------------------------------------------------------------
def _check_settings(journal: Journal, cfg: SynthConfig, out_raw: str) -> None:
    before = journal.get_meta("settings")
    if before is None:
        journal.set_meta("settings", cfg.settings())
    elif before != cfg.settings():
        changed = {k: (before.get(k), v) for k, v in cfg.settings().items() if before.get(k) != v}
        raise GGTError(f"{out_raw} was made with other settings {changed} (was, now); use a new OUT_RAW, "
                       "or the same --backend/--model/--prompter/--vlm to resume")


def _reopen_for_qc(journal: Journal, qc: qc_mod.QCConfig) -> int:
    """New QC settings: pairs QC decided are processed again (answers reused, QC re-run)."""
    fp = qc.fingerprint()
    if journal.get_meta("qc") in (None, fp):
        journal.set_meta("qc", fp)
        return 0
    reopened = journal.reopen_for_qc()
    journal.set_meta("qc", fp)
    return reopened


def check_config(cfg: SynthConfig) -> None:
    """Refuse bad options before anything is created in OUT_RAW."""
    from .inputs import check_options

    if cfg.engine not in ENGINES:
        raise GGTError(f"--engine {cfg.engine!r}: expected one of {', '.join(ENGINES)}")
    for name, value in (("--concurrency", cfg.concurrency), ("--ray-actors", cfg.ray_actors),
                        ("--max-attempts", cfg.retry.max_attempts),
                        ("--stop-after-failures", cfg.retry.stop_after)):
        if value < 1:
            raise GGTError(f"{name} must be at least 1, got {value}")
    # NaN fails every comparison, so "spent > budget" would never stop a NaN budget; inf is no budget
    if cfg.budget is not None and not (math.isfinite(cfg.budget) and cfg.budget > 0):
        raise GGTError(f"--budget must be a finite number above 0, got {cfg.budget:g}; leave it out to run "
                       "without a budget")
    check_options(cfg.split, cfg.category)
    if cfg.budget is not None:
        _check_prices(cfg)
    if cfg.engine == "ray":
        from .ray_engine import check_address

        check_address(cfg.ray_address)


def _check_prices(cfg: SynthConfig) -> None:
    """Under --budget every paid client must know its price: an unknown one would count as 0."""
    clients = [(option, c) for option, c in zip(("--backend", "--vlm", "--judge"), make_clients(cfg)) if c]
    try:
        for option, client in clients:
            if not getattr(client, "price_known", True):
                how = ("pass --price TEXT_IN,TEXT_OUT,IMAGE_OUT[,IMAGE_IN] (USD per 1M tokens)"
                       if option == "--backend" else f"pass {option}-price TEXT_IN,TEXT_OUT (USD per 1M tokens)")
                raise GGTError(f"--budget needs prices, but {option} {client.name} model {client.model!r} is "
                               f"not in ggt's price table, so its calls would count as free; {how}, or drop "
                               "--budget")
    finally:
        async def close() -> None:
            for _, client in clients:
                await client.aclose()

        asyncio.run(close())


def synthesize(lq_dir: str, out_raw: str, cfg: SynthConfig = SynthConfig(),  # noqa: B008 (frozen)
               progress: bool = False) -> dict:
    """Make (or resume) OUT_RAW from LQ_DIR; returns the report written to synth-report.json.

    Args:
        lq_dir: folder of real-world LQ photos (by category folder or flat; see inputs.py).
        out_raw: the raw release to write; re-run the same call to resume.
        cfg: backend, prompter, engine, QC and limits.
    Raises:
        BudgetReached: the budget stopped the run (the release holds what was done).
        GGTError: bad options (nothing created), or another run holds OUT_RAW's lock.
    """
    from .inputs import scan
    from .journal import run_lock

    check_config(cfg)
    lq_dir, out_raw = os.path.abspath(lq_dir), os.path.abspath(out_raw)
    _check_apart(lq_dir, out_raw)
    if not os.path.isdir(lq_dir):
        raise GGTError(f"{lq_dir}: not a folder of LQ images")
    cfg = card_license.resolve(cfg, lq_dir)        # a licence the Hub refuses stops the run here
    created = _make_folder(out_raw)
    with run_lock(os.path.join(out_raw, STATE_DIR)):    # a run that loses the lock removes nothing
        try:
            journal = Journal(os.path.join(out_raw, STATE_DIR, "journal.sqlite"))
            try:
                _check_settings(journal, cfg, out_raw)
                changed: list[str] = []
                skipped = scan(journal, lq_dir, split=cfg.split, category=cfg.category, skip_bad=cfg.skip_bad,
                               changed=changed)
                created = False             # from here on OUT_RAW holds a run's state: keep it
                return _run(journal, lq_dir, out_raw, cfg, skipped, progress, changed)
            finally:
                journal.close()
        except GGTError:
            if created:             # ours (mkdir succeeded) and still locked: nobody else writes in it
                import shutil

                shutil.rmtree(out_raw, ignore_errors=True)   # nothing half-made is left behind
            raise


def _check_apart(lq_dir: str, out_raw: str) -> None:
    """OUT_RAW inside LQ_DIR would be scanned as input; real paths, so a symlink cannot hide it."""
    real_lq, real_out = os.path.realpath(lq_dir), os.path.realpath(out_raw)
    if real_out == real_lq or real_out.startswith(real_lq.rstrip(os.sep) + os.sep):
        shown = out_raw if real_out == out_raw else f"{out_raw} (really {real_out})"
        raise GGTError(f"{shown}: OUT_RAW must not be inside LQ_DIR ({real_lq}); choose a folder outside it")


def _make_folder(out_raw: str) -> bool:
    """Create OUT_RAW; True only for the process whose mkdir made it (the one that may remove it)."""
    os.makedirs(os.path.dirname(out_raw) or ".", exist_ok=True)
    try:
        os.mkdir(out_raw)
    except FileExistsError:
        return False
    return True


def _run(journal: Journal, lq_dir: str, out_raw: str, cfg: SynthConfig, skipped: list, progress: bool,
         changed: list[str]) -> dict:
    import time

    from . import out_raw as out_files  # not `out_raw`: that is the folder's path here

    started = time.time()
    lost, recovered = journal.mark_lost(os.path.join(out_raw, RESULTS))
    reviewed = out_files.apply_review(journal, out_raw)
    reopened = _reopen_for_qc(journal, cfg.qc)
    bar = _progress(journal, progress)
    ray_facts = {}
    try:
        if cfg.engine == "local":
            stopped = asyncio.run(run_local(cfg, lq_dir, out_raw, journal, bar))
        else:
            from .ray_engine import run_ray

            stopped, facts = run_ray(cfg, lq_dir, out_raw, journal, run_local, bar)
            ray_facts = {"ray": facts}
    finally:
        if bar:
            bar.close()
    failed = journal.failed_since(started)
    report = _finish(journal, lq_dir, out_raw, cfg, skipped, stopped,
                     {"lost_calls": lost, "recovered_calls": recovered, "failed_this_run": failed,
                      "review_applied": reviewed, "reopened_for_qc": reopened, "changed_inputs": changed,
                      **ray_facts})
    if stopped and stopped.startswith("budget"):
        raise BudgetReached(f"{stopped}: {report['spent']:.4f} {report['currency']} spent in all (calls that "
                            f"were in flight included); {report['pairs'].get('pending', 0)} pair(s) left pending. "
                            f"The release holds the {report['released']} accepted so far; raise --budget "
                            "and run the same command to go on")
    return report


def _progress(journal: Journal, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    counts = journal.counts()
    bar = tqdm(total=counts.get("pending", 0) + counts.get("failed", 0), desc="synth", unit="pair")
    return lambda state: bar.update(1) or bar.set_postfix_str(state, refresh=False)


def _finish(journal: Journal, lq_dir: str, out_raw: str, cfg: SynthConfig, skipped: list,
            stopped: str | None, extra: dict) -> dict:
    from . import out_raw as out_files  # not `out_raw`: that is the folder's path here
    from .backends import make_backend

    backend = make_backend(cfg.backend, cfg.model, **cfg.options.get("backend", {}))
    released = out_files.write_metadata(journal, out_raw, lq_dir, source=cfg.source,
                                        license_=card_license.pair_license(cfg))
    queued = out_files.write_review(journal, out_raw, lq_dir)
    left_out, first_left_out = out_files.write_rejections(journal, out_raw, lq_dir)
    out_files.write_release_info(out_raw, generator=generator_label(backend, backend.model),
                               foundation=backend.foundation_model, prompter=cfg.prompter,
                               stages=[n for n, _ in cfg.qc.stages], name=cfg.name,
                               license_={"license": cfg.license, "license_name": cfg.license_name,
                                         "license_link": cfg.license_link})
    asyncio.run(backend.aclose())
    currency = getattr(backend, "currency", "USD")
    report = {"lq_dir": lq_dir, "out_raw": out_raw, "settings": cfg.settings(), "engine": cfg.engine,
              "concurrency": cfg.concurrency, "budget": cfg.budget, "currency": currency,
              "spent": round(journal.spent(currency), 6), "pairs": journal.counts(), "released": released,
              "review_queue": queued, "left_out": left_out, "left_out_file": out_files.REJECTIONS_FILE,
              "left_out_first": first_left_out, "calls": journal.call_counts(), "stopped": stopped,
              "qc": cfg.qc.describe(), "retry": asdict(cfg.retry),
              "skipped_inputs": [{"path": p.path, "reason": p.reason} for p in skipped], **extra}
    quality = cfg.qc.stage("quality")
    if quality is not None:
        from .qc_quality import choose_metric

        chosen = choose_metric(quality.metrics)
        report["quality_metric"] = {"used": chosen.spec.name, "better": chosen.spec.better,
                                    "not_used": list(chosen.skipped)}
    out_files.write_report(out_raw, report)
    return report
