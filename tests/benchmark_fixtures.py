"""Fixtures shared by the benchmark tests: a real score report, a results folder that accepts it.

Imported by tests/test_benchmark_submit.py and tests/test_benchmark_verify.py. Reports are
made by the real `ggt score` on conftest's 18-pair eval set, restricted to PSNR and SSIM
(no weights needed), on the CPU.
"""

from __future__ import annotations

import json
import os
import shutil

import pytest

from ggt_dataset.cli.main import main

MODEL = "org/restorer"


def score(preds: str, reference: str, out, *extra: str) -> str:
    code = main(["score", preds, "--reference", reference, "--out", str(out), "--metrics", "psnr,ssim",
                 "--device", "cpu", "-q", *extra])
    assert code == 0
    return str(out)


def summary(report: str) -> dict:
    with open(f"{report}/summary.json", encoding="utf-8") as f:
        return json.load(f)


def accepting(folder, report: str, **override) -> str:
    """A results folder whose ggt-results.yaml accepts ``report``'s protocol and test set."""
    fp = summary(report)["fingerprint"]
    folder.mkdir(parents=True, exist_ok=True)
    protocols = override.get("protocols", {fp["protocol"]: fp["protocol_sha256"]})
    tests = override.get("test_sets", [fp["test_set"]["sha256"]])
    (folder / "ggt-results.yaml").write_text(json.dumps({"protocols": protocols, "test_sets": tests}))
    return str(folder)


@pytest.fixture(scope="session")
def report(identity_preds, eval_set, tmp_path_factory, request) -> str:
    """A complete report (PSNR, SSIM) of the identity baseline's outputs."""
    from conftest import made_once

    base = made_once(tmp_path_factory, request, "bench-report",
                     lambda path: score(identity_preds, eval_set, path / "report"))
    return os.path.join(base, "report")


@pytest.fixture
def results(tmp_path, report) -> str:
    return accepting(tmp_path / "results", report)


@pytest.fixture
def outputs(identity_preds, tmp_path) -> str:
    """A private copy of the outputs, which a test may change."""
    return str(shutil.copytree(identity_preds, tmp_path / "outputs"))
