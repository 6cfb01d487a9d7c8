"""`ggt leaderboard build`: the static leaderboard site from a results folder (or Hub repo).

Records are made with the real schema (tests/leaderboard_records.py), the CLI runs for real,
and the page is driven in Debian's Chromium (skipped without it, unless GGT_REQUIRE_BROWSER=1).
"""
# Fixtures imported from benchmark_fixtures and test_view_browser are redefined as arguments
# and local names by design (pytest).
# ruff: noqa: F811

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from benchmark_fixtures import outputs, report, results  # noqa: F401 (fixtures)
from ggt_dataset.eval import protocol
from leaderboard_records import make_record, mean, write
from test_view_browser import ARTIFACTS, browser  # noqa: F401  (the browser fixture: its skip/require logic)

from ggt_dataset.benchmark.record import Record

NTIRE = {"psnr": 20.0, "ssim": 0.6, "lpips": 0.3, "dists": 0.2, "musiq": 60.0, "maniqa": 0.4, "clipiqa": 0.5,
         "topiq_nr": 0.5, "niqe": 4.0}
# table keys: the shipped protocols' versions, whatever they are now
GGT, NT = (f"{n}-v{protocol.load(n).version}" for n in ("ggt", "ntire"))
TG, TN = f'table[data-protocol="{GGT}"]', f'table[data-protocol="{NT}"]'
# (1 - .3) + (1 - .2) + .5 + .4 + 60/100 + max(0, (10 - 4)/10), ntire.yaml's formula
PERCEPTION = 0.7 + 0.8 + 0.5 + 0.4 + 0.6 + 0.6


def ggt(*args, env=None):
    return subprocess.run([sys.executable, "-m", "ggt_dataset.cli.main", *args], check=False,
                          capture_output=True, text=True, env={**os.environ, **(env or {})})


def _invalid(results: str) -> None:
    """Three malformed records as the issue lists them, one in the wrong place, one under an
    edited protocol."""
    def put(rel: str, text: str) -> None:
        path = os.path.join(results, "submissions", *rel.split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)

    put(f"bad__json/{GGT}.json", "{nope")
    no_status = json.loads(make_record("bad/missing", {"psnr": 1.0}).to_json())
    del no_status["status"]
    put(f"bad__missing/{GGT}.json", json.dumps(no_status))
    unknown = json.loads(make_record("bad/proto", {"psnr": 1.0}).to_json())
    unknown["protocol"]["name"] = "secret"
    put(f"bad__proto/secret-v{GGT[5:]}.json", json.dumps(unknown))
    put(f"bad__moved/{GGT}.json", make_record("acme/a", {"psnr": 99.0}).to_json())
    edited = json.loads(make_record("bad/hash", {"psnr": 99.0}).to_json())
    edited["protocol"]["sha256"] = "0" * 64          # scored under an edited copy of the protocol
    put(f"bad__hash/{GGT}.json", json.dumps(edited))


def make_results(root) -> str:
    results = str(root / "results")
    write(results, make_record("acme/a", {"psnr": 25.0, "ssim": 0.8}, status="verified", name="Restorer A",
                               paper="https://arxiv.org/abs/2605.31039"))
    # one exact prediction: the mean over all pairs is +inf, the best possible PSNR
    write(results, make_record("acme/b", {"psnr": mean(24.0, 11, posinf=1), "ssim": 0.7}))
    # a NaN: no mean over all pairs; its finite mean (30) is the highest and must not win
    write(results, make_record("evil/x", {"psnr": mean(30.0, 11, nan=1), "ssim": 0.9},
                               name="<img src=x onerror=\"document.title='pwned'\"> | *x*",
                               paper="javascript:document.title='pwned'"))
    write(results, make_record("acme/pend", {}, status="pending"))
    write(results, make_record("acme/mis", {"psnr": 40.0, "ssim": 0.95}, status="mismatch"))
    ntire = json.loads(make_record("acme/a", NTIRE, proto="ntire").to_json())
    ntire["derived"] = {"perception": "__import__('os').system('touch PWNED')"}   # ignored: data, not code
    path = os.path.join(results, "submissions", "acme__a", f"{NT}.json")
    with open(path, "w") as f:
        json.dump(ntire, f)
    write(results, make_record("acme/c", {**NTIRE, "niqe": mean(4.0, 11, nan=1)}, proto="ntire"))
    _invalid(results)
    return results


