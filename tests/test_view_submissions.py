"""`ggt view` with several submissions side by side (ggt_dataset/view/submissions.py): two real
baselines (identity, classical) scored by the real `ggt score` on conftest's eval set, given as
repeated --report/--predictions or as records `ggt submit` wrote into a results folder."""

from __future__ import annotations

import json
import os
import shutil
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from benchmark_fixtures import accepting
from viewserver import get, get_json, ggt, ggt_view, serving

from ggt_dataset.cli.main import main
from ggt_dataset.view.submissions import SubmissionError
from ggt_dataset.view.viewer import Viewer

pytest.importorskip("starlette")
A_VS_B = "psnr:identity-vs-classical"


def per_image(report: str, metric: str = "psnr") -> dict[str, float]:
    t = pq.read_table(os.path.join(report, "per_image.parquet"), columns=["id", metric])
    return dict(zip(t.column("id").to_pylist(), t.column(metric).to_pylist()))


def file_of(folder: str, pair_id: str) -> bytes:
    base = os.path.join(folder, *pair_id.split("/"))
    path = next(base + e for e in (".png", ".jpg", ".jpeg", ".webp") if os.path.exists(base + e))
    with open(path, "rb") as f:
        return f.read()


def test_two_reports_give_four_images_and_a_margin_per_pair(eval_set, two_reports):
    viewer = Viewer.open(eval_set, report=two_reports)
    info = viewer.info()
    assert info["roles"] == ["lq", "pred:identity", "pred:classical", "hq"]
    assert [s["label"] for s in info["submissions"]] == ["identity", "classical"]
    assert [c["name"] for c in info["comparisons"]] == [A_VS_B, "ssim:identity-vs-classical"]
    # The first view: the scored split, the pairs where identity beats classical most first.
    assert info["start"] == {"split": ["test"], "sort": f"-{A_VS_B}"}
    a, b = per_image(two_reports[0]), per_image(two_reports[1])
    listing = viewer.rows({**info["start"], "per": "200"})
    margins = [r["values"][A_VS_B] for r in listing["rows"]]
    assert listing["total"] == 18 and margins == sorted(margins, reverse=True)
    for r in listing["rows"]:           # A - B of the reports' own numbers (float32, as the index holds)
        assert r["values"][A_VS_B] == pytest.approx(a[r["id"]] - b[r["id"]], abs=1e-4)
        assert r["values"]["psnr:identity"] == pytest.approx(a[r["id"]], abs=1e-4)
    wins = viewer.rows({"where": f"{A_VS_B}>0", "per": "200"})
    assert wins["total"] == sum(a[i] - b[i] > 0 for i in a) and 0 < wins["total"] < 18
    back = viewer.rows({"split": "test", "sort": "-psnr:classical-vs-identity", "per": "200"})
    assert [r["key"] for r in back["rows"]][:3] == [r["key"] for r in listing["rows"]][::-1][:3]
    pair = viewer.pair(listing["rows"][0]["key"], info["start"])
    assert pair["roles"] == info["roles"] and pair["position"] == 0
    assert set(pair["sizes"]) == {"pred:identity", "pred:classical"} and pair["values"][A_VS_B] == margins[0]


def test_a_lower_is_better_margin_is_counted_the_other_way(eval_set, tmp_path):
    """lpips:A-vs-B is B's LPIPS minus A's: positive where A is better, so A's wins sort first."""
    ids = [r["id"] for r in Viewer.open(eval_set).rows({"split": "test"})["rows"]][:3]
    reports = []
    for name, lpips in (("a", [0.1, 0.5, 0.3]), ("b", [0.2, 0.2, 0.3])):
        folder = tmp_path / name
        folder.mkdir()
        pq.write_table(pa.table({"id": ids, "lpips": lpips}), folder / "per_image.parquet")
        (folder / "summary.json").write_text(json.dumps({"format": "ggt-score", "label": name,
                                                         "metrics": {"lpips": {"better": "lower"}}}))
        reports.append(str(folder))
    viewer = Viewer.open(eval_set, report=reports)
    rows = viewer.rows({"sort": "-lpips:a-vs-b", "where": "lpips:a-vs-b>-1"})["rows"]
    assert [(r["id"], r["values"]["lpips:a-vs-b"]) for r in rows] == [
        (ids[0], pytest.approx(0.1)), (ids[2], 0), (ids[1], pytest.approx(-0.3))]


