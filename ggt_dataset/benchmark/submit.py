"""``ggt submit``: a score report (or outputs only) -> one record in a results repo.

Everything is checked before anything is written: the report is complete, made with a
protocol and on a test set the results repo accepts (its ``ggt-results.yaml``), its
per-image table still gives its means, the outputs (if any) are the ones it scored, and
no record exists for that model and protocol unless ``replace``.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone

from ..hashing import file_sha256
from .means import differences, output_hashes, table_means
from .record import Record, RecordError, model_folder
from .results import Results


@dataclass
class Submission:
    """What ``submit`` wrote (or, with ``dry_run``, would write) and where."""

    record: Record
    files: dict[str, bytes | str] = field(default_factory=dict)   # repo path -> bytes or a local file
    where: str | None = None                                       # folder, or the pull request's URL


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _claims(report_dir: str, accepted) -> tuple[dict, dict]:
    """The record's fields from a complete, accepted, self-consistent report."""
    from ..eval.summary import COMPARE_FIELDS, read_summary

    s = read_summary(report_dir, need=COMPARE_FIELDS)
    where = s["_path"]
    if s["partial"]:
        c = s["counts"]
        raise RecordError(f"{where}: a PARTIAL report ({c['scored']} of {c.get('test_set')} pairs scored); "
                          "only a report on the whole test set can be submitted")
    fp = s["fingerprint"]
    accepted.check_protocol(fp["protocol"], fp["protocol_sha256"], where)
    accepted.check_test_set(fp["test_set"]["sha256"], where)
    table = os.path.join(os.path.dirname(where), "per_image.parquet")
    metrics = list(s["metrics"])
    try:
        overall, per_cat, ids = table_means(table, metrics)
    except (OSError, ValueError) as e:
        raise RecordError(f"{table}: cannot read the report's per-image table ({e})") from None
    if differences((s["overall"], s["per_category"]), (overall, per_cat), {}):
        raise RecordError(f"{table}: its scores no longer give the means in {where} (edited after "
                          "`ggt score`?); score again")
    fields = {"status": "self-reported", "protocol": {"name": fp["protocol"], "version": fp["protocol_version"],
                           "sha256": fp["protocol_sha256"]},
              "test_set": fp["test_set"], "fingerprint": fp,
              "metrics": {m: {"better": v["better"]} for m, v in s["metrics"].items()},
              "overall": s["overall"], "per_category": s["per_category"]}
    return fields, {"table": table, "ids": ids}


def _pending(protocol: str, accepted) -> tuple[dict, None]:
    """A pending record's fields: the protocol it is to be scored under, nothing claimed."""
    from ..eval.protocol import load

    proto = load(protocol)
    accepted.check_protocol(proto.name, proto.sha256(), f"protocol {protocol}")
    return {"status": "pending",
            "protocol": {"name": proto.name, "version": proto.version, "sha256": proto.sha256()}}, None


def _zip_folder(preds, work: str) -> str:
    """A folder of outputs as one zip in ``work`` (stored, sorted, fixed times: the same folder,
    the same bytes)."""
    path = os.path.join(work, "outputs.zip")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for pair_id in sorted(preds.names):
            rel = os.path.relpath(preds.names[pair_id], preds.source).replace(os.sep, "/")
            z.writestr(zipfile.ZipInfo(rel, date_time=(1980, 1, 1, 0, 0, 0)), preds.read(pair_id))
    return path


