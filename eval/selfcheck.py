"""The calibration self-check: score pyiqa's calibration set and compare with golden values.

The set and its values are data (``eval/calibration/pyiqa-0.1.16.yaml``, with their source):
five TID2013 pairs pinned by URL and sha256, and pyiqa's published score of each metric on
each pair. ``ggt weights fetch`` downloads the images next to the weights (eval/download.py:
an interrupted download resumes); ``ggt selfcheck`` runs each metric with pyiqa's defaults, as the
published values were made, and records the outcome per install (pyiqa, torch, device
type) in the user cache, where every report's fingerprint reads it.

``GGT_CALIBRATION`` (a YAML file) replaces the shipped set, ``GGT_CALIBRATION_URL`` its
``base_url`` (a mirror, or a local server in tests).
"""

from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass
from datetime import datetime, timezone

from ..atomic import write_json
from ..cache_dir import user_cache
from ..errors import GGTError
from ..hashing import file_sha256
from .download import download
from .protocol import Protocol

SHIPPED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "calibration", "pyiqa-0.1.16.yaml")
STORE = "ggt-calibration"          # beside pyiqa's own store in the torch hub dir
STATES = ("passed", "failed", "incomplete", "not run")     # of an install's last self-check (state())


class CalibrationError(GGTError):
    """The calibration set cannot be read or fetched, or an install fails its self-check."""


@dataclass(frozen=True)
class Calibration:
    path: str
    source: str
    base_url: str
    pairs: tuple[str, ...]
    files: dict[str, str]                          # relative path -> sha256
    golden: dict[str, tuple[float, list[float]]]   # pyiqa metric -> (tolerance, one value per pair)


def load(path: str | None = None) -> Calibration:
    import yaml

    path = path or os.environ.get("GGT_CALIBRATION") or SHIPPED
    try:
        with open(path, encoding="utf-8") as f:
            d = yaml.safe_load(f)
        pairs = tuple(d["pairs"])
        files = {str(k): str(v) for k, v in d["files"].items()}
        golden = {str(k): (float(v["tolerance"]), [float(x) for x in v["pyiqa"]])
                  for k, v in d["metrics"].items()}
        source, base = str(d["source"]), str(d["base_url"])
    except (OSError, yaml.YAMLError) as e:
        raise CalibrationError(f"{path}: cannot read the calibration set ({e})") from None
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise CalibrationError(f"{path}: not a calibration set (needs source, base_url, pairs, files "
                               f"and metrics: {{NAME: {{tolerance, pyiqa: [...]}}}}; {type(e).__name__}: {e})") from None
    for name, (_, values) in golden.items():
        if len(values) != len(pairs):
            raise CalibrationError(f"{path}: metric {name!r} has {len(values)} values for {len(pairs)} pairs")
    for rel in files:       # joined under the image store: nothing may point outside it
        if os.path.isabs(rel) or ".." in rel.split("/"):
            raise CalibrationError(f"{path}: file {rel!r} must be a relative path inside the set")
    for p in pairs:
        for rel in (f"dist_dir/{p}", f"ref_dir/{p}"):
            if rel not in files:
                raise CalibrationError(f"{path}: pair {p!r} needs {rel} in files, with its sha256")
    base = os.environ.get("GGT_CALIBRATION_URL") or base
    return Calibration(path, source, base.rstrip("/"), pairs, files, golden)


def images_dir() -> str:
    from .weights import store_dir

    return store_dir(STORE)


def fetch_images(cal: Calibration) -> list[str]:
    """Every calibration image in place and hash-checked; downloads what is missing or wrong."""
    root = images_dir()
    fetched = []
    for rel, sha in sorted(cal.files.items()):
        dest = os.path.join(root, rel)
        if os.path.isfile(dest) and file_sha256(dest) == sha:
            continue
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        download(f"{cal.base_url}/{rel}", dest, sha)
        fetched.append(dest)
    return fetched


def require_images(cal: Calibration) -> str:
    root = images_dir()
    for rel, sha in sorted(cal.files.items()):
        path = os.path.join(root, rel)
        if not os.path.isfile(path):
            raise CalibrationError(f"{path}: calibration image missing; fetch it with `ggt weights fetch`")
        digest = file_sha256(path)
        if digest != sha:
            raise CalibrationError(f"{path}: sha256 {digest} is not the calibration set's {sha}; "
                                   "delete it and run `ggt weights fetch`")
    return root