@pytest.fixture(scope="module")
def lb_site(tmp_path_factory):
    root = tmp_path_factory.mktemp("leaderboard")
    results, out = make_results(root), str(root / "site")
    r = ggt("leaderboard", "build", results, "--out", out)
    assert r.returncode == 0, r.stderr
    with open(os.path.join(out, "data.json")) as f:
        return {"out": out, "results": results, "stdout": r.stdout, "data": json.load(f), "root": root}


def table(data: dict, key: str) -> dict:
    return next(t for t in data["protocols"] if t["key"] == key)


def row(t: dict, model: str) -> dict:
    return next(r for r in t["rows"] if r["model"] == model)


def test_build_writes_every_file_and_says_what_it_did(lb_site):
    names = set(os.listdir(lb_site["out"]))
    assert {"index.html", "app.js", "style.css", "data.json", "leaderboard.md", "results.parquet",
            "records", "eval_results"} <= names
    assert "7 records (2 protocols), 5 invalid" in lb_site["stdout"]
    assert not [n for n in os.listdir(lb_site["root"]) if n.startswith(".ggt-site-")]     # no temporary left
    # the site is public: it names the results folder, never the builder's local path
    assert lb_site["data"]["source"] == os.path.basename(lb_site["results"])
    with open(os.path.join(lb_site["out"], "leaderboard.md")) as f:
        assert str(lb_site["root"]) not in f.read()
    # the "report" link of every row is a file the site holds
    for t in lb_site["data"]["protocols"]:
        for r in t["rows"]:
            assert os.path.isfile(os.path.join(lb_site["out"], r["links"]["report"]))


def test_ranks_follow_the_compare_rule_and_never_rank_a_nonfinite_mean(lb_site):
    t = table(lb_site["data"], GGT)
    psnr = {r["model"]: r["cells"]["overall"].get("psnr") for r in t["rows"]}
    assert psnr["acme/b"]["rank"] == 1 and psnr["acme/b"]["note"] == "1 +inf"    # +inf over all pairs: best
    assert psnr["acme/a"]["rank"] == 2 and psnr["acme/a"]["best"] is False
    assert psnr["evil/x"]["rank"] is None and psnr["evil/x"]["text"] == "30.0000 †1"    # NaN: shown, not ranked
    assert psnr["acme/mis"]["rank"] is None                  # a claim that failed re-scoring
    assert psnr["acme/pend"] is None                         # nothing claimed yet
    ssim = {r["model"]: r["cells"]["overall"]["ssim"]["rank"] for r in t["rows"] if r["status"] != "pending"}
    assert ssim == {"evil/x": 1, "acme/a": 2, "acme/b": 3, "acme/mis": None}
    assert row(t, "acme/a")["cells"]["rain"]["psnr"]["rank"] == 2        # per category too
    assert [m["name"] + m["arrow"] for m in t["metrics"]] == ["psnr↑", "ssim↑"]


def test_a_record_cannot_flip_a_metrics_direction(tmp_path):
    from ggt_dataset.benchmark.site import build

    results = str(tmp_path / "results")
    write(results, make_record("acme/a", {"psnr": 25.0}))
    flipped = json.loads(make_record("acme/flip", {"psnr": 30.0}).to_json())
    flipped["metrics"]["psnr"]["better"] = "lower"          # the record's claim; the protocol says higher
    write(results, Record.from_json(json.dumps(flipped)))
    data = build(results, str(tmp_path / "site"))
    ranks = {r["model"]: r["cells"]["overall"]["psnr"]["rank"] for r in table(data, GGT)["rows"]}
    assert ranks == {"acme/flip": 1, "acme/a": 2}            # 30 dB beats 25 dB, whatever it claims


def _with_selfcheck(results: str, model: str, selfcheck) -> None:
    rec = json.loads(make_record(model, {"psnr": 30.0}).to_json())
    rec["fingerprint"]["selfcheck"] = selfcheck
    write(results, Record.from_json(json.dumps(rec)))


