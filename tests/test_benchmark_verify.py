"""ggt leaderboard verify (ggt_dataset/benchmark/verify.py): re-scoring submitted outputs.

A faithful record comes out verified; an edited mean, outputs swapped after submission and
a per-image table that disagrees with its means each come out mismatch, naming what differs.
"""

# Fixtures imported from benchmark_fixtures are redefined as arguments by design (pytest).
# ruff: noqa: F811
from __future__ import annotations

import json
import os
import zipfile

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from benchmark_fixtures import MODEL, outputs, report, results, summary  # noqa: F401 (fixtures)
from ggt_dataset.eval.protocol import load

from ggt_dataset.benchmark.record import read_record
from ggt_dataset.cli.main import main


def _read(path) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def _submit(report_dir, results_dir, outputs_dir=None) -> str:
    args = ["submit", *([report_dir] if report_dir else []), "--results", results_dir, "--model", MODEL]
    assert main(args + (["--outputs", outputs_dir] if outputs_dir else [])) == 0
    version = summary(report_dir)["fingerprint"]["protocol_version"] if report_dir else load("ggt").version
    return os.path.join(results_dir, f"submissions/org__restorer/ggt-v{version}.json")


def _verify(results_dir, eval_set, capsys, *extra) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["leaderboard", "verify", results_dir, "--reference", eval_set, "--device", "cpu", *extra])
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "unexpected" not in err, err
    return code, out


@pytest.mark.slow
def test_faithful_record_is_verified(report, results, outputs, eval_set, capsys):
    path = _submit(report, results, outputs)
    code, out = _verify(results, eval_set, capsys)
    r = read_record(path)
    assert code == 0 and r.status == "verified", out
    v = r.verification
    assert v["differences"] == [] and v["problems"] == [] and v["date"]
    assert v["fingerprint"]["device"] == "cpu" and v["fingerprint"]["protocol_sha256"] == r.protocol["sha256"]
    assert v["tolerances"] == {"psnr": load("ggt").metric("psnr").tolerance, "ssim": 0.0}
    assert f"{MODEL} (ggt v{r.protocol['version']}): verified" in out and "tolerance per metric: psnr" in out


@pytest.mark.slow
def test_edited_mean_is_a_mismatch(report, results, outputs, eval_set, capsys):
    path = _submit(report, results, outputs)
    data = json.loads(_read(path))
    data["overall"]["psnr"]["mean"] += 0.01
    with open(path, "w") as f:
        json.dump(data, f)
    code, out = _verify(results, eval_set, capsys)
    r = read_record(path)
    assert code == 1 and r.status == "mismatch"
    diffs = {(d["where"], d["metric"]) for d in r.verification["differences"]}
    assert diffs == {("overall", "psnr")}
    assert abs(r.verification["differences"][0]["diff"] - 0.01) < 1e-9
    assert "overall.psnr: claimed" in out and "differs by 0.01" in out
    # the record's own table no longer gives that mean either
    assert any("does not give the claimed means" in p for p in r.verification["problems"])


@pytest.mark.slow
def test_outputs_swapped_after_submission_is_a_mismatch(report, results, outputs, eval_set, capsys):
    path = _submit(report, results, outputs)
    stored = os.path.join(results, read_record(path).outputs["path"])
    with zipfile.ZipFile(stored) as z:
        members = {n: z.read(n) for n in z.namelist()}
    first, second = sorted(members)[:2]                # two outputs trade places
    members[first], members[second] = members[second], members[first]
    with zipfile.ZipFile(stored, "w") as z:
        for n, b in members.items():
            z.writestr(n, b)
    code, _ = _verify(results, eval_set, capsys)
    r = read_record(path)
    assert code == 1 and r.status == "mismatch"
    assert any("changed since submission (2)" in p for p in r.verification["problems"]), r.verification
    assert r.verification["differences"], "the re-scored means differ too"


@pytest.mark.slow
def test_table_that_disagrees_with_its_means_is_a_mismatch(report, results, outputs, eval_set, capsys):
    path = _submit(report, results, outputs)
    table_path = path[:-5] + ".parquet"
    table = pq.read_table(table_path)
    ssim = table.column("ssim").to_pylist()
    ssim[3] = 0.0
    pq.write_table(table.set_column(table.column_names.index("ssim"), "ssim", pa.array(ssim)), table_path)
    code, _ = _verify(results, eval_set, capsys)
    r = read_record(path)
    assert code == 1 and r.status == "mismatch" and r.verification["differences"] == []
    assert any("per-image table does not give the claimed means" in p for p in r.verification["problems"])


def test_record_without_outputs_stays_self_reported(report, results, eval_set, capsys):
    path = _submit(report, results)
    before = _read(path)
    code, out = _verify(results, eval_set, capsys)
    assert code == 0 and "self-reported; no outputs" in out
    assert _read(path) == before


