"""``ggt leaderboard verify``: re-score each record's outputs and compare with its claims.

For a record with outputs: fetch them, check each against the record's sha256s, re-score
under the recorded protocol (the same sha256, else nothing is compared), and compare
every mean with the claimed one within the protocol's per-metric tolerance. A record's
per-image table must also still give its means. The record becomes ``verified`` (with
the verifier's fingerprint and date) or ``mismatch`` (each difference listed); a pending
record gets the verifier's scores. Records without outputs are left as they are.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import tempfile
from dataclasses import dataclass

from ..hashing import file_sha256
from .means import differences, output_hashes, table_means
from .record import SUBMISSIONS, Record, RecordError
from .results import Results
from .submit import _now


@dataclass
class Outcome:
    path: str
    record: Record
    changed: bool = False
    note: str = ""
    failed: bool = False        # could not be verified here (another protocol version, say); left as it was


def _fetch_outputs(repo: Results, out: dict, token: str | None) -> str:
    if out["repo"] is None:
        return repo.local_path(out["path"])
    from huggingface_hub import hf_hub_download, snapshot_download

    if out["path"]:
        return hf_hub_download(out["repo"], out["path"], repo_type="dataset", token=token)
    return snapshot_download(out["repo"], repo_type="dataset", token=token)


def _hash_problems(claimed: dict[str, str], found: dict[str, str]) -> list[str]:
    problems = []
    for what, ids in (("missing", sorted(set(claimed) - set(found))), ("not in the record", sorted(set(found) - set(claimed))),
                      ("changed since submission", sorted(k for k in claimed if k in found and claimed[k] != found[k]))):
        if ids:
            problems.append(f"outputs {what} ({len(ids)}): {', '.join(ids[:5])}{' ...' if len(ids) > 5 else ''}")
    return problems


def _table_problems(repo: Results, record: Record, where: str) -> list[str]:
    """The record's per-image table must give its claimed means, to the bit."""
    if not record.per_image:
        return []
    path = posixpath.join(posixpath.dirname(where), record.per_image["file"])
    try:
        found = table_means(repo.local_path(path), list(record.metrics))
    except (OSError, ValueError) as e:
        return [f"{path}: cannot read the per-image table ({e})"]
    diffs = differences((record.overall, record.per_category), found[:2], {})
    return [f"{path}: the per-image table does not give the claimed means ({len(diffs)} differ: "
            + ", ".join(f"{d['where']}.{d['metric']}" for d in diffs[:5]) + ")"] if diffs else []


@dataclass(frozen=True)
class Options:
    """How to re-score: the test set and the scoring settings of ``ggt leaderboard verify``."""

    reference: str
    device: str = "auto"
    metrics: list[str] | None = None        # pending records only: claimed ones keep their own
    weights_dir: str | None = None
    token: str | None = None


def _check_protocol(record: Record, where: str):
    """This ggt-100k's protocol of that name, which must be the one the record was scored under."""
    from ..eval import api

    proto = api.load_protocol(record.protocol["name"])
    if proto.sha256() != record.protocol["sha256"]:
        raise RecordError(f"{where}: scored under protocol {record.protocol['name']} v{record.protocol['version']} "
                          f"sha256 {record.protocol['sha256'][:12]}, but this ggt-100k has v{proto.version} sha256 "
                          f"{proto.sha256()[:12]}; verify it with the ggt-100k that has that protocol")
    return proto


def _rescore(repo: Results, record: Record, where: str, opts: Options, report: str) -> tuple[dict, list[str]]:
    """The outputs' summary (report written to ``report``), and problems with the outputs."""
    from ..eval import api
    from ..eval.predictions import open_predictions

    outputs = record.outputs
    assert outputs is not None          # verify_all verifies only records with outputs
    local = _fetch_outputs(repo, outputs, opts.token)
    problems = _hash_problems(outputs["sha256"], output_hashes(open_predictions(local)))
    pending = record.status == "pending"
    s = api.score(local, opts.reference, out=report, protocol=record.protocol["name"],
                  metrics=(opts.metrics if pending else list(record.metrics)) or None, device=opts.device,
                  weights_dir=opts.weights_dir, allow_partial=True, label=record.model["id"])
    test_set = s["fingerprint"]["test_set"]["sha256"]
    if pending:
        repo.accepted().check_test_set(test_set, f"{opts.reference} (the --reference)")
    else:
        claimed = record.test_set
        assert claimed is not None          # every record but a pending one has it (record.py checks)
        if test_set != claimed["sha256"]:
            raise RecordError(f"{opts.reference}: test set {test_set[:12]}, but {where} was scored on "
                              f"{claimed['sha256'][:12]}; give the benchmark's test set as --reference")
    if s["partial"]:
        problems.append(f"scored {s['counts']['scored']} of {s['counts']['test_set']} test pairs: the outputs "
                        "do not cover the test set")
    return s, problems


