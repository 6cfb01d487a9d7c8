"""ggt submit (ggt_dataset/benchmark/submit.py): records written into a results folder, each refusal
with its reason and nothing written; one pull request on a Hub stand-in over HTTP."""

# Fixtures imported from benchmark_fixtures are redefined as arguments by design (pytest).
# ruff: noqa: F811
from __future__ import annotations

import hashlib
import json
import os
import zipfile

import pyarrow.parquet as pq
import pytest
from benchmark_fixtures import (  # noqa: F401 (fixtures)
    MODEL,
    accepting,
    outputs,
    report,
    results,
    score,
    summary,
)

from ggt_dataset.benchmark.record import read_record
from ggt_dataset.cli.main import main
from ggt_dataset.hashing import file_sha256

RECORD = "submissions/org__restorer/ggt-v{}.json"


def _read(path) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def _record_path(results_dir: str, report_dir: str) -> str:
    version = summary(report_dir)["fingerprint"]["protocol_version"]
    return os.path.join(results_dir, RECORD.format(version))


def _files(folder: str) -> list[str]:
    return sorted(os.path.relpath(os.path.join(d, f), folder) for d, _, fs in os.walk(folder) for f in fs)


def test_submit_report_and_outputs_to_a_folder(report, results, outputs, capsys):
    assert main(["submit", report, "--results", results, "--model", MODEL, "--model-revision", "abc123",
                 "--outputs", outputs, "--name", "Restorer", "--paper", "https://example.org/p"]) == 0
    path = _record_path(results, report)
    r = read_record(path)
    s = summary(report)
    assert r.status == "self-reported"
    assert r.model == {"id": MODEL, "revision": "abc123", "name": "Restorer", "paper": "https://example.org/p"}
    assert r.fingerprint == s["fingerprint"] and r.test_set == s["fingerprint"]["test_set"]
    assert r.overall == s["overall"] and r.per_category == s["per_category"]
    assert set(r.metrics) == {"psnr", "ssim"}
    # the per-image table beside it is the report's, byte for byte
    table = path[:-5] + ".parquet"
    with open(table, "rb") as a, open(os.path.join(report, "per_image.parquet"), "rb") as b:
        assert a.read() == b.read()
    assert r.per_image == {"file": os.path.basename(table), "sha256": file_sha256(table)}
    # every output's sha256, and the outputs themselves beside the record (a folder is zipped)
    ids = pq.read_table(table).column("id").to_pylist()
    assert sorted(r.outputs["sha256"]) == sorted(ids) and len(ids) == 18
    with zipfile.ZipFile(os.path.join(results, r.outputs["path"])) as z:
        for pair_id, digest in r.outputs["sha256"].items():
            member = next(n for n in z.namelist() if os.path.splitext(n)[0] == pair_id)
            assert hashlib.sha256(z.read(member)).hexdigest() == digest
    assert r.outputs["repo"] is None and r.outputs["kind"] == "zip"
    stem = RECORD.format(r.protocol["version"])[:-5]
    assert _files(results) == sorted(["ggt-results.yaml", stem + ".json", stem + ".parquet", stem + ".outputs.zip"])
    assert "self-reported" in capsys.readouterr().out


def test_existing_record_needs_replace(report, results, capsys):
    assert main(["submit", report, "--results", results, "--model", MODEL]) == 0
    before = _read(_record_path(results, report))
    capsys.readouterr()
    assert main(["submit", report, "--results", results, "--model", MODEL]) == 1
    err = capsys.readouterr().err
    assert "exists already" in err and "--replace" in err and "Traceback" not in err
    assert _read(_record_path(results, report)) == before
    assert main(["submit", report, "--results", results, "--model", MODEL, "--replace", "--name", "New"]) == 0
    assert read_record(_record_path(results, report)).model["name"] == "New"


def test_dry_run_writes_nothing(report, results, capsys):
    assert main(["submit", report, "--results", results, "--model", MODEL, "--dry-run"]) == 0
    assert _files(results) == ["ggt-results.yaml"]
    assert "would write 2 files" in capsys.readouterr().out


def test_outputs_only_is_pending(results, outputs, report):
    assert main(["submit", "--outputs", outputs, "--results", results, "--model", MODEL]) == 0
    r = read_record(_record_path(results, report))
    assert r.status == "pending" and r.overall == {} and r.fingerprint is None and r.per_image is None
    assert len(r.outputs["sha256"]) == 18