def _outputs(path: str, stem: str, token: str | None, work: str) -> tuple[dict, dict[str, str]]:
    """The record's ``outputs`` and the files to put beside it (repo path -> local file)."""
    from ..eval.predictions import open_predictions

    if os.path.exists(path):
        preds = open_predictions(path)
        local = path if preds.kind in ("zip", "parquet") and os.path.isfile(path) else None
        if local is None:           # a folder (or a set of Parquet files): sent as one zip
            if preds.kind != "folder":
                raise RecordError(f"{path}: send outputs as a folder of images, a .zip or one .parquet file")
            local = _zip_folder(preds, work)
        ext = ".parquet" if local.endswith(".parquet") else ".zip"
        in_repo = f"{stem}.outputs{ext}"
        return ({"repo": None, "path": in_repo, "kind": ext[1:], "sha256": output_hashes(preds)},
                {in_repo: local})
    # A Hub dataset repo that already holds them: recorded where they are, hashed as they are now.
    from huggingface_hub import snapshot_download

    model_folder(path)              # an ORG/NAME id, or say so
    snap = snapshot_download(path, repo_type="dataset", token=token)
    preds = open_predictions(snap)
    return {"repo": path, "path": None, "kind": preds.kind, "sha256": output_hashes(preds)}, {}


def submit(report_dir: str | None, results: str, model: str, *, model_revision: str | None = None,
           outputs: str | None = None, name: str | None = None, paper: str | None = None,
           protocol: str = "ggt", replace: bool = False, dry_run: bool = False,
           token: str | None = None) -> Submission:
    """Write one record for ``model`` into ``results`` (a folder, or a Hub dataset repo as a PR).

    Args:
        report_dir: a ``ggt score`` report folder; None with ``outputs`` records a ``pending``
            submission under ``protocol``, which ``ggt leaderboard verify`` scores.
        results: a folder holding ``ggt-results.yaml``, or a Hub dataset repo id.
        model: the model's Hub id, ORG/NAME.
        outputs: the predictions (a folder, .zip or .parquet), uploaded beside the record;
            or a Hub dataset repo id where they already are.
        replace: overwrite an existing record for this model and protocol.
        dry_run: check everything and return the plan; write nothing.
    """
    if not model:
        raise RecordError("no model id; give --model ORG/NAME (the model's Hub id)")
    model_folder(model)
    if report_dir is None and outputs is None:
        raise RecordError("give a REPORT_DIR from `ggt score`, or --outputs for a pending submission")
    repo = Results(results, token)
    accepted = repo.accepted()
    fields, report = _claims(report_dir, accepted) if report_dir is not None else _pending(protocol, accepted)
    record = Record(model={"id": model, "revision": model_revision, "name": name, "paper": paper},
                    submitted=_now(), **fields)
    stem = record.path[:-len(".json")]
    if repo.read(record.path) is not None and not replace:
        raise RecordError(f"{results}: a record for {model} under protocol {record.protocol['name']} "
                          f"v{record.protocol['version']} exists already ({record.path}); pass --replace "
                          "to replace it")
    files: dict[str, bytes | str] = {}
    if report is not None:
        files[stem + ".parquet"] = report["table"]
        record = record.replace(per_image={"file": os.path.basename(stem) + ".parquet",
                                           "sha256": file_sha256(report["table"])})
    with tempfile.TemporaryDirectory(prefix="ggt-submit-") as work:
        return _finish(repo, record, files, report, outputs, token, work, dry_run)


def _finish(repo: Results, record: Record, files: dict, report: dict | None, outputs: str | None,
            token: str | None, work: str, dry_run: bool) -> Submission:
    """Add the outputs (zipped in ``work`` if a folder) and the record, then write them all."""
    if outputs is not None:
        out_fields, out_files = _outputs(outputs, record.path[:-len(".json")], token, work)
        if report is not None and set(out_fields["sha256"]) != set(report["ids"]):
            only = sorted(set(out_fields["sha256"]) ^ set(report["ids"]))
            raise RecordError(f"{outputs}: not the outputs the report scored ({len(only)} ids on one side "
                              f"only: {', '.join(only[:5])})")
        record = record.replace(outputs=out_fields)
        files.update(out_files)
    files[record.path] = record.to_json().encode()
    sub = Submission(record, files)
    if not dry_run:
        p = record.protocol
        sub.where = repo.write(files, f"Submit {record.model['id']} ({p['name']} v{p['version']}, {record.status})")
    return sub