def _scored(record: Record, s: dict, table: str) -> Record:
    """A pending record with the verifier's scores, and its per-image table ``table``."""
    return record.replace(test_set=s["fingerprint"]["test_set"], fingerprint=s["fingerprint"],
                          metrics={m: {"better": v["better"]} for m, v in s["metrics"].items()},
                          overall=s["overall"], per_category=s["per_category"],
                          per_image={"file": os.path.basename(table), "sha256": file_sha256(table)})


def verify_record(repo: Results, path: str, opts: Options, work: str) -> tuple[Record, dict[str, str]]:
    """The record at ``path`` re-scored: its new state, and files to write beside it (a
    pending record's per-image table, kept in the folder ``work``)."""
    record = repo.record(path)
    where = posixpath.join(repo.target, path)
    proto = _check_protocol(record, where)
    files: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        s, problems = _rescore(repo, record, where, opts, os.path.join(tmp, "report"))
        tolerance = {m: proto.metric(m).tolerance for m in s["metrics"]}
        if record.status == "pending":      # nothing claimed: the verifier's scores become the record's
            stem = path[:-len(".json")]
            files[stem + ".parquet"] = os.path.join(work, posixpath.basename(stem) + ".parquet")
            shutil.copyfile(os.path.join(tmp, "report", "per_image.parquet"), files[stem + ".parquet"])
            record, diffs = _scored(record, s, files[stem + ".parquet"]), []
        else:
            problems += _table_problems(repo, record, path)
            diffs = differences((record.overall, record.per_category), (s["overall"], s["per_category"]),
                                tolerance)
    verification = {"date": _now(), "fingerprint": s["fingerprint"], "tolerances": tolerance,
                    "differences": diffs, "problems": problems}
    status = "mismatch" if diffs or problems else "verified"
    return record.replace(status=status, verification=verification), files


def verify_all(results: str, opts: Options, *, only: str | None = None,
               dry_run: bool = False) -> tuple[list[Outcome], str | None]:
    """Verify every record (or ``only``: a model id or a record path); write the changed ones
    in one go (a Hub repo: one pull request). Returns the outcomes and where they went."""
    repo = Results(results, opts.token)
    paths = [p for p in repo.record_paths() if only is None or only == p
             or p.startswith(f"{SUBMISSIONS}/{only.replace('/', '__')}/")]
    if only and not paths:
        raise RecordError(f"{results}: no record for {only}")
    outcomes: list[Outcome] = []
    files: dict[str, bytes | str] = {}
    work = tempfile.mkdtemp(prefix="ggt-verify-")
    try:
        for path in paths:
            record = repo.record(path)
            if record.outputs is None:
                outcomes.append(Outcome(path, record, note="no outputs: stays " + record.status))
                continue
            try:
                new, extra = verify_record(repo, path, opts, work)
            except RecordError as e:    # this record only: the others are still verified
                outcomes.append(Outcome(path, record, note=f"not verified: {e}", failed=True))
                continue
            outcomes.append(Outcome(path, new, changed=True))
            files.update({**extra, path: new.to_json().encode()})
        where = None
        if files and not dry_run:
            where = repo.write(files, f"Verify {len(files)} files against {opts.reference}")
        return outcomes, where
    finally:
        shutil.rmtree(work, ignore_errors=True)


def describe(outcomes: list[Outcome]) -> str:
    """One block per record: status, each difference with its tolerance, each problem."""
    lines = []
    for o in outcomes:
        r = o.record
        lines.append(f"{r.model['id']} ({r.protocol['name']} v{r.protocol['version']}): {r.status}"
                     + (f"; {o.note}" if o.note else ""))
        v = r.verification if o.changed else None
        if not v:
            continue
        tol = ", ".join(f"{m} {t:g}" for m, t in v["tolerances"].items())
        lines.append(f"  tolerance per metric: {tol}; device {v['fingerprint']['device']}")
        for d in v["differences"]:
            diff = "—" if d["diff"] is None else f"{d['diff']:.3g}"
            extra = f", counts (n, nonfinite) claimed {d['counts']}" if d.get("counts") else ""
            lines.append(f"  {d['where']}.{d['metric']}: claimed {d['claimed']}, found {d['found']} "
                         f"(differs by {diff}; tolerance {d['tolerance']:g}){extra}")
        lines += [f"  {p}" for p in v["problems"]]
    return "\n".join(lines) if lines else "no records"
