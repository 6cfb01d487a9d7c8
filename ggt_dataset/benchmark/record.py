"""A submission record: one model's claimed scores under one protocol, as one JSON file.

The one definition of the format (documented in docs/benchmark.md). ``ggt submit`` writes
records, ``ggt leaderboard verify`` updates their status, and the leaderboard site reads
them, all through :class:`Record`. A record is read with :func:`read_record` (or
:meth:`Record.from_json`), which checks every field it holds and names the file and the
field that is wrong; a newer ``format_version`` is refused, never half-read.

Layout, the same in a Hub dataset repo and a local folder::

    submissions/<org>__<name>/<protocol>-v<version>.json      the record
    submissions/<org>__<name>/<protocol>-v<version>.parquet   its per-image table (the report's)
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field

from ..errors import GGTError
from ..eval.metric_facts import DIRECTIONS

FORMAT = "ggt-submission"
FORMAT_VERSION = 1
SUBMISSIONS = "submissions"
# pending: outputs only, not scored yet; self-reported: scores from the submitter's report,
# not re-scored; verified / mismatch: re-scored by `ggt leaderboard verify`.
STATUSES = ("pending", "self-reported", "verified", "mismatch")
MAX_RECORD_BYTES = 16 * 2**20     # a 500-pair record is ~100 KB; the cap only stops a runaway file


class RecordError(GGTError):
    """A submission record cannot be read, written or accepted."""


def model_folder(model: str) -> str:
    """``ORG/NAME`` -> ``ORG__NAME``, the model's folder under ``submissions/``."""
    parts = model.split("/")
    if len(parts) != 2 or not all(parts) or any(p in (".", "..") or "__" in p for p in parts):
        raise RecordError(f"model id {model!r}: expected ORG/NAME, as a Hub model id "
                          "(no '__', no empty part)")
    return "__".join(parts)


def record_path(model: str, protocol: str, version) -> str:
    """The record's path inside a results repo or folder (``/`` separated); its per-image
    table is the same path with ``.parquet``."""
    return f"{SUBMISSIONS}/{model_folder(model)}/{protocol}-v{version}.json"


@dataclass(frozen=True)
class Record:
    """One record. Means are as summary.json holds them: ``{metric: {mean, n, nonfinite, ...}}``.

    Fields:
        model: ``{"id": "ORG/NAME", "revision", "name", "paper"}`` (the last three may be None).
        protocol: ``{"name", "version", "sha256"}``: the protocol the scores are under.
        status: one of STATUSES.
        submitted: ISO 8601 time of ``ggt submit``.
        test_set: the report's ``fingerprint.test_set`` (None while pending).
        fingerprint: the report's whole fingerprint (None while pending).
        metrics: ``{name: {"better": "higher"|"lower"}}``, the metrics with means.
        overall, per_category: the claimed means (empty while pending).
        per_image: file name of the per-image table beside the record, and its sha256.
        outputs: ``{"repo", "path", "kind", "sha256": {pair id: sha256 of its bytes}}`` or None.
        verification: what ``ggt leaderboard verify`` found (None before it ran).
    """

    model: dict
    protocol: dict
    status: str
    submitted: str
    test_set: dict | None = None
    fingerprint: dict | None = None
    metrics: dict = field(default_factory=dict)
    overall: dict = field(default_factory=dict)
    per_category: dict = field(default_factory=dict)
    per_image: dict | None = None
    outputs: dict | None = None
    verification: dict | None = None

    def __post_init__(self):
        _validate(self.to_dict(), "record")

    @property
    def path(self) -> str:
        return record_path(self.model["id"], self.protocol["name"], self.protocol["version"])

    def replace(self, **changes) -> Record:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return {"format": FORMAT, "format_version": FORMAT_VERSION,
                **{f.name: getattr(self, f.name) for f in dataclasses.fields(self)}}

    def to_json(self) -> str:
        # allow_nan=False: a record holds finite numbers only (non-finite scores are counted)
        return json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes, where: str = "record") -> Record:
        """Parse and check a record; errors name ``where`` (its file) and the field."""
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as e:
            raise RecordError(f"{where}: not JSON ({e})") from None
        _validate(data, where)
        record = cls.__new__(cls)       # checked above; skip __post_init__'s second pass
        for f in dataclasses.fields(cls):
            object.__setattr__(record, f.name, data.get(f.name, _default(f)))
        return record


