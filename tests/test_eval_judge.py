"""`ggt score --judge`: the optional VLM D/F judge (eval/judge.py), end to end.

Runs the real `ggt score` on conftest's 18-pair eval set (PSNR only, no weights), with the
real google-genai and openai SDK clients pointed at the local fake API server
(ggt_dataset/synth/fake_server.py), and HarnessIR's prompt files served by tests/file_server.py.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re

import pyarrow.parquet as pq
import pytest
from file_server import FileServer
from ggt_dataset.eval.judge_prompts import HARNESSIR_USER

from ggt_dataset.cli.main import main
from ggt_dataset.synth.df_judge import instruction_sha256, parse_scores

pytestmark = [pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession:DeprecationWarning")]
PAIRS = 18


@pytest.fixture
def fake(monkeypatch):
    pytest.importorskip("google.genai")
    pytest.importorskip("openai")
    from ggt_dataset.synth.fake_server import FakeAPIServer

    monkeypatch.setenv("GEMINI_API_KEY", "test-key")
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    with FakeAPIServer() as srv:
        yield srv


def _score(capsys, preds, ref, out, cache, *extra) -> tuple[int, str]:
    rc = main(["score", preds, "--reference", ref, "--out", str(out), "--metrics", "psnr", "--device", "cpu",
               "--cache-dir", str(cache), "-q", *extra])
    cap = capsys.readouterr()
    return rc, cap.out + cap.err


def _summary(out) -> dict:
    with open(os.path.join(out, "summary.json"), encoding="utf-8") as f:
        return json.load(f)


def _report(out) -> str:
    with open(os.path.join(out, "report.md"), encoding="utf-8") as f:
        return f.read()


@pytest.mark.slow
@pytest.mark.parametrize("provider, model", [("gemini", "gemini-3.5-flash"), ("openai", "gpt-5.4-mini")])
def test_a_judged_run_scores_every_image_and_a_rerun_pays_nothing(provider, model, fake, eval_set, identity_preds,
                                                                  tmp_path, capsys):
    judge = ["--judge", provider, "--base-url", fake.base_url]
    rc, text = _score(capsys, identity_preds, eval_set, tmp_path / "r1", tmp_path / "cache", *judge)
    assert rc == 0, text
    s = _summary(tmp_path / "r1")
    j = s["judge"]
    assert j["counts"]["ok"] == PAIRS and not j["partial"] and len(fake.requests) == PAIRS
    assert j["requests_sent"] == PAIRS and j["spent"] > 0
    # the fake answers the schema's numbers as 0.5: D = F = 0.5, DF = sqrt(0.25)
    assert j["overall"]["judge_d"]["mean"] == 0.5 and j["overall"]["judge_df"]["mean"] == pytest.approx(0.5)
    assert j["overall"]["judge_df"]["n"] == PAIRS and sum(v["judge_d"]["n"] for v in j["per_category"].values()) == PAIRS
    fp = s["fingerprint"]["judge"]
    assert fp["provider"] == provider and fp["model"] == model
    assert fp["prompt"] == "ggt-df-v1" and fp["prompt_sha256"] == instruction_sha256()
    assert not s["partial"] and s["overall"]["psnr"]["n"] == PAIRS       # the metrics are untouched
    table = pq.read_table(tmp_path / "r1" / "per_image.parquet").to_pylist()
    assert all(r["judge_status"] == "ok" and r["judge_df"] == pytest.approx(math.sqrt(r["judge_d"] * r["judge_f"]))
               for r in table)
    md = _report(tmp_path / "r1")
    assert "VLM judge" in md and "PARTIAL" not in md and f"`{model}`" in md and "ggt-df-v1" in md

    rc, text = _score(capsys, identity_preds, eval_set, tmp_path / "r2", tmp_path / "cache", *judge)
    assert rc == 0, text
    again = _summary(tmp_path / "r2")["judge"]
    assert len(fake.requests) == PAIRS                      # nothing sent a second time
    assert again["requests_sent"] == 0 and again["spent"] == 0
    assert again["overall"] == j["overall"] and again["counts"] == j["counts"]


@pytest.mark.slow
def test_refused_images_are_named_the_judge_columns_partial_and_a_rerun_pays_nothing(fake, eval_set, identity_preds, tmp_path, capsys):
    fake.add_fault("refuse", request=2)
    fake.add_fault("block_prompt", request=4)
    rc, text = _score(capsys, identity_preds, eval_set, tmp_path / "r", tmp_path / "cache",
                      "--judge", "gemini", "--base-url", fake.base_url)
    assert rc == 0, text                     # a refusal is an answer: nothing to run again for
    s = _summary(tmp_path / "r")
    j = s["judge"]
    assert j["counts"]["refused"] == 2 and j["counts"]["ok"] == PAIRS - 2 and j["partial"]
    assert j["overall"]["judge_d"]["n"] == PAIRS - 2 and not s["partial"]
    refused = [p["id"] for p in j["not_scored"]]
    md = _report(tmp_path / "r")
    assert "**PARTIAL** (judge columns only)" in md and "2 refused" in md
    assert all(f"`{pid}` refused" in md for pid in refused)
    table = {r["id"]: r for r in pq.read_table(tmp_path / "r" / "per_image.parquet").to_pylist()}
    assert all(table[pid]["judge_d"] is None and table[pid]["judge_status"] == "refused" for pid in refused)

    # a refusal is final, as a refused edit is: a re-run reuses it and pays for nothing again
    sent = len(fake.requests)
    rc, text = _score(capsys, identity_preds, eval_set, tmp_path / "r2", tmp_path / "cache",
                      "--judge", "gemini", "--base-url", fake.base_url)
    again = _summary(tmp_path / "r2")["judge"]
    assert rc == 0 and len(fake.requests) == sent and again["requests_sent"] == 0 and again["spent"] == 0
    assert [p["id"] for p in again["not_scored"]] == refused and again["counts"] == j["counts"]


@pytest.mark.slow
def test_a_budget_stop_leaves_the_rest_unjudged_and_says_partial(fake, eval_set, identity_preds, tmp_path, capsys):
    budget = 0.002      # a judge call costs about 0.00055 USD at gemini-3.5-flash's price here
    rc, text = _score(capsys, identity_preds, eval_set, tmp_path / "r", tmp_path / "cache",
                      "--judge", "gemini", "--base-url", fake.base_url, "--judge-budget", str(budget))
    assert rc == 3, text
    assert "PARTIAL" in text and "budget" in text
    s = _summary(tmp_path / "r")
    j = s["judge"]
    assert 1 <= j["counts"]["ok"] < PAIRS and j["counts"]["unjudged"] == PAIRS - j["counts"]["ok"]
    assert j["partial"] and "budget" in j["stop_reason"]
    # the Caller's bound: once a price is seen each call reserves it, and these calls cost alike
    assert 0 < j["spent"] <= budget + 1e-9 and j["requests_sent"] == j["counts"]["ok"] == len(fake.requests)
    assert not s["partial"] and s["overall"]["psnr"]["n"] == PAIRS
    assert "**PARTIAL** (judge columns only)" in _report(tmp_path / "r")


@pytest.mark.slow
def test_several_submissions_are_each_judged_under_one_budget(fake, eval_set, identity_preds, classical_preds,
                                                              tmp_path, capsys):
    """ggt score A/ B/ --judge: each report has its judge section; --judge-budget bounds the command."""
    out, budget = tmp_path / "many", 0.012       # about 21 calls' worth: A whole, B cut short
    rc = main(["score", identity_preds, classical_preds, "--reference", eval_set, "--out", str(out), "--metrics",
               "psnr", "--device", "cpu", "--cache-dir", str(tmp_path / "cache"), "-q", "--judge", "gemini",
               "--base-url", fake.base_url, "--judge-budget", str(budget)])
    text = capsys.readouterr()
    assert rc == 3, text.err
    first, second = (_summary(out / name)["judge"] for name in ("identity", "classical"))
    assert first["counts"]["ok"] == PAIRS and not first["partial"]
    assert 0 < second["counts"]["ok"] < PAIRS and second["partial"] and "budget" in second["stop_reason"]
    assert first["spent"] + second["spent"] <= budget + 1e-9
    assert len(fake.requests) == first["requests_sent"] + second["requests_sent"]


@pytest.mark.parametrize("args, message", [
    (["--judge", "claude"], "invalid choice: 'claude'"),
    (["--judge-budget", "1"], "--judge-budget is a setting of the judge"),
])
def test_bad_judge_options_fail_before_any_scoring(args, message, eval_set, identity_preds, tmp_path, capsys):
    try:
        rc = main(["score", identity_preds, "--reference", eval_set, "--out", str(tmp_path / "r"),
                   "--metrics", "psnr", "-q", *args])
    except SystemExit as e:                     # argparse's usage error
        rc = e.code
    assert rc != 0 and message in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_a_missing_api_key_fails_before_any_scoring(eval_set, identity_preds, tmp_path, capsys, monkeypatch):
    pytest.importorskip("google.genai")
    for name in ("GEMINI_API_KEY", "GOOGLE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    rc, text = _score(capsys, identity_preds, eval_set, tmp_path / "r", tmp_path / "cache", "--judge", "gemini")
    assert rc == 1 and "GEMINI_API_KEY" in text and "Traceback" not in text and "unexpected" not in text
    assert not (tmp_path / "r").exists()


CORE = ("# a comment line\nJudge {{TASK_TYPE}}. The user asked: {{USER_INTENT}}\n{{TASK_BLOCK}}\n"
        "Answer D and F.\n")
TYPES = "# blocks\n### [[mix]] ###\nMIX-RUBRIC\n### [[rain]] ###\nRAIN-RUBRIC\n"
INTENT = "### [[mix]] ###\nRestore it.\n### [[rain]] ###\nRemove the rain.\n"
FILES = {"core": ("df_core.txt", CORE), "types": ("df_types.txt", TYPES), "intent": ("df_intent.txt", INTENT)}


def _served() -> dict[str, bytes]:
    return {f"/prompts/df/{name}": text.encode() for name, text in FILES.values()}


def test_a_harnessir_prompt_file_with_another_sha256_is_refused_naming_it(eval_set, identity_preds, tmp_path,
                                                                         capsys, monkeypatch):
    """ggt.yaml pins HarnessIR's real files; the server has other bytes under their names."""
    pytest.importorskip("google.genai")
    monkeypatch.setenv("GEMINI_API_KEY", "test-key")
    with FileServer(_served()) as server:
        monkeypatch.setenv("GGT_JUDGE_PROMPT_URL", server.url)
        rc, text = _score(capsys, identity_preds, eval_set, tmp_path / "r", tmp_path / "cache",
                          "--judge", "gemini", "--judge-prompt", "harnessir")
    assert rc == 1 and "df_core.txt has sha256" in text and "is pinned" in text and "Traceback" not in text
    assert not (tmp_path / "r").exists() and not list((tmp_path / "cache").rglob("df_core.txt"))