@pytest.mark.slow
def test_pending_record_is_scored(results, outputs, eval_set, capsys, report):
    path = _submit(None, results, outputs)
    code, out = _verify(results, eval_set, capsys, "--metrics", "psnr,ssim")
    r = read_record(path)
    assert code == 0 and r.status == "verified", out
    s = summary(report)                         # the same outputs, scored by the submitter's report
    assert r.overall == s["overall"] and r.per_category == s["per_category"]
    assert os.path.isfile(path[:-5] + ".parquet")


def test_only_one_model(report, results, outputs, eval_set, capsys):
    path = _submit(report, results, outputs)
    capsys.readouterr()
    assert main(["leaderboard", "verify", results, "--reference", eval_set, "--only", "org/other"]) == 1
    assert "no record for org/other" in capsys.readouterr().err
    assert read_record(path).status == "self-reported"


def test_tolerance_is_the_protocols_and_bounds_each_mean():
    from ggt_dataset.benchmark.means import differences

    m = {"psnr": {"mean": 20.0, "n": 3, "nonfinite": 0}}
    near = {"psnr": {"mean": 20.0 + 4e-6, "n": 3, "nonfinite": 0}}      # CPU against CUDA (issue #10)
    assert differences((m, {}), (near, {}), {"psnr": 1e-5}) == []
    [d] = differences((m, {}), (near, {}), {"psnr": 0.0})                 # bit-identical expected
    assert (d["where"], d["metric"], d["tolerance"]) == ("overall", "psnr", 0.0)
    recount = {"psnr": {"mean": 20.0, "n": 2, "nonfinite": 1}}
    assert differences((m, {}), (recount, {}), {"psnr": 1.0})[0]["counts"] == {"n": [3, 2], "nonfinite": [0, 1]}
    assert load("ggt").metric("psnr").tolerance == 1e-5 and load("ggt").metric("ssim").tolerance == 0.0


def test_bad_tolerance_in_a_protocol_is_refused(tmp_path):
    from ggt_dataset.eval.protocol import ProtocolError

    f = tmp_path / "p.yaml"
    f.write_text("name: x\nmetadata: {version: 1}\nmetrics: {p: {pyiqa: psnr, kind: FR, better: higher, "
                 "tolerance: -1}}\n")
    with pytest.raises(ProtocolError, match=r"p\.yaml: metric 'p': tolerance must be a number >= 0, got -1"):
        load(str(f))


@pytest.mark.slow
def test_verify_a_hub_results_repo_opens_a_pull_request(report, outputs, eval_set, tmp_path):
    """Submit (a PR), merge it, verify: the real client over HTTP against tests/hub_server.py."""
    import subprocess
    import sys

    from hub_server import HubServer

    fp = summary(report)["fingerprint"]
    config = json.dumps({"protocols": {"ggt": fp["protocol_sha256"]}, "test_sets": [fp["test_set"]["sha256"]]})
    path = f"submissions/org__restorer/ggt-v{fp['protocol_version']}.json"
    with HubServer() as hub:
        env = {**os.environ, **hub.env(str(tmp_path / "hf"))}

        def run(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=300,
                                  check=False)

        seed = ("import sys; from huggingface_hub import HfApi; api = HfApi(); "
                "api.create_repo('org/results', repo_type='dataset'); "
                "api.upload_file(path_or_fileobj=sys.argv[1].encode(), path_in_repo='ggt-results.yaml', "
                "repo_id='org/results', repo_type='dataset')")
        assert run("-c", seed, config).returncode == 0
        r = run("-m", "ggt_dataset.cli.main", "submit", report, "--results", "org/results", "--model", MODEL,
                "--outputs", outputs)
        assert r.returncode == 0, r.stderr[-3000:]
        merge = "from huggingface_hub import HfApi; HfApi().merge_pull_request('org/results', 1, repo_type='dataset')"
        assert run("-c", merge).returncode == 0
        r = run("-m", "ggt_dataset.cli.main", "leaderboard", "verify", "org/results", "--reference", eval_set,
                "--device", "cpu")
        assert r.returncode == 0 and ": verified" in r.stdout, r.stdout + r.stderr[-3000:]
        assert json.loads(hub.files("org/results")[path])["status"] == "self-reported"   # main: until merged
        assert json.loads(hub.files("org/results", "refs/pr/2")[path])["status"] == "verified"
        assert hub.gaps == []


def test_a_record_of_another_protocol_version_is_named_and_the_others_still_verified(report, results, outputs,
                                                                                     eval_set, capsys):
    path = _submit(report, results, outputs)
    old = read_record(path)
    stale = old.replace(model={**old.model, "id": "org/older"},
                        protocol={**old.protocol, "version": 1, "sha256": "0" * 64})
    stale_path = os.path.join(results, stale.path)
    os.makedirs(os.path.dirname(stale_path))
    with open(stale_path, "w", encoding="utf-8") as f:
        f.write(stale.to_json())
    code, out = _verify(results, eval_set, capsys)
    assert code == 1
    assert "org/older (ggt v1): self-reported; not verified: " in out and "sha256 000000000000" in out, out
    assert read_record(path).status == "verified" and _read(stale_path) == stale.to_json()