def _default(f: dataclasses.Field):
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def read_record(path: str) -> Record:
    """The record in the file ``path``, checked."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_RECORD_BYTES + 1)
    except OSError as e:
        raise RecordError(f"{path}: cannot read a submission record ({e.strerror or e})") from None
    if len(raw) > MAX_RECORD_BYTES:
        raise RecordError(f"{path}: larger than {MAX_RECORD_BYTES >> 20} MiB; not a submission record")
    return Record.from_json(raw, path)


# -- checks: the first field that is wrong raises, naming the file and the field ------------

def _fail(where: str, key: str, want: str, found) -> None:
    shown = "nothing" if found is _MISSING else repr(found)[:60]
    raise RecordError(f"{where}: {key} must be {want}, found {shown}")


_MISSING = object()


def _get(data: dict, key: str, test, want: str, where: str, required: bool = True):
    v = data
    for k in key.split("."):
        v = v.get(k, _MISSING) if isinstance(v, dict) else _MISSING
    if v is _MISSING and not required:
        return None
    if v is _MISSING or not test(v):
        _fail(where, key, want, v)
    return v


def _text(v) -> bool:
    return isinstance(v, str) and bool(v)


def _opt_text(v) -> bool:
    return v is None or isinstance(v, str)


def _count(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _score(v) -> bool:
    return v is None or (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v))


def _obj(v) -> bool:
    return isinstance(v, dict)


def _opt_obj(v) -> bool:
    return v is None or isinstance(v, dict)


def _means(data: dict, key: str, metrics: dict, where: str) -> None:
    for name, m in _get(data, key, _obj, "an object", where).items():
        if name not in metrics:
            raise RecordError(f"{where}: {key}.{name} is not among its metrics ({', '.join(metrics)})")
        _get(data, f"{key}.{name}", _obj, "an object", where)
        if not _score(m.get("mean", _MISSING)):
            _fail(where, f"{key}.{name}.mean", "a finite number or null", m.get("mean", _MISSING))
        for count in ("n", "nonfinite"):
            if not _count(m.get(count, _MISSING)):
                _fail(where, f"{key}.{name}.{count}", "a count", m.get(count, _MISSING))


def _validate(data, where: str) -> None:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise RecordError(f"{where}: not a submission record (no \"format\": \"{FORMAT}\")")
    version = _get(data, "format_version", lambda v: isinstance(v, int) and not isinstance(v, bool)
                   and v >= 1, "an integer >= 1", where)
    if version > FORMAT_VERSION:
        raise RecordError(f"{where}: format_version {version} is newer than this ggt-100k reads "
                          f"({FORMAT_VERSION}); upgrade ggt-100k to read it")
    model = _get(data, "model.id", _text, "a model id ORG/NAME", where)
    try:
        model_folder(model)
    except RecordError as e:
        raise RecordError(f"{where}: model.id: {e}") from None
    for key in ("model.revision", "model.name", "model.paper"):
        _get(data, key, _opt_text, "a string or null", where, required=False)
    _get(data, "protocol.name", _text, "a protocol name", where)
    _get(data, "protocol.version", lambda v: _count(v) or _text(v), "a version", where)
    _get(data, "protocol.sha256", _text, "a sha256", where)
    status = _get(data, "status", lambda v: v in STATUSES, f"one of {', '.join(STATUSES)}", where)
    _get(data, "submitted", _text, "an ISO 8601 time", where)
    for key in ("test_set", "fingerprint", "per_image", "outputs", "verification"):
        _get(data, key, _opt_obj, "an object or null", where, required=False)
    metrics = _get(data, "metrics", _obj, "an object", where, required=False) or {}
    for name in metrics:
        _get(data, f"metrics.{name}.better", lambda v: v in DIRECTIONS, "'higher', 'lower' or 'unknown'", where)
    if status != "pending":
        _get(data, "test_set.sha256", _text, "a sha256 (the report's test set)", where)
        _get(data, "fingerprint", _obj, "the report's fingerprint", where)
        _means(data, "overall", metrics, where)
        for cat in _get(data, "per_category", _obj, "an object", where):
            _means(data, f"per_category.{cat}", metrics, where)
    if data.get("per_image") is not None:
        _get(data, "per_image.file", _text, "a file name", where)
        _get(data, "per_image.sha256", _text, "a sha256", where)
    if data.get("outputs") is not None:
        _get(data, "outputs.repo", _opt_text, "a Hub dataset repo id or null (this results repo)", where)
        _get(data, "outputs.path", _opt_text, "a file in that repo, or null (the whole repo)", where)
        _get(data, "outputs.kind", _text, "zip, parquet or folder", where)
        hashes = _get(data, "outputs.sha256", _obj, "an object {pair id: sha256}", where)
        bad = next((k for k, v in hashes.items() if not _text(v)), None)
        if bad is not None:
            _fail(where, f"outputs.sha256.{bad}", "a sha256", hashes[bad])
    if status in ("verified", "mismatch"):
        _get(data, "verification", _obj, "what the verifier found", where)
        _get(data, "verification.date", _text, "an ISO 8601 time", where)
        _get(data, "verification.fingerprint", _obj, "the verifier's fingerprint", where)
        _get(data, "verification.differences", lambda v: isinstance(v, list), "a list", where)