@pytest.mark.slow
def test_harnessirs_prompt_is_fetched_built_per_type_and_sent_with_both_pictures(fake, eval_set, identity_preds,
                                                                                 tmp_path, capsys, monkeypatch):
    from ggt_dataset.eval.protocol import resolve_path

    files = {role: {"path": f"prompts/df/{name}", "sha256": hashlib.sha256(text.encode()).hexdigest()}
             for role, (name, text) in FILES.items()}
    judge = {"models": {"openai": "gpt-5.4-mini"}, "prompts": {"harnessir": {
        "name": "harnessir-test", "base_url": "http://unused.invalid", "files": files,
        "types": {c: ("rain" if c == "rain" else "mix") for c in ("mixed", "rain", "haze", "snow", "low_light",
                                                                     "old_photo")}}}}
    proto = tmp_path / "mine.yaml"
    proto.write_text(json.dumps({"include": resolve_path("ggt"), "name": "mine", "metadata": {"version": 1},
                                 "judge": judge}))
    with FileServer(_served()) as server:
        monkeypatch.setenv("GGT_JUDGE_PROMPT_URL", server.url)
        rc, text = _score(capsys, identity_preds, eval_set, tmp_path / "r", tmp_path / "cache", "--protocol",
                          str(proto), "--judge", "openai", "--judge-prompt", "harnessir", "--base-url", fake.base_url)
    assert rc == 0, text
    j = _summary(tmp_path / "r")["judge"]
    assert j["counts"]["ok"] == PAIRS and j["overall"]["judge_d"]["mean"] == 100      # integer 0-100: the fake's max
    assert j["prompt"] == "harnessir-test" and [f["sha256"] for f in j["prompt_files"]] == [
        files[r]["sha256"] for r in ("core", "types", "intent")]
    prompts = [r.prompt for r in fake.requests]
    rain = [p for p in prompts if "RAIN-RUBRIC" in p]
    assert len(rain) == 3 and all("Judge rain. The user asked: Remove the rain." in p for p in rain)
    assert all("a comment line" not in p and HARNESSIR_USER in p for p in prompts)
    # picture 1 is the LQ input's own bytes (the fake records the first picture of a request)
    from ggt_dataset.eval.references import open_references

    refs = open_references(eval_set)
    lq = {hashlib.sha256(data).hexdigest() for _, data in refs.iter_lq(set(refs.ids))}
    assert set(fake.counts_by_image()) == lq


