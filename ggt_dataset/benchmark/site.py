"""``ggt leaderboard build RESULTS --out SITE``: the leaderboard as a static site.

SITE holds ``index.html``, ``app.js`` and ``style.css`` (copied from ``static/``: no build
step, no server of its own, so any static host serves it, a static Hugging Face Space
included), ``data.json`` (the page's one input, built here), ``leaderboard.md``,
``results.parquet``, each valid record under ``records/`` (the page's "report" link) and
``eval_results/<org>__<name>.yaml`` (exports.py). Both folders are flat: removing an earlier
site cost ~3 ms a folder here, and a folder per model was half of a 200-record build.

A record is data. It is read only through :func:`..record.read_record`; one that fails
(bad JSON, a missing field, a protocol this ggt-100k does not ship) is listed as invalid
with its reason and never stops the build. Nothing in it is executed: a derived score's
formula comes from the pinned protocol (``eval/protocols``), never from the record, and the
page writes record text with ``textContent`` under a CSP that forbids inline script.

Ranking is ``ggt score --compare``'s (:func:`..eval.compare.rank_key`, eval/README.md
"Comparing"): ranked by the mean over all pairs; a NaN, a mixed infinity or a summary
without the kinds of its infinities is shown and never ranked. Only ``self-reported`` and
``verified`` records are ranked: a ``mismatch`` record's claims failed re-scoring, and a
``pending`` one has none. The page sorts by the ranks computed here, so JavaScript never
re-implements the rule.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from datetime import datetime, timezone
from functools import cache

from .. import hub
from ..atomic import replace_dir, write_bytes
from ..errors import GGTError
from ..eval.compare import rank_key
from ..eval.report import ARROW, cell
from .record import SUBMISSIONS, Record, RecordError, read_record
from .results import Results

STATIC = os.path.join(os.path.dirname(__file__), "static")
DATA_FORMAT = "ggt-leaderboard"
DATA_VERSION = 1
RANKED = ("self-reported", "verified")
# A derived score has no direction in the protocol file; the one shipped (NTIRE's
# perception score) is higher-is-better, so derived columns rank that way.
DERIVED_BETTER = "higher"


class SiteError(GGTError):
    """The leaderboard cannot be built (RESULTS unreadable, OUT unusable)."""


@cache
def pinned_protocol(name: str, version):
    """The shipped protocol ``name`` at ``version``, or None: the only source of formulas."""
    from ..eval import protocol

    if name not in protocol.list_protocols():
        return None
    p = protocol.load(name)
    return p if str(p.version) == str(version) else None


def read_records(folder: str) -> tuple[list[tuple[str, Record]], list[dict]]:
    """Every record under ``folder``'s ``submissions/``: (path, record) pairs, sorted, and the
    invalid ones as ``{"path", "reason"}``."""
    results = Results(folder)
    if not os.path.isdir(os.path.join(folder, SUBMISSIONS)):
        raise SiteError(f"{folder}: no {SUBMISSIONS}/ folder; expected a results repo or folder "
                        f"({SUBMISSIONS}/<org>__<name>/<protocol>-v<version>.json, docs/benchmark.md)")
    valid, invalid = [], []
    for rel in results.record_paths():
        path = os.path.join(folder, *rel.split("/"))
        try:
            rec = read_record(path)         # capped at MAX_RECORD_BYTES: a record is hostile
        except RecordError as e:      # its message starts with the file: say that once
            invalid.append({"path": rel, "reason": str(e).removeprefix(path + ": ")})
            continue
        reason = _unusable(rec, rel)
        if reason:
            invalid.append({"path": rel, "reason": reason})
        else:
            valid.append((rel, rec))
    return valid, invalid


def _unusable(rec: Record, rel: str) -> str | None:
    from ..eval import protocol

    p = rec.protocol
    pinned = pinned_protocol(p["name"], p["version"])
    if pinned is None:
        return (f"unknown protocol {p['name']!r} v{p['version']}; this leaderboard ranks "
                + ", ".join(f"{n} v{protocol.load(n).version}" for n in protocol.list_protocols()))
    if p["sha256"] != pinned.sha256():      # an edited copy under the same name and version
        return (f"protocol {p['name']} v{p['version']} with sha256 {p['sha256'][:12]}, not the pinned "
                f"protocol's {pinned.sha256()[:12]}; its scores are not comparable")
    if rec.path != rel:         # two files could otherwise claim one model and protocol
        return f"the record is {rec.path}'s (model {rec.model['id']}); a record must sit at its own path"
    return None


def _kinds(v: dict) -> str:
    """What the † of a cell stands for ("1 +inf, 2 NaN"), as --compare's footnote says it."""
    kinds = [f"{v[k]} {word}" for k, word in (("posinf", "+inf"), ("neginf", "-inf"), ("nan", "NaN")) if v.get(k)]
    return ", ".join(kinds) or (f"{v['nonfinite']} not finite" if v.get("nonfinite") else "")