def selfcheck_results(root) -> str:
    """One record per self-check state, one from before ggt selfcheck, one with a hostile value."""
    results = str(root / "results")
    write(results, make_record("acme/old", {"psnr": 25.0}))          # a report from before ggt selfcheck
    _with_selfcheck(results, "acme/failed", {"state": "failed", "failed": [{"metric": "psnr", "max_deviation": 0.01}]})
    _with_selfcheck(results, "acme/passed", {"state": "passed", "failed": []})
    _with_selfcheck(results, "acme/unchecked", {"state": "not run"})
    _with_selfcheck(results, "acme/odd", "passed")          # not a self-check record: shown as unknown
    return results


def test_rows_show_the_scoring_installs_selfcheck(tmp_path):
    from ggt_dataset.benchmark.site import build

    data = build(selfcheck_results(tmp_path), str(tmp_path / "site"))
    rows = {r["model"]: r for r in table(data, GGT)["rows"]}
    assert {m: r["selfcheck"] for m, r in rows.items()} == {"acme/old": None, "acme/failed": "failed",
                                                           "acme/passed": "passed", "acme/unchecked": "not run",
                                                           "acme/odd": None}
    # what failed, and by how much, as `ggt score` says it (eval/selfcheck.py failure_text)
    assert {m: r["selfcheck_failed"] for m, r in rows.items() if r["selfcheck_failed"]} == {
        "acme/failed": "psnr off by 0.01"}


def test_an_oversized_record_is_invalid_not_read_whole(tmp_path):
    from ggt_dataset.benchmark.record import MAX_RECORD_BYTES
    from ggt_dataset.benchmark.site import build

    results = str(tmp_path / "results")
    path = write(results, make_record("acme/big", {"psnr": 25.0}))
    with open(path, "a") as f:           # still a valid record, padded past the cap
        f.write(" " * MAX_RECORD_BYTES)
    data = build(results, str(tmp_path / "site"))
    assert data["protocols"] == [] and [x["reason"] for x in data["invalid"]] == [
        f"larger than {MAX_RECORD_BYTES >> 20} MiB; not a submission record"]


def test_malformed_records_are_named_and_never_stop_the_build(lb_site):
    reasons = {x["path"]: x["reason"] for x in lb_site["data"]["invalid"]}
    assert set(reasons) == {f"submissions/bad__{n}/{GGT}.json" for n in ("json", "missing", "moved", "hash")} | {
        f"submissions/bad__proto/secret-v{GGT[5:]}.json"}
    assert reasons[f"submissions/bad__json/{GGT}.json"].startswith("not JSON")
    assert reasons[f"submissions/bad__missing/{GGT}.json"].startswith("status must be one of")
    assert reasons[f"submissions/bad__proto/secret-v{GGT[5:]}.json"].startswith("unknown protocol 'secret'")
    assert "must sit at its own path" in reasons[f"submissions/bad__moved/{GGT}.json"]
    assert "not the pinned protocol's" in reasons[f"submissions/bad__hash/{GGT}.json"]
    md = Path(lb_site["out"], "leaderboard.md").read_text()
    assert "## Invalid records" in md and f"`submissions/bad__json/{GGT}.json`: not JSON" in md


def test_the_derived_score_comes_from_the_pinned_protocol_not_the_record(lb_site):
    t = table(lb_site["data"], NT)
    assert [d["name"] for d in t["derived"]] == ["perception"]
    a = row(t, "acme/a")["cells"]["overall"]["perception"]
    assert a["mean"] == pytest.approx(PERCEPTION) and a["rank"] == 1
    c = row(t, "acme/c")["cells"]["overall"]["perception"]       # NIQE had a NaN: shown with ‡, not ranked
    assert c["rank"] is None and c["text"].endswith("‡")
    assert not os.path.exists("PWNED") and not os.path.exists(os.path.join(lb_site["root"], "PWNED"))