def test_answers_outside_0_100_are_unreadable_never_clamped():
    assert parse_scores('{"removal": 90, "fidelity": 40, "reason": "ok"}').df == pytest.approx(60.0)
    assert "removal is 101" in parse_scores('{"removal": 101, "fidelity": 40}')
    assert "fidelity is -5" in parse_scores('{"removal": 10, "fidelity": -5}')
    assert "no fidelity" in parse_scores('{"removal": 10}')
    assert "not a JSON object" in parse_scores("D=80 F=40")
    assert parse_scores('{"D": 80, "F": 45, "D_why": "a", "F_why": "b"}', ("D", "F"), ("D_why", "F_why")).reason == "a b"


@pytest.mark.slow
def test_a_judged_report_is_submitted_and_verified_like_any_other(fake, eval_set, identity_preds, tmp_path, capsys):
    """The judge's section and columns ride along: submit keeps the per-image table whole, and
    `ggt leaderboard verify` re-scores the metrics (never the paid judge) and accepts it."""
    from pathlib import Path

    from benchmark_fixtures import accepting

    report = tmp_path / "r"
    rc, text = _score(capsys, identity_preds, eval_set, report, tmp_path / "cache", "--judge", "gemini",
                      "--base-url", fake.base_url)
    assert rc == 0, text
    results = accepting(Path(tmp_path / "results"), str(report))
    assert main(["submit", str(report), "--results", results, "--model", "acme/judged", "--model-revision", "r1",
                 "--outputs", identity_preds]) == 0
    sent = len(fake.requests)
    assert main(["leaderboard", "verify", results, "--reference", eval_set, "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"acme/judged \(ggt v\d+\): verified", out), out
    assert len(fake.requests) == sent                    # verifying asked the judge nothing
    table = next(Path(results).rglob("*.parquet"))
    assert "judge_df" in pq.read_table(table).column_names