def _cells(means: dict, better: dict, ranked: bool) -> dict:
    """Each metric's cell; ``better`` is the pinned protocol's direction, never the record's."""
    return {n: {"text": cell(v), "mean": v.get("mean"), "nonfinite": v.get("nonfinite", 0), "note": _kinds(v),
                "_key": rank_key(v, better[n]) if ranked else None}
            for n, v in means.items() if n in better}


def _derived(proto, means: dict, ranked: bool) -> dict:
    """Each derived score from the record's means (as report.py computes it: the finite
    means); ranked only when every input mean is over all pairs (no non-finite scores)."""
    from ..eval.protocol import _expr_names, evaluate_derived

    out = {}
    for name, expr in proto.derived:
        needed = _expr_names(expr, name)
        vals = {k: means[k].get("mean") for k in needed if k in means}
        if len(vals) < len(needed) or any(v is None for v in vals.values()):
            continue
        value = evaluate_derived(expr, vals)
        exact = all(not means[k].get("nonfinite") for k in needed) and math.isfinite(value)
        shown = f"{value:.4f}" if math.isfinite(value) else str(value)
        out[name] = {"text": shown + ("" if exact else " ‡"), "mean": value if math.isfinite(value) else None,
                     "nonfinite": 0 if exact else 1, "note": "" if exact else "from means with non-finite scores",
                     "_key": (0, 0, value) if exact and ranked else None}
    return out


def _links(rec: Record, rel: str) -> dict:
    paper = rec.model.get("paper")
    return {"model": f"{hub.endpoint()}/{rec.model['id']}",
            # a record is hostile: only http(s) URLs become links (no javascript:, no data:)
            "paper": paper if isinstance(paper, str) and paper.startswith(("https://", "http://")) else None,
            "report": site_record(rel)}


def site_record(rel: str) -> str:
    """Where the site keeps a copy of the record ``rel``: ``records/<org>__<name>__<protocol>-v<v>.json``
    (unique: a model id's parts hold no ``__``)."""
    return "records/" + rel[len(SUBMISSIONS) + 1:].replace("/", "__")


def _directions(proto) -> dict[str, str]:
    return {m.name: m.better for m in proto.metrics + proto.optional}


def _row(rel: str, rec: Record, proto) -> dict:
    ranked = rec.status in RANKED
    scope = {"overall": rec.overall, **rec.per_category}
    better = _directions(proto)
    cells = {where: {**_cells(means, better, ranked), **_derived(proto, means, ranked)}
             for where, means in scope.items()}
    pairs = (rec.test_set or {}).get("pairs")
    return {"id": rel, "model": rec.model["id"], "name": rec.model.get("name") or rec.model["id"],
            "revision": rec.model.get("revision"), "status": rec.status, "submitted": rec.submitted,
            "pairs": pairs, "links": _links(rec, rel), "cells": cells, **_selfcheck(rec.fingerprint)}


def _selfcheck(fingerprint: dict | None) -> dict:
    """The calibration check (ggt selfcheck) of the install that scored the report: ``selfcheck``,
    its state (None in reports made before it, or for a value that is no state), and
    ``selfcheck_failed``, what failed and by how much (None unless failed and recorded)."""
    from ..eval.selfcheck import STATES, failure_text

    record = (fingerprint or {}).get("selfcheck")
    record = record if isinstance(record, dict) else {}
    state = record.get("state")
    if state not in STATES:
        return {"selfcheck": None, "selfcheck_failed": None}
    failed = record.get("failed") if state == "failed" else None
    shown = [failure_text(f) for f in map(_failure, failed if isinstance(failed, list) else []) if f]
    return {"selfcheck": state, "selfcheck_failed": "; ".join(shown) or None}


def _failure(f) -> dict | None:
    """One ``failed`` entry's fields, kept only where typed as ggt selfcheck writes them (a record
    is hostile; the text goes into the page)."""
    def number(v) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    if not isinstance(f, dict) or not isinstance(f.get("metric"), str) or not number(f.get("max_deviation")):
        return None
    return {"metric": f["metric"], "max_deviation": f["max_deviation"],
            "image": f["image"] if isinstance(f.get("image"), str) else None,
            "tolerance": f["tolerance"] if number(f.get("tolerance")) else None}


