"""OUT_RAW: the raw release a synthesis run writes, which ``ggt build OUT_RAW`` packages.

  metadata.jsonl            one row per accepted pair (raw_metadata's columns): lq_file_name,
                            hq_file_name, split, category, id, source, license, generator,
                            prompt and qc_<stage>_<score> numbers; sorted by split and id
  <split>/LQ/<category>/    the LQ photos, byte for byte: the release's own copies, checked
                            against the sha256 the targets were made from (never a link to
                            LQ_DIR, whose files a user may edit)
  <split>/GT/<category>/    the accepted targets, as the provider sent them (or resized by QC)
  ggt-release.yaml          the card's facts: what generated the targets, which QC
  review.csv                the manual queue: fill ``decision`` with accept or reject,
                            then run the same command again to apply it
  review/<split>/<id>.png   the generated image of each pair in the queue (not packaged)
  rejections.csv            every photo left out and why: id, split, category, verdict
                            (rejected by QC, refused by the provider, failed), reason
  synth-report.json         counts, money spent, calls by status, settings
  .ggt-synth/               journal.sqlite and results/ (every paid answer; hidden, not built)

Every file is written under a temporary name and renamed into place; the metadata file
lists only pairs whose files are complete, so OUT_RAW is a valid release after any run.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import math
import os

import yaml

from ..atomic import publish_file, write_bytes, write_json, write_text
from ..errors import GGTError
from ..raw_release import GGT_CITATION, RELEASE_INFO_FILE
from .journal import KEPT, Journal

STATE_DIR = ".ggt-synth"
RESULTS = os.path.join(STATE_DIR, "results")       # every paid answer, by call fingerprint
REVIEW_FILE = "review.csv"
REVIEW_COLUMNS = ("id", "split", "decision", "note", "lq_file", "hq_candidate", "flagged_by", "scores")
REVIEW_DIR = "review"               # review/<split>/<id>.<ext>: the candidates review.csv names
REJECTIONS_FILE = "rejections.csv"
REJECTION_COLUMNS = ("id", "split", "category", "verdict", "reason", "lq_file")
LEFT_OUT = ("rejected", "refused", "failed")        # the states of photos the release does not hold
_EXT = {"PNG": ".png", "JPEG": ".jpg", "MPO": ".jpg", "WEBP": ".webp", "BMP": ".bmp", "TIFF": ".tif"}


class ReviewError(GGTError):
    """review.csv cannot be applied."""


def _copy_lq(journal: Journal, lq_dir: str, row: dict, dst: str) -> None:
    """The release's own copy of the pair's LQ, holding exactly the bytes its target was made from."""
    src = os.path.join(lq_dir, row["key"])
    if (row["lq_released"] == row["lq_sha256"] and os.path.isfile(dst)
            and not (os.path.exists(src) and os.path.samefile(src, dst))):
        return          # copied by an earlier run (a hard link from older versions is replaced)
    try:
        with open(src, "rb") as f:
            data = f.read()
    except OSError as e:
        raise GGTError(f"{src}: cannot be read to copy into the release ({e.strerror or e})") from None
    if hashlib.sha256(data).hexdigest() != row["lq_sha256"]:
        raise GGTError(f"{src}: changed while ggt synth was running (its sha256 is not the one its target "
                       f"{row['id']} was made from); run the same command again to synthesise it anew")
    write_bytes(dst, data)
    journal.set_released(row["key"], row["lq_sha256"])


def _place(src: str, dst: str) -> None:
    """Put ``src``'s bytes at ``dst`` atomically: a hard link when possible, else a copy."""
    if os.path.exists(dst) and os.path.samefile(src, dst):
        return          # linked by an earlier run (and rename() onto the same file would leave tmp behind)
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    tmp = f"{dst}.tmp-{os.getpid()}"
    if os.path.lexists(tmp):
        os.remove(tmp)
    try:
        os.link(src, tmp)
        os.replace(tmp, dst)
    except OSError:
        import shutil

        shutil.copyfile(src, tmp)
        publish_file(tmp, dst)