def _refused(capsys, args, *words):
    assert main(["submit", *args]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ggt submit: error: ") and "Traceback" not in err and "unexpected" not in err
    for w in words:
        assert w in err, err
    return err


def test_partial_report_refused(identity_preds, eval_set, tmp_path, capsys, results):
    few = tmp_path / "few"
    os.makedirs(few / "rain")
    name = min(os.listdir(os.path.join(identity_preds, "rain")))
    with open(os.path.join(identity_preds, "rain", name), "rb") as f:
        (few / "rain" / name).write_bytes(f.read())
    partial = score(str(few), eval_set, tmp_path / "partial", "--allow-partial")
    _refused(capsys, [partial, "--results", results, "--model", MODEL], "PARTIAL report", "1 of 18")
    assert _files(results) == ["ggt-results.yaml"]


def test_other_test_set_or_protocol_refused(report, tmp_path, capsys):
    other_set = accepting(tmp_path / "a", report, test_sets=["0" * 64])
    _refused(capsys, [report, "--results", other_set, "--model", MODEL], "test set", "does not accept")
    other_proto = accepting(tmp_path / "b", report, protocols={"ntire": "1" * 64})
    _refused(capsys, [report, "--results", other_proto, "--model", MODEL], "protocol 'ggt'", "not accepted")
    no_config = tmp_path / "c"
    no_config.mkdir()
    _refused(capsys, [report, "--results", str(no_config), "--model", MODEL], "ggt-results.yaml: missing")


@pytest.mark.parametrize("model", ["", "restorer", "org/", "a/b/c"])
def test_model_id_required(report, results, capsys, model):
    _refused(capsys, [report, "--results", results, "--model", model], "ORG/NAME")
    assert _files(results) == ["ggt-results.yaml"]


def test_report_whose_table_no_longer_gives_its_means_refused(report, results, tmp_path, capsys):
    import shutil

    import pyarrow as pa

    edited = shutil.copytree(report, tmp_path / "edited")
    table = pq.read_table(edited / "per_image.parquet")
    psnr = table.column("psnr").to_pylist()
    psnr[0] += 1.0
    pq.write_table(table.set_column(table.column_names.index("psnr"), "psnr", pa.array(psnr)),
                   edited / "per_image.parquet")
    _refused(capsys, [str(edited), "--results", results, "--model", MODEL], "per_image.parquet",
             "no longer give the means")
    assert _files(results) == ["ggt-results.yaml"]


def test_report_whose_summary_was_edited_refused(report, results, tmp_path, capsys):
    import shutil

    edited = shutil.copytree(report, tmp_path / "edited")
    s = json.loads(_read(edited / "summary.json"))
    s["per_category"]["haze"]["ssim"]["mean"] += 0.05         # a better claim than the images earned
    (edited / "summary.json").write_text(json.dumps(s))
    _refused(capsys, [str(edited), "--results", results, "--model", MODEL], "no longer give the means")
    assert _files(results) == ["ggt-results.yaml"]


def test_outputs_that_the_report_did_not_score_refused(report, results, outputs, capsys):
    victim = min(os.listdir(os.path.join(outputs, "rain")))
    os.remove(os.path.join(outputs, "rain", victim))
    _refused(capsys, [report, "--results", results, "--model", MODEL, "--outputs", outputs],
             "not the outputs the report scored")



@pytest.mark.slow
def test_submit_to_a_hub_repo_opens_one_pull_request(report, outputs, tmp_path):
    """The real huggingface_hub client, over HTTP, against tests/hub_server.py."""
    import base64
    import subprocess
    import sys

    from hub_server import HubServer

    fp = summary(report)["fingerprint"]
    config = json.dumps({"protocols": {"ggt": fp["protocol_sha256"]}, "test_sets": [fp["test_set"]["sha256"]]})
    with HubServer() as hub:
        hub.create_repo("org/results")
        hub.commit("org/results", "main", [{"key": "header", "value": {"summary": "config"}},
                                           {"key": "file", "value": {"path": "ggt-results.yaml", "encoding": "base64",
                                                                     "content": base64.b64encode(config.encode()).decode()}}],
                   create_pr=False)
        main_before = hub.files("org/results")
        env = {**os.environ, **hub.env(str(tmp_path / "hf"))}
        r = subprocess.run([sys.executable, "-m", "ggt_dataset.cli.main", "submit", report, "--results", "org/results",
                            "--model", MODEL, "--outputs", outputs], env=env, capture_output=True, text=True,
                           timeout=240, check=False)
        assert r.returncode == 0, r.stderr[-3000:]
        assert "/datasets/org/results/discussions/1" in r.stdout
        assert hub.files("org/results") == main_before          # main untouched: maintainers merge
        pr = hub.files("org/results", "refs/pr/1")
        path = RECORD.format(fp["protocol_version"])
        added = sorted(set(pr) - set(main_before))
        assert added == sorted([path, path[:-5] + ".parquet", path[:-5] + ".outputs.zip"])
        record = json.loads(pr[path])
        assert record["status"] == "self-reported" and record["outputs"]["path"] == path[:-5] + ".outputs.zip"
        with open(os.path.join(report, "per_image.parquet"), "rb") as f:
            assert pr[path[:-5] + ".parquet"] == f.read()
        assert len(hub.calls("POST", "/api/datasets/org/results/commit")) == 1
        # the Hub's refusals are one line each, never a traceback
        for repo, extra, words in (("org/none", {}, "org/none: no such dataset repo on the Hub"),
                                   ("org/results", {"HF_TOKEN": ""}, "the Hub refused to open a pull request on")):
            r = subprocess.run([sys.executable, "-m", "ggt_dataset.cli.main", "submit", report, "--results", repo,
                                "--model", "org/second"], env={**env, **extra}, capture_output=True, text=True,
                               timeout=240, check=False)
            assert r.returncode == 1 and words in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert hub.gaps == []


@pytest.mark.slow
def test_outputs_already_on_the_hub_are_recorded_where_they_are(outputs, results, tmp_path):
    import subprocess
    import sys

    from hub_server import HubServer

    with HubServer() as hub:
        env = {**os.environ, **hub.env(str(tmp_path / "hf"))}
        seed = ("import sys; from huggingface_hub import HfApi; api = HfApi(); "
                "api.create_repo('org/outs', repo_type='dataset'); "
                "api.upload_folder(folder_path=sys.argv[1], repo_id='org/outs', repo_type='dataset')")
        assert subprocess.run([sys.executable, "-c", seed, outputs], env=env, timeout=240, check=False).returncode == 0
        r = subprocess.run([sys.executable, "-m", "ggt_dataset.cli.main", "submit", "--outputs", "org/outs",
                            "--results", results, "--model", MODEL], env=env, capture_output=True, text=True,
                           timeout=240, check=False)
        assert r.returncode == 0, r.stderr[-3000:]
    from ggt_dataset.eval.protocol import load

    record = read_record(os.path.join(results, RECORD.format(load("ggt").version)))
    assert record.status == "pending" and record.outputs["repo"] == "org/outs" and record.outputs["path"] is None
    with open(os.path.join(outputs, "rain", min(os.listdir(os.path.join(outputs, "rain")))), "rb") as f:
        first = hashlib.sha256(f.read()).hexdigest()
    assert len(record.outputs["sha256"]) == 18 and first in record.outputs["sha256"].values()
    assert _files(results) == ["ggt-results.yaml", RECORD.format(load("ggt").version)]


def test_a_folder_of_outputs_is_zipped_in_a_temporary_folder_that_goes(report, results, outputs, tmp_path,
                                                                        monkeypatch):
    import tempfile

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    assert main(["submit", report, "--results", results, "--model", MODEL, "--outputs", outputs]) == 0
    assert os.listdir(scratch) == []


def test_leaderboard_init_accepts_the_shipped_protocol_and_the_test_split(report, eval_set, tmp_path, capsys):
    folder = str(tmp_path / "results")
    assert main(["leaderboard", "init", folder, "--reference", eval_set, "--protocol", "ggt",
                 "--protocol", "ntire"]) == 0
    fp = summary(report)["fingerprint"]
    text = _read(os.path.join(folder, "ggt-results.yaml"))
    assert f"ggt: {fp['protocol_sha256']}" in text and f"- {fp['test_set']['sha256']}" in text
    assert main(["submit", report, "--results", folder, "--model", MODEL]) == 0
    # the maintainers' file is theirs: a second init changes nothing
    assert main(["leaderboard", "init", folder, "--reference", eval_set]) == 1
    assert "exists; edit it by hand" in capsys.readouterr().err
    assert _read(os.path.join(folder, "ggt-results.yaml")) == text
    assert main(["leaderboard", "init", str(tmp_path / "other"), "--reference", eval_set, "--protocol",
                 "no-such-protocol"]) == 1
    assert not os.path.exists(tmp_path / "other" / "ggt-results.yaml")