def test_markdown_escapes_record_text(lb_site):
    md = Path(lb_site["out"], "leaderboard.md").read_text()
    line = next(x for x in md.splitlines() if "evil/x" in x)
    # CommonMark backslash escapes: a literal "<", "|" and "*", never a tag, a cell break or emphasis
    assert "\\<img" in line and "<" not in line.replace("\\<", "") and "\\| \\*x\\*" in line
    assert len(re.findall(r"(?<!\\)\|", line)) == 6         # 5 columns: the name's | broke no cell
    assert "| **24.0000 †1 (1 +inf)** |" in md       # the best, bold, with what its † counts
    assert row(table(lb_site["data"], GGT), "evil/x")["links"]["paper"] is None    # javascript: is no link


def test_results_parquet_has_one_row_per_record(lb_site):
    rows = pq.read_table(os.path.join(lb_site["out"], "results.parquet")).to_pylist()
    assert sorted((r["model"], r["protocol"]) for r in rows) == sorted(
        [("acme/a", "ggt"), ("acme/b", "ggt"), ("evil/x", "ggt"), ("acme/pend", "ggt"), ("acme/mis", "ggt"),
         ("acme/a", "ntire"), ("acme/c", "ntire")])
    a = next(r for r in rows if r["model"] == "acme/a" and r["protocol"] == "ggt")
    assert a["psnr"] == 25.0 and a["psnr_rank"] == 2 and a["status"] == "verified" and a["perception"] is None
    assert {"category": "rain", "metric": "psnr", "mean": 25.01, "nonfinite": 0, "rank": 2} in a["per_category"]
    from datasets import Dataset

    assert Dataset.from_parquet(os.path.join(lb_site["out"], "results.parquet")).num_rows == 7


def test_eval_results_are_the_hubs_format(lb_site):
    from huggingface_hub import parse_eval_result_entries

    def entries(model: str):
        path = os.path.join(lb_site["out"], "eval_results", model.replace("/", "__") + ".yaml")
        if not os.path.exists(path):
            return None
        return {e.task_id: e for e in parse_eval_result_entries(yaml.safe_load(Path(path).read_text()))}

    a = entries("acme/a")
    assert a[f"{GGT}/psnr"].value == 25.0 and a[f"{GGT}/psnr"].dataset_id == "VCLab-PolyU/GGT-100K"
    assert a[f"{NT}/perception"].value == pytest.approx(PERCEPTION)
    assert "verified" in a[f"{GGT}/psnr"].notes
    assert set(entries("acme/b")) == {f"{GGT}/ssim"}        # its PSNR is not a mean over all pairs
    assert entries("acme/mis") is None and entries("acme/pend") is None


@pytest.mark.slow
def test_an_earlier_site_is_replaced_whole_and_other_folders_are_refused(tmp_path, ggt_in_process):
    results = make_results(tmp_path)
    out = str(tmp_path / "site")
    assert ggt_in_process("leaderboard", "build", results, "--out", out).returncode == 0
    os.remove(os.path.join(results, "submissions", "acme__mis", f"{GGT}.json"))
    r = ggt_in_process("leaderboard", "build", results, "--out", out)
    assert r.returncode == 0, r.stderr
    assert not os.path.exists(os.path.join(out, "records", f"acme__mis__{GGT}.json"))   # replaced, not merged
    assert os.path.exists(os.path.join(out, "records", f"acme__b__{GGT}.json"))
    other = tmp_path / "notes"
    other.mkdir()
    (other / "todo.txt").write_text("mine")
    r = ggt_in_process("leaderboard", "build", results, "--out", str(other))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "exists and is not a leaderboard site (no data.json)" in r.stderr
    assert os.listdir(other) == ["todo.txt"]
    r = ggt_in_process("leaderboard", "build", str(tmp_path / "nowhere" / "x"), "--out", out)
    assert r.returncode == 1 and "not a results folder" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