def test_a_margin_is_computed_once_and_kept_within_its_budget(eval_set, two_reports):
    viewer = Viewer.open(eval_set, report=two_reports)
    index = viewer.index
    made = []
    for name in list(index.derived):
        make = index.derived[name]
        index.derived[name] = lambda make=make, name=name: made.append(name) or make()
    ssim = "ssim:identity-vs-classical"             # the first view made psnr's already, at start
    for params in ({"sort": f"-{ssim}"}, {"sort": f"-{ssim}", "page": "2", "per": "5"},
                   {"where": f"{ssim}>0"}, {"where": f"{ssim}<0", "sort": ssim}, {"sort": f"-{A_VS_B}"}):
        viewer.rows(params)
    assert made == [ssim]
    # Many threads asking for every margin at once: one computation each, the same answers.
    names = sorted(index.derived)
    want = {n: viewer.rows({"sort": f"-{n}", "per": "200"})["rows"] for n in names}
    made.clear()
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda i: (names[i % len(names)], viewer.rows(
            {"sort": f"-{names[i % len(names)]}", "per": "200"})["rows"]), range(64)))
    assert all(rows == want[n] for n, rows in got) and sorted(made) == sorted(set(made))
    # The cache of derived columns is bounded in bytes: one column's worth keeps one.
    small = Viewer.open(eval_set, report=two_reports)
    small.index._derived.max_bytes = 1
    for n in names:
        assert small.rows({"where": f"{n}>-1e9"})["total"] == 18
    assert len(small.index._derived._items) == 1


def test_outputs_of_each_submission_are_its_own_files(eval_set, two_reports, identity_preds, classical_preds):
    viewer = Viewer.open(eval_set, report=two_reports)
    with serving(viewer) as url:
        key = viewer.rows({"split": "test"})["rows"][0]["key"]
        for role, folder in (("pred:identity", identity_preds), ("pred:classical", classical_preds)):
            status, _, body = get(f"{url}/api/image?" + urllib.parse.urlencode({"key": key, "role": role}))
            assert status == 200 and body == file_of(folder, key.split(":", 1)[1])
        status, _, body = get(f"{url}/api/image?" + urllib.parse.urlencode({"key": key, "role": "pred"}))
        assert status == 404 and b"pred:identity" in body              # roles are named; no bare 'pred' here
        for path in ("/api/info", f"/api/rows?sort=-{A_VS_B}&per=200", "/api/pair?" + urllib.parse.urlencode(
                {"key": key, "sort": f"-{A_VS_B}"})):
            status, _, body = get(url + path)
            assert status == 200
            for folder in (eval_set, identity_preds, *two_reports):
                assert os.path.dirname(folder).encode() not in body, (path, folder)


def test_predictions_and_reports_pair_in_order(eval_set, identity_preds, classical_preds, two_reports):
    viewer = Viewer.open(eval_set, predictions=[classical_preds, identity_preds], report=two_reports[::-1])
    assert [(s.label, s.outputs.predictions.source) for s in viewer.subs] == [
        ("classical", classical_preds), ("identity", identity_preds)]
    outputs_only = Viewer.open(eval_set, predictions=[identity_preds, classical_preds])
    assert outputs_only.info()["roles"] == ["lq", "pred:identity", "pred:classical", "hq"]
    assert outputs_only.comparisons == [] and outputs_only.info()["start"] == {}
    with pytest.raises(SubmissionError, match="2 --predictions and 1 --report"):
        Viewer.open(eval_set, predictions=[identity_preds, classical_preds], report=two_reports[:1])


@pytest.fixture(scope="session")
def results(eval_set, two_reports, identity_preds, classical_preds, tmp_path_factory):
    """A results folder holding both baselines' records, their tables and their outputs, by `ggt submit`."""
    folder = accepting(tmp_path_factory.mktemp("results") / "results", two_reports[0])
    for report, preds, model in ((two_reports[0], identity_preds, "org/identity"),
                                 (two_reports[1], classical_preds, "org/classical")):
        assert main(["submit", report, "--results", folder, "--model", model, "--outputs", preds]) == 0
    return folder