def score_metric(name: str, root: str, pairs, device: str) -> list[float]:
    """pyiqa's metric with its defaults (as the golden values were made), on each pair's files."""
    import pyiqa

    out, where = [], "while building it"
    try:
        with contextlib.redirect_stdout(io.StringIO()):    # pyiqa prints "Loading pretrained model"
            metric = pyiqa.create_metric(name, device=device)
        for p in pairs:
            dist, ref = os.path.join(root, "dist_dir", p), os.path.join(root, "ref_dir", p)
            where = f"on {dist}"
            out.append(float((metric(dist, ref) if metric.metric_mode == "FR" else metric(dist)).item()))
    except Exception as e:  # noqa: BLE001 (pyiqa raises anything; the self-check names the metric)
        raise CalibrationError(f"metric {name!r}: pyiqa failed {where} ({type(e).__name__}: {e})") from None
    return out


def compare(name: str, values: list[float], cal: Calibration) -> dict:
    tol, golden = cal.golden[name]
    dev = [abs(v - g) for v, g in zip(values, golden)]
    worst = max(range(len(dev)), key=dev.__getitem__)
    return {"metric": name, "passed": dev[worst] <= tol, "max_deviation": dev[worst],
            "tolerance": tol, "image": cal.pairs[worst], "value": values[worst], "golden": golden[worst]}


def install_key(device: str) -> dict[str, str]:
    """What a self-check vouches for: this pyiqa, this torch, this kind of device."""
    import torch

    from .metrics import pyiqa_version

    kind = device.split(":")[0].split()[0]     # "cuda:0 (NVIDIA H200)" -> "cuda"
    return {"pyiqa": pyiqa_version(), "torch": torch.__version__, "device": kind}


def state_path(key: dict[str, str]) -> str:
    return user_cache("selfcheck", f"pyiqa-{key['pyiqa']}_torch-{key['torch']}_{key['device']}.json")


def state(device: str) -> dict:
    """The last self-check of this install on ``device``: state passed, failed, incomplete or not run."""
    import json

    key = install_key(device)
    try:
        with open(state_path(key), encoding="utf-8") as f:
            record = json.load(f)
    except (OSError, ValueError):
        return {"state": "not run", **key}
    return record if isinstance(record, dict) and "state" in record else {"state": "not run", **key}


def summary_line(record: dict) -> str | None:
    """One line when the self-check has not passed, else None."""
    s = record.get("state")
    if s == "passed":
        return None
    where = f"pyiqa {record.get('pyiqa')}, torch {record.get('torch')}, {record.get('device')}"
    if s == "failed":
        why = "failed: " + failure_text(record["failed"][0])
    else:
        why = "incomplete (some metrics were not checked)" if s == "incomplete" else "not run"
    return f"self-check {why} for {where}; run `ggt selfcheck` before trusting these scores"


def failure_text(failed: dict) -> str:
    """One metric that failed, as ``ggt score`` and the leaderboard say it: "psnr off by 0.0123 on
    i01.bmp (tolerance 0.001)"; where ``image`` or ``tolerance`` is None, it is left out."""
    on = f" on {failed['image']}" if failed.get("image") else ""
    tolerance = f" (tolerance {failed['tolerance']:g})" if failed.get("tolerance") is not None else ""
    return f"{failed['metric']} off by {failed['max_deviation']:.3g}{on}{tolerance}"


def run(protocol: Protocol, device: str) -> dict:
    """Check every metric of ``protocol`` that has golden values; record and return the outcome."""
    from .weights import resolve

    cal = load()
    root = require_images(cal)
    results, skipped = [], {}
    for spec in protocol.metrics:
        if spec.pyiqa not in cal.golden:
            skipped[spec.name] = "no golden value"
        elif resolve(spec)[1]:
            skipped[spec.name] = "weights missing (`ggt weights fetch`)"
        else:
            results.append({"name": spec.name, **compare(spec.pyiqa, score_metric(spec.pyiqa, root, cal.pairs,
                                                                                   device), cal)})
    failed = [r for r in results if not r["passed"]]
    missed = [k for k, why in skipped.items() if why != "no golden value"]
    key = install_key(device)
    record = {"state": "failed" if failed else "incomplete" if missed or not results else "passed",
              **key, "checked": results, "failed": failed, "skipped": skipped,
              "calibration": {"file": os.path.basename(cal.path), "sha256": file_sha256(cal.path),
                              "source": cal.source},
              "when": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    os.makedirs(os.path.dirname(state_path(key)), exist_ok=True)
    write_json(state_path(key), record)
    return record