def test_build_from_a_hub_results_repo(tmp_path):
    from hub_server import HubServer

    results = make_results(tmp_path)
    with HubServer() as hub:
        env = hub.env(str(tmp_path / "hf"))
        upload = ("from huggingface_hub import HfApi; api = HfApi(); api.create_repo('org/results', "
                  f"repo_type='dataset'); api.upload_folder(folder_path={results!r}, repo_id='org/results', "
                  "repo_type='dataset')")
        r = subprocess.run([sys.executable, "-c", upload], env={**os.environ, **env}, capture_output=True,
                           text=True, check=False)
        assert r.returncode == 0, r.stderr
        r = ggt("leaderboard", "build", "org/results", "--out", str(tmp_path / "site"), env=env)
        assert r.returncode == 0, r.stderr
        assert hub.gaps == []
    data = json.loads((tmp_path / "site" / "data.json").read_text())
    assert data["source"] == "org/results" and len(data["invalid"]) == 5
    assert row(table(data, GGT), "acme/b")["cells"]["overall"]["psnr"]["rank"] == 1
    yml = (tmp_path / "site" / "eval_results" / "acme__a.yaml").read_text()
    assert f"url: {env['HF_ENDPOINT']}/datasets/org/results" in yml       # the Hub it came from
    assert row(table(data, GGT), "acme/a")["links"]["model"] == f"{env['HF_ENDPOINT']}/acme/a"


@pytest.mark.slow
def test_a_submitted_and_verified_report_is_on_the_leaderboard(report, results, outputs, eval_set, tmp_path):
    """The whole path with the real verbs: ggt score -> ggt submit -> ggt leaderboard verify -> build."""
    from ggt_dataset.cli.main import main

    assert main(["submit", report, "--results", results, "--model", "org/restorer", "--outputs", outputs,
                 "--name", "Identity"]) == 0
    assert main(["leaderboard", "verify", results, "--reference", eval_set, "--device", "cpu"]) == 0
    assert main(["leaderboard", "build", results, "--out", str(tmp_path / "site")]) == 0
    data = json.loads((tmp_path / "site" / "data.json").read_text())
    summary = json.loads(Path(report, "summary.json").read_text())
    r = row(table(data, GGT), "org/restorer")
    assert r["status"] == "verified" and r["pairs"] == 18 and data["invalid"] == []
    assert r["cells"]["overall"]["psnr"]["mean"] == summary["overall"]["psnr"]["mean"]
    assert r["cells"]["rain"]["ssim"]["mean"] == summary["per_category"]["rain"]["ssim"]["mean"]


# -- the page, in real Chromium --------------------------------------------------------------

class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@contextmanager
def static_server(folder: str):
    """Any static host: Python's http.server, nothing of ours on the server side."""
    handler = functools.partial(_QuietHandler, directory=folder)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.mark.slow
def test_page_marks_a_row_whose_scoring_install_failed_its_selfcheck(browser, tmp_path):
    site = str(tmp_path / "site")
    r = ggt("leaderboard", "build", selfcheck_results(tmp_path), "--out", site)
    assert r.returncode == 0, r.stderr
    with static_server(site) as url:
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url + "/")
        page.wait_for_selector("body[data-loaded='1']")

        def mark(model: str) -> tuple[str, str, str]:
            cell = f'{TG} tr[data-model="{model}"] td[data-col="selfcheck"] span'
            return (page.text_content(cell), page.get_attribute(cell, "title"),
                    page.eval_on_selector(cell, "s => getComputedStyle(s).color"))

        text, title, colour = mark("acme/failed")
        assert text == "⚠ failed" and colour == "rgb(164, 22, 26)"
        assert title.startswith("self-check failed") and title.endswith(": psnr off by 0.01"), title
        text, title, colour = mark("acme/passed")
        assert text == "✓" and "failed" not in title and colour == "rgb(10, 107, 47)"
        assert [mark(m)[0] for m in ("acme/unchecked", "acme/old", "acme/odd")] == ["not run", "unknown", "unknown"]
        assert mark("acme/unchecked")[2] == "rgb(153, 153, 153)"            # quiet
        legend = page.text_content("#selfcheck-legend")
        assert "ggt selfcheck" in legend and "⚠ failed" in legend
        os.makedirs(ARTIFACTS, exist_ok=True)
        page.screenshot(path=os.path.join(ARTIFACTS, "leaderboard-selfcheck.png"), full_page=True)
        assert errors == []