def _ext(path: str) -> str:
    from PIL import Image

    with Image.open(path) as im:
        return _EXT.get(im.format or "", ".png")


def qc_columns(qc: list[dict] | None) -> dict[str, float]:
    cols = {}
    for stage in qc or []:
        for name, value in stage["scores"].items():
            if isinstance(value, (int, float)) and math.isfinite(value):
                cols[f"qc_{stage['stage']}_{name}"] = float(value)
    return dict(sorted(cols.items()))


def metadata_row(journal: Journal, out_raw: str, lq_dir: str, row: dict, source: str | None,
                 license_: str | None) -> dict:
    """Place the pair's files in the release and return its metadata.jsonl row."""
    base = f"{row['split']}/%s/{row['category']}/{row['name']}"
    lq_rel = base % "LQ" + os.path.splitext(row["key"])[1].lower()
    hq_src = os.path.join(out_raw, RESULTS, row["hq_file"])
    hq_rel = base % "GT" + _ext(hq_src)
    _copy_lq(journal, lq_dir, row, os.path.join(out_raw, lq_rel))
    _place(hq_src, os.path.join(out_raw, hq_rel))
    return {"id": row["id"], "split": row["split"], "category": row["category"],
            "lq_file_name": lq_rel, "hq_file_name": hq_rel,
            "source": source if source is not None else row["key"], "license": license_,
            "generator": row["generator"], "prompt": row["prompt"],
            **qc_columns(json.loads(row["qc"]) if row["qc"] else None)}


def write_metadata(journal: Journal, out_raw: str, lq_dir: str, *, source: str | None = None,
                   license_: str | None = None) -> int:
    """metadata.jsonl from the journal's accepted pairs (streamed); returns the row count."""
    path = os.path.join(out_raw, "metadata.jsonl")
    tmp = f"{path}.tmp-{os.getpid()}"
    n = 0
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            for row in journal.accepted():
                f.write(json.dumps(metadata_row(journal, out_raw, lq_dir, row, source, license_),
                                   sort_keys=True) + "\n")
                n += 1
    except BaseException:
        os.remove(tmp)          # the old metadata.jsonl stays as it was
        raise
    publish_file(tmp, path)
    return n


def write_release_info(out_raw: str, *, generator: str, foundation: bool, prompter: str, stages: list[str],
                       license_: dict[str, str | None], name: str | None) -> None:
    """ggt-release.yaml; ``license_``: the card's license (and, for ``other``, license_name and
    license_link), as card_license.resolve settled them."""
    made_by = (f"generated by {generator}" if foundation else
               f"made by {generator}: these targets are a baseline, not generative ground truth")
    info = {
        "pretty_name": name or "GGT-style pairs (ggt synth)",
        **{k: v for k, v in license_.items() if v},
        "description": (f"Real-world low-quality photos paired with high-quality targets {made_by}, "
                        f"under {prompter} prompts, kept after quality control ({', '.join(stages)}), "
                        "with the GGT-100K synthesis pipeline (ggt synth)."),
        "homepage": "", "paper": "arXiv:2605.31039", "citation": GGT_CITATION,
        "tags": ["image-restoration", "real-world", "paired"] + (["generative-ground-truth"] if foundation else
                                                                ["classical-baseline"]),
    }
    write_text(os.path.join(out_raw, RELEASE_INFO_FILE), yaml.safe_dump(info, sort_keys=False, allow_unicode=True))