def test_submissions_from_a_results_folder(eval_set, results, two_reports, identity_preds, classical_preds):
    viewer = Viewer.open(eval_set, submissions=results)
    # Records in path order: org__classical before org__identity.
    assert [s.label for s in viewer.subs] == ["org/classical", "org/identity"]
    assert viewer.info()["roles"] == ["lq", "pred:org_classical", "pred:org_identity", "hq"]
    name = "psnr:org_classical-vs-org_identity"
    rows = viewer.rows({"split": "test", "sort": f"-{name}", "per": "200"})["rows"]
    a, b = per_image(two_reports[1]), per_image(two_reports[0])
    assert len(rows) == 18 and all(r["values"][name] == pytest.approx(a[r["id"]] - b[r["id"]], abs=1e-4)
                                   for r in rows)
    key = rows[0]["key"]
    for role, folder in (("pred:org_classical", classical_preds), ("pred:org_identity", identity_preds)):
        assert viewer.image(key, role, "full")[0] == file_of(folder, key.split(":", 1)[1])   # from the zips
    one = Viewer.open(eval_set, submissions=results, models=["org/identity"])
    assert [s.label for s in one.subs] == ["org/identity"] and one.info()["roles"] == ["lq", "pred", "hq"]
    assert one.info()["start"] == {"split": ["test"], "sort": "psnr"}
    with pytest.raises(SubmissionError, match=r"no record for org/nope \(it has: org/classical, org/identity\)"):
        Viewer.open(eval_set, submissions=results, models=["org/nope"])


def test_report_labels_are_text_in_names(eval_set, two_reports, tmp_path):
    """A label becomes a tag of letters, digits, _ and . only; two alike get _2."""
    copies = []
    for i, report in enumerate(two_reports):
        copy = tmp_path / f"r{i}"
        shutil.copytree(report, copy)
        s = json.loads((copy / "summary.json").read_text())
        s["label"] = "<img src=x onerror=alert(1)> a/b"
        (copy / "summary.json").write_text(json.dumps(s))
        copies.append(str(copy))
    viewer = Viewer.open(eval_set, report=copies)
    assert [s.tag for s in viewer.subs] == ["img_src_x_onerror_alert_1_a_b", "img_src_x_onerror_alert_1_a_b_2"]
    assert viewer.info()["submissions"][0]["label"] == "<img src=x onerror=alert(1)> a/b"


def test_outputs_kept_in_another_repo_are_named_not_fetched(eval_set, results, tmp_path):
    """A record whose outputs are a Hub dataset repo: its scores are shown, and the log says why not its outputs."""
    copy = shutil.copytree(results, tmp_path / "results")
    path = copy / "submissions" / "org__identity" / next(
        f for f in os.listdir(copy / "submissions" / "org__identity") if f.endswith(".json"))
    record = json.loads(path.read_text())
    record["outputs"].update(repo="org/outs", path=None)
    path.write_text(json.dumps(record))
    said: list[str] = []
    viewer = Viewer.open(eval_set, submissions=str(copy), log=said.append)
    assert viewer.info()["roles"] == ["lq", "pred:org_classical", "hq"]
    assert [s.label for s, _ in viewer.scored] == ["org/classical", "org/identity"]
    assert any("org/identity's outputs are in org/outs" in line and "scores only" in line for line in said), said


@pytest.mark.slow
def test_cli_repeated_reports_and_bad_choices(eval_set, two_reports, results, identity_preds):
    with ggt_view(eval_set, "--report", two_reports[0], "--report", two_reports[1], "--port", "0",
                  "--no-thumb-cache") as said:
        url = said.split("open ", 1)[1].split()[0]
        status, info = get_json(f"{url}api/info")
        assert status == 200 and info["roles"] == ["lq", "pred:identity", "pred:classical", "hq"]
        assert "identity: 18 outputs and scores, classical: 18 outputs and scores" in said
    for args, said in ((["--submissions", results, "--model", "org/nope"], "no record for org/nope"),
                       (["--model", "org/identity"], "give --submissions too"),
                       (["--predictions", identity_preds, "--predictions", identity_preds, "--report",
                         two_reports[0]], "give one --report per --predictions"),
                       (["--submissions", str(os.path.join(results, "nowhere"))], "not a results folder")):
        r = ggt("view", eval_set, "--port", "0", *args)
        assert r.returncode == 1 and said in r.stderr and "Traceback" not in r.stderr, r.stderr