def models(page, key: str) -> list[str]:
    return page.eval_on_selector_all(f'table[data-protocol="{key}"] tbody tr:not([hidden])',
                                     "rows => rows.map(r => r.dataset.model)")


@pytest.mark.slow
def test_page_in_chromium_sort_filter_badge_nonfinite_link(browser, lb_site):
    with static_server(lb_site["out"]) as url:
        page = browser.new_page(viewport={"width": 1300, "height": 900}, bypass_csp=True)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url + "/")
        page.wait_for_selector("body[data-loaded='1']")
        # first sort: PSNR best first; the +inf row leads, NaN, mismatch and pending rows trail
        assert models(page, GGT)[:2] == ["acme/b", "acme/a"]
        assert set(models(page, GGT)[2:]) == {"evil/x", "acme/mis", "acme/pend"}
        psnr = f'{TG} tr[data-model="evil/x"] td[data-col="psnr"]'
        assert page.text_content(psnr) == "30.0000 †1 (1 NaN)" and page.get_attribute(psnr, "data-rank") == ""
        assert page.title() == "GGT-100K leaderboard"          # the hostile name ran nothing
        assert page.locator("main img").count() == 0              # ... and made no element
        assert page.text_content('tr[data-model="evil/x"] td[data-col="model"] a').startswith("<img src=x")
        os.makedirs(ARTIFACTS, exist_ok=True)
        page.screenshot(path=os.path.join(ARTIFACTS, "leaderboard.png"), full_page=True)

        # re-sort: click again, worst ranked first; unranked rows stay last
        page.click(f'{TG} th[data-col="psnr"]')
        assert models(page, GGT)[:2] == ["acme/a", "acme/b"]
        assert page.get_attribute(f'{TG} th[data-col="psnr"]', "aria-sort") == "descending"
        page.click(f'{TG} th[data-col="ssim"]')
        assert models(page, GGT)[:3] == ["evil/x", "acme/a", "acme/b"]
        page.click(f'{TG} th[data-col="model"]')
        # by name (the model id where a record gives none): "<img..." < "acme/b" < ... < "restorer a"
        assert models(page, GGT) == ["evil/x", "acme/b", "acme/mis", "acme/pend", "acme/a"]

        # filter by category: the cells are that category's means
        page.select_option("#category", "rain")
        page.wait_for_function("document.body.dataset.filter.startsWith('rain|')")
        assert page.text_content(f'{TG} tr[data-model="acme/a"] td[data-col="psnr"]') \
            == "25.0100"
        # search by model
        page.fill("#search", "acme/a")
        page.wait_for_function("document.body.dataset.filter === 'rain|acme/a'")
        assert models(page, GGT) == ["acme/a"] and models(page, NT) == ["acme/a"]
        page.fill("#search", "")

        # a badge, and links: model, paper, report; none for the javascript: paper
        badge = f'{TG} tr[data-model="acme/a"] .badge'
        assert page.text_content(badge) == "verified"
        assert page.eval_on_selector(badge, "b => getComputedStyle(b).color") == "rgb(10, 107, 47)"
        links = page.eval_on_selector_all(f'{TG} tr[data-model="acme/a"] a',
                                          "as => as.map(a => [a.dataset.link, a.textContent, a.href])")
        assert links[0] == ["model", "Restorer A", "https://huggingface.co/acme/a"]
        assert ["paper", "paper", "https://arxiv.org/abs/2605.31039"] in links
        assert page.locator('tr[data-model="evil/x"] a[data-link="paper"]').count() == 0
        report = page.get_attribute(f'{TG} tr[data-model="acme/a"] a[data-link="report"]',
                                    "href")
        with page.expect_popup() as pop:
            page.click(f'{TG} tr[data-model="acme/a"] a[data-link="report"]')
        assert json.loads(pop.value.text_content("body"))["model"]["id"] == "acme/a" and report.startswith("records/")

        # the invalid records, named
        assert page.locator("#invalid li").count() == 5
        assert "not JSON" in page.text_content(f'#invalid li[data-path="submissions/bad__json/{GGT}.json"]')
        # the derived score is a column
        assert page.text_content(f'{TN} th[data-col="perception"]') == "perception ↑"
        assert errors == []