def _assign_ranks(rows: list[dict]) -> None:
    """Per scope and column: rank 1 is best, ties share a rank, unrankable cells get None."""
    # O(n^2) per column is 40,000 comparisons for 200 records: well inside the 5 s budget
    columns = {(w, c) for r in rows for w, cs in r["cells"].items() for c in cs}
    for where, col in columns:
        cs = [r["cells"][where][col] for r in rows if col in r["cells"].get(where, {})]
        keys = sorted((c["_key"] for c in cs if c["_key"] is not None), reverse=True)
        for c in cs:
            k = c.pop("_key")
            c["rank"] = None if k is None else 1 + sum(1 for other in keys if other > k)
            c["best"] = c["rank"] == 1 and len(keys) > 1      # as --compare bolds: two or more ranked


def _table(key: tuple, rows: list[dict]) -> dict:
    proto = pinned_protocol(*key)
    better = _directions(proto)
    metrics = list(dict.fromkeys(n for r in rows for n in r["cells"].get("overall", {}) if n in better))
    _assign_ranks(rows)
    cats = list(dict.fromkeys(c for r in rows for c in r["cells"] if c != "overall"))
    return {"key": f"{key[0]}-v{key[1]}", "name": key[0], "version": key[1], "description": proto.description,
            "metrics": [{"name": n, "better": better[n], "arrow": ARROW[better[n]]} for n in metrics],
            "derived": [{"name": n, "better": DERIVED_BETTER, "arrow": ARROW[DERIVED_BETTER],
                         "formula": e} for n, e in proto.derived],
            "categories": cats, "rows": rows}


def site_data(records: list[tuple[str, Record]], invalid: list[dict], source: str) -> dict:
    """The page's JSON contract (docs/benchmark.md, "The leaderboard")."""
    groups: dict[tuple, list[dict]] = {}
    for rel, rec in records:
        key = (rec.protocol["name"], rec.protocol["version"])
        groups.setdefault(key, []).append(_row(rel, rec, pinned_protocol(*key)))
    return {"format": DATA_FORMAT, "format_version": DATA_VERSION, "source": source,
            "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "ranked_statuses": list(RANKED),
            "protocols": [_table(k, groups[k]) for k in sorted(groups, key=lambda k: (k[0], str(k[1])))],
            "invalid": invalid}


def build(results: str, out: str, *, dataset_id: str | None = None, revision: str | None = None,
          token: str | None = None) -> dict:
    """Build the site from RESULTS (a folder, or a Hub dataset repo id) into ``out``, whole or
    not at all (written beside it, then swapped in). Returns the site data."""
    from . import exports

    folder, source = _results_folder(results, revision, token)
    records, invalid = read_records(folder)
    data = site_data(records, invalid, source)
    parent = os.path.dirname(os.path.abspath(out))
    earlier_site = os.path.isfile(os.path.join(out, "data.json"))
    if os.path.exists(out) and not earlier_site and (not os.path.isdir(out) or os.listdir(out)):
        raise SiteError(f"{out}: exists and is not a leaderboard site (no data.json); "
                            "give a new or empty folder, or an earlier site to replace")
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".ggt-site-", dir=parent)
    try:
        for name in sorted(os.listdir(STATIC)):
            shutil.copyfile(os.path.join(STATIC, name), os.path.join(tmp, name))
        # compact: json's C encoder (indent= takes the pure-Python one, 5x slower for 200 records)
        write_bytes(os.path.join(tmp, "data.json"), json.dumps(data, separators=(",", ":")).encode(),
                    durable=False)
        os.makedirs(os.path.join(tmp, "records"))
        for rel, _ in records:
            shutil.copyfile(os.path.join(folder, rel), os.path.join(tmp, site_record(rel)))
        exports.write_all(tmp, data, records, dataset_id=dataset_id, source=source)
        # The folder is swapped in whole, so its files need no fsync each (two per file were a
        # third of the build): one sync before the swap, so a power cut leaves the old site or
        # this one, never empty files.
        os.sync()
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return data


def _results_folder(results: str, revision: str | None, token: str | None) -> tuple[str, str]:
    """A local folder as it is; a Hub dataset repo id: its ``submissions/``, downloaded whole
    (one snapshot, not a request per record)."""
    if Results(results, token).local:      # refuses what is neither a folder nor ORG/NAME
        # the folder's own name: the site is public, the builder's local path is not
        return results, os.path.basename(os.path.abspath(results))
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    try:
        path = snapshot_download(results, repo_type="dataset", revision=revision, token=token,
                                 allow_patterns=[f"{SUBMISSIONS}/**"])
    except (RepositoryNotFoundError, RevisionNotFoundError) as e:
        raise SiteError(f"{results}: no such dataset repo (or revision) on the Hub ({type(e).__name__})") from None
    except Exception as e:
        if hub.unreachable(e):
            raise hub.HubUnreachableError(hub.unreachable_message(f"cannot read {results}", e)) from None
        raise
    return path, results
