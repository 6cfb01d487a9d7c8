"""Submission records (ggt_dataset/benchmark/record.py): round trip, and every refusal names file and field."""

from __future__ import annotations

import json

import pytest

from ggt_dataset.benchmark.record import (
    FORMAT_VERSION,
    Record,
    RecordError,
    read_record,
    record_path,
)


def _claimed(**changes) -> Record:
    base = {"model": {"id": "org/model", "revision": None, "name": None, "paper": None},
                "protocol": {"name": "ggt", "version": 1, "sha256": "ab" * 32}, "status": "self-reported",
                "submitted": "2026-12-01T00:00:00+00:00",
                "test_set": {"split": "test", "sha256": "cd" * 32, "pairs": 2},
                "fingerprint": {"protocol": "ggt"}, "metrics": {"psnr": {"better": "higher"}},
                "overall": {"psnr": {"mean": 20.5, "n": 2, "nonfinite": 0}},
                "per_category": {"rain": {"psnr": {"mean": 20.5, "n": 2, "nonfinite": 0}}}}
    return Record(**{**base, **changes})


def test_round_trip_through_a_file(tmp_path):
    r = _claimed()
    path = tmp_path / "r.json"
    path.write_text(r.to_json())
    assert read_record(str(path)) == r
    assert json.loads(r.to_json())["format"] == "ggt-submission"
    assert r.path == record_path("org/model", "ggt", 1) == "submissions/org__model/ggt-v1.json"


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.update(format_version=FORMAT_VERSION + 1), "format_version 2 is newer than this ggt-100k reads"),
    (lambda d: d.update(status="approved"), "status must be one of pending, self-reported, verified, mismatch"),
    (lambda d: d["model"].update(id="model"), "model.id: model id 'model': expected ORG/NAME"),
    (lambda d: d["overall"]["psnr"].update(mean="20"), "overall.psnr.mean must be a finite number or null"),
    (lambda d: d["per_category"]["rain"].pop("psnr") and d["per_category"]["rain"].update(lpips={}),
     "per_category.rain.lpips is not among its metrics"),
    (lambda d: d.update(status="verified"), "verification must be what the verifier found, found None"),
    (lambda d: d.pop("format"), 'not a submission record (no "format": "ggt-submission")'),
])
def test_bad_record_names_file_and_field(tmp_path, edit, message):
    data = json.loads(_claimed().to_json())
    edit(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(RecordError, match=f"^{path}: .*") as e:
        read_record(str(path))
    assert message in str(e.value)


def test_pending_record_needs_no_scores():
    r = Record(model={"id": "org/m"}, protocol={"name": "ggt", "version": 1, "sha256": "x"},
               status="pending", submitted="2026-12-01T00:00:00+00:00",
               outputs={"repo": None, "path": "x.zip", "kind": "zip", "sha256": {"rain/a": "00"}})
    assert Record.from_json(r.to_json()) == r
    with pytest.raises(RecordError, match="test_set.sha256 must be a sha256"):
        r.replace(status="self-reported")