def write_review(journal: Journal, out_raw: str, lq_dir: str) -> int:
    """review.csv: the pairs waiting for a person, with what flagged them."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(REVIEW_COLUMNS)
    n, candidates = 0, set()
    for row in itertools.chain(journal.rows(("review",)), journal.kept()):
        qc = json.loads(row["qc"] or "[]")
        flagged = [s["stage"] for s in qc if s["verdict"] == "review" and s["stage"] != "review"]
        candidate = _candidate(out_raw, row) if row["hq_file"] else ""
        candidates.add(candidate)
        w.writerow([row["id"], row["split"], "", "", os.path.join(lq_dir, row["key"]), candidate,
                    " ".join(flagged), json.dumps(qc_columns(qc), sort_keys=True)])
        n += 1
    write_text(os.path.join(out_raw, REVIEW_FILE), buf.getvalue())
    _prune(out_raw, REVIEW_DIR, candidates)
    return n


def _candidate(out_raw: str, row: dict) -> str:
    """The generated image under review/, named by split and id with its format's extension (a saved
    answer under .ggt-synth/results has none, so no viewer opened it); returns its path in OUT_RAW."""
    src = os.path.join(out_raw, RESULTS, row["hq_file"])
    rel = "/".join((REVIEW_DIR, row["split"], row["id"])) + _ext(src)
    _place(src, os.path.join(out_raw, rel))
    return rel


def _prune(out_raw: str, folder: str, keep: set[str]) -> None:
    """Remove files under OUT_RAW/folder that are not in ``keep`` (pairs decided since the last run)."""
    for dirpath, _, files in os.walk(os.path.join(out_raw, folder)):
        for name in files:
            path = os.path.join(dirpath, name)
            if os.path.relpath(path, out_raw).replace(os.sep, "/") not in keep:
                os.remove(path)


def write_rejections(journal: Journal, out_raw: str, lq_dir: str, shown: int = 20) -> tuple[int, list[dict]]:
    """rejections.csv: every photo left out and why (the reasons were only in the journal);
    returns the count and the first ``shown`` rows, for the run's summary."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=REJECTION_COLUMNS, lineterminator="\n")
    w.writeheader()
    n = 0
    first: list[dict] = []
    for row in journal.rows(LEFT_OUT):
        out = {"id": row["id"], "split": row["split"], "category": row["category"], "verdict": row["state"],
               "reason": row["reason"] or "", "lq_file": os.path.join(lq_dir, row["key"])}
        w.writerow(out)
        n += 1
        if len(first) < shown:
            first.append(out)
    write_text(os.path.join(out_raw, REJECTIONS_FILE), buf.getvalue())
    return n, first


def apply_review(journal: Journal, out_raw: str) -> dict[str, int]:
    """Apply the accept/reject decisions a person wrote into review.csv; returns counts.

    All or nothing: one transaction, and any bad row (an unknown decision, a pair that is
    not waiting for review) applies none of them. A decision may name a pair in state
    ``review``, or one a person already decided (re-applying the same file is harmless);
    a pair QC rejected, or one that failed or was refused, cannot be accepted here.
    """
    path = os.path.join(out_raw, REVIEW_FILE)
    done = {"accepted": 0, "rejected": 0}
    if not os.path.isfile(path):
        return done
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        if not {"id", "split", "decision"} <= set(reader.fieldnames or ()):
            raise ReviewError(f"{path}: needs columns id, split, decision; found {reader.fieldnames}")
        decisions = [(reader.line_num, r) for r in reader]
    with journal.transaction():
        for line, r in decisions:
            decision = (r.get("decision") or "").strip().lower()
            if not decision:
                continue
            if decision not in ("accept", "reject"):
                raise ReviewError(f"{path}:{line}: decision {r['decision']!r}; write accept, reject or nothing "
                                  "(no decision in the file was applied)")
            pair = journal.pair_by_id(r["split"], r["id"])
            if pair is None or pair["hq_file"] is None:
                raise ReviewError(f"{path}:{line}: no generated pair {r['split']}/{r['id']} in this run's journal "
                                  "(no decision in the file was applied)")
            if pair["state"] != "review" and pair["decided_by"] not in ("manual", KEPT):
                raise ReviewError(f"{path}:{line}: {r['split']}/{r['id']} is {pair['state']} (decided by "
                                  f"{pair['decided_by']}), not waiting for review; only pairs listed by the last "
                                  "run can be decided (no decision in the file was applied)")
            state = "accepted" if decision == "accept" else "rejected"
            journal.update_pair(pair["key"], state=state, decided_by="manual",
                                reason=f"manual: {decision}" + (f" ({r['note']})" if r.get("note") else ""))
            done[state] += 1
    return done


def write_report(out_raw: str, report: dict) -> None:
    write_json(os.path.join(out_raw, "synth-report.json"), report)
