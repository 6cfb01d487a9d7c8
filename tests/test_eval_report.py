"""Reports: real Parquet and CSV read back, a self-describing summary, Markdown, plots, comparisons."""

from __future__ import annotations

import json
import math
import os
import shutil

import pytest
from conftest import NR_PROTOCOL
from ggt_dataset.eval import report
from ggt_dataset.eval.predictions import open_predictions

from ggt_dataset.cli.main import main


def _score(tmp_path, preds, ref, name, *extra):
    out = tmp_path / name
    assert main(["score", str(preds), "--reference", ref, "--out", str(out), "--metrics", "psnr,ssim",
                 "--device", "cpu", "-q", *extra]) == 0
    return out


@pytest.mark.slow
def test_report_files_and_fingerprint(eval_set, identity_preds, tmp_path):
    import datasets

    out = _score(tmp_path, identity_preds, eval_set, "r", "--label", "identity")
    ds = datasets.load_dataset("parquet", data_files=str(out / "per_image.parquet"), split="train")
    assert ds.column_names == ["id", "category", "psnr", "ssim", "note"] and len(ds) == 18
    assert (out / "per_image.csv").read_text().splitlines()[0] == '"id","category","psnr","ssim","note"'
    s = json.loads((out / "summary.json").read_text())
    fp = s["fingerprint"]
    assert fp["protocol"] == "ggt" and len(fp["protocol_sha256"]) == 64
    assert fp["test_set"]["pairs"] == 18 and fp["versions"]["pyiqa"] == "0.1.16" and fp["device"] == "cpu"
    assert s["restricted_to"] == ["psnr", "ssim"] and not s["partial"]
    assert set(s["per_category"]) == {"mixed", "rain", "haze", "snow", "low_light", "old_photo"}
    md = (out / "report.md").read_text()
    assert "psnr ↑" in md and "ssim ↑" in md and "**overall**" in md and "Restricted to" in md
    for png in ("per_category.png", "distribution.png"):
        assert (out / "plots" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (out / ".tmp").exists()


@pytest.mark.slow
def test_perfect_prediction_gives_inf_psnr_flagged_not_averaged(eval_set, identity_preds, tmp_path):
    from ggt_dataset.eval.references import open_references

    preds = tmp_path / "p"
    shutil.copytree(identity_preds, preds)
    names = open_predictions(str(preds)).names
    pair = min(names)
    (_, gt), = open_references(eval_set).iter_hq({pair})
    import os

    os.remove(names[pair])
    (preds / (pair + ".png")).write_bytes(gt)
    out = _score(tmp_path, preds, eval_set, "r")
    s = json.loads((out / "summary.json").read_text())
    assert s["nonfinite"] == [{"id": pair, "metric": "psnr", "value": "inf"}]
    assert s["overall"]["psnr"]["nonfinite"] == 1 and s["overall"]["psnr"]["n"] == 17
    assert math.isfinite(s["overall"]["psnr"]["mean"])
    assert "†1" in (out / "report.md").read_text()


@pytest.mark.slow
def test_compare_side_by_side_and_refuses_other_protocols(eval_set, identity_preds, tmp_path, capsys):
    a = _score(tmp_path, identity_preds, eval_set, "a", "--label", "A")
    b = _score(tmp_path, identity_preds, eval_set, "b", "--label", "B")
    capsys.readouterr()
    assert main(["score", "--compare", str(a / "summary.json"), str(b), "--out", str(tmp_path / "cmp")]) == 0
    text = capsys.readouterr().out
    assert "| A | 18 |" in text and "| B | 18 |" in text
    assert "**psnr** ↑ per category" in text and "| category | A | B |" in text and "| rain |" in text
    assert (tmp_path / "cmp" / "comparison.png").read_bytes()[:4] == b"\x89PNG"
    c = _score(tmp_path, identity_preds, eval_set, "c", "--protocol", "ntire")
    assert main(["score", "--compare", str(a), str(c)]) == 1
    assert "different protocol" in capsys.readouterr().err
    (tmp_path / "file").write_text("mine")
    assert main(["score", "--compare", str(a), str(b), "--out", str(tmp_path / "file")]) == 1
    assert "exists and is not a folder" in capsys.readouterr().err and (tmp_path / "file").read_text() == "mine"


def test_unweighted_scores_never_reach_a_report(tmp_path):
    with pytest.raises(report.ReportError, match="without their pretrained weights"):
        report.write(str(tmp_path / "r"), {"metrics": {}}, [], unweighted=["musiq"])
    assert not (tmp_path / "r").exists()


# --- --out: checked before any work, never someone else's folder, replaced whole ------------------

def _run(capsys, *args):
    rc = main(list(args))
    return rc, capsys.readouterr().err


def test_out_that_is_a_file_fails_before_any_work(eval_set, identity_preds, tmp_path, capsys):
    """Before the weight check, the first step that could fail: lpips has no weights here."""
    out = tmp_path / "report.txt"
    out.write_text("mine")
    rc, err = _run(capsys, "score", identity_preds, "--reference", eval_set, "--out", str(out),
                   "--metrics", "psnr,lpips", "--device", "cpu", "-q")
    assert rc == 1 and f"{out}: exists and is not a folder" in err and out.read_text() == "mine"


@pytest.mark.slow
def test_out_refuses_a_folder_that_is_not_a_report(eval_set, identity_preds, tmp_path, capsys):
    out = tmp_path / "r"
    (out / ".tmp").mkdir(parents=True)
    (out / ".tmp" / "keep.txt").write_text("someone's")
    (out / "summary.json").write_text('{"mine": true}')
    rc, err = _run(capsys, "score", identity_preds, "--reference", eval_set, "--out", str(out),
                   "--metrics", "psnr", "--device", "cpu", "-q")
    assert rc == 1 and f"{out}: a folder that is not a `ggt score` report" in err and "--overwrite" in err
    assert (out / ".tmp" / "keep.txt").read_text() == "someone's"
    assert (out / "summary.json").read_text() == '{"mine": true}'
    _score(tmp_path, identity_preds, eval_set, "r", "--overwrite")
    assert sorted(os.listdir(out)) == ["per_image.csv", "per_image.parquet", "plots", "report.md",
                                       "summary.json"]


def test_out_never_replaces_the_reference_dataset(eval_set, identity_preds, tmp_path, capsys):
    ref = shutil.copytree(eval_set, tmp_path / "ggt")
    before = sorted(p.name for p in ref.rglob("*"))
    for extra in ((), ("--overwrite",)):
        rc, err = _run(capsys, "score", identity_preds, "--reference", str(ref), "--out", str(ref),
                       "--metrics", "psnr", "--device", "cpu", "-q", *extra)
        assert rc == 1 and "holds the reference dataset" in err
    assert sorted(p.name for p in ref.rglob("*")) == before


@pytest.mark.slow
def test_an_earlier_report_is_replaced_whole(eval_set, identity_preds, tmp_path):
    _score(tmp_path, identity_preds, eval_set, "r", "--label", "first")
    _score(tmp_path, identity_preds, eval_set, "r", "--label", "second")
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["label"] == "second"
    assert os.listdir(tmp_path) == ["r"]          # no temporary folder left beside it


def test_a_failed_write_leaves_the_earlier_report(tmp_path):
    from ggt_dataset.eval.report_folder import write_folder

    out = tmp_path / "r"
    out.mkdir()
    (out / "summary.json").write_text("old")

    def fill(folder):
        (tmp_path / "seen").write_text(folder)
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        write_folder(str(out), fill)
    assert (out / "summary.json").read_text() == "old" and sorted(os.listdir(tmp_path)) == ["r", "seen"]


# --- --compare: non-finite values visible and ranked by the mean over all pairs -----------------

@pytest.fixture(scope="module")
def near_perfect(eval_set, identity_preds, tmp_path_factory):
    """Exact on every pair but one (PSNR inf on 17 of 18), and the identity baseline: reports of both."""
    from ggt_dataset.eval.references import open_references

    base = tmp_path_factory.mktemp("nearperfect")
    refs = open_references(eval_set)
    keep = min(refs.ids)
    names = open_predictions(identity_preds).names
    for pair, gt in refs.iter_hq(set(refs.ids) - {keep}):
        (base / "exact" / pair).parent.mkdir(parents=True, exist_ok=True)
        (base / "exact" / (pair + ".png")).write_bytes(gt)
    shutil.copy(names[keep], base / "exact" / (keep + os.path.splitext(names[keep])[1]))
    for preds, label in ((base / "exact", "exact"), (identity_preds, "identity")):
        assert main(["score", str(preds), "--reference", eval_set, "--out", str(base / "reports" / label),
                     "--metrics", "psnr,ssim", "--device", "cpu", "-q", "--label", label]) == 0
    return base / "reports"


def _row(text, label):
    return next(line for line in text.splitlines() if line.startswith(f"| {label} |"))


def test_compare_ranks_a_near_perfect_submission_first(near_perfect, capsys):
    assert main(["score", "--compare", str(near_perfect / "identity"), str(near_perfect / "exact")]) == 0
    text = capsys.readouterr().out
    exact, identity = _row(text, "exact"), _row(text, "identity")
    assert exact.split(" | ")[2].startswith("**") and " †17**" in exact      # psnr: best, marked
    assert not identity.split(" | ")[2].startswith("**")
    assert "exact psnr: 17 +inf" in text
    by_cat = [line.split(" | ") for line in text.split("**psnr** ↑ per category")[1].split("**ssim**")[0]
              .splitlines() if line.startswith("| ") and "category" not in line]
    assert len(by_cat) == 6 and all(exact_cell.startswith("**") and "†" in exact_cell
                                    for _, _, exact_cell in by_cat if exact_cell.startswith(("**", "inf")))
    assert sum("inf †3" in exact_cell for *_, exact_cell in by_cat) >= 5     # all 3 pairs exact there
    md = (near_perfect / "exact" / "report.md").read_text()
    assert "†17" in md


DELETE = object()


def _edited(src, dst, **changes):
    """A copy of a real summary.json with fields changed by hand (a__b is a["b"]), as a user might."""
    s = json.loads((src / "summary.json").read_text())
    for dotted, value in changes.items():
        *keys, last = dotted.split("__")
        node = s
        for k in keys:
            node = node[k]
        if value is DELETE:
            del node[last]
        else:
            node[last] = value
    dst.mkdir()
    (dst / "summary.json").write_text(json.dumps(s))
    return dst


def test_compare_never_bolds_nan_or_partial(near_perfect, tmp_path, capsys):
    a = near_perfect / "identity"
    mean = json.loads((a / "summary.json").read_text())["overall"]["psnr"]["mean"]
    nan = _edited(a, tmp_path / "nan", label="withnan", overall__psnr={
        "mean": mean + 5, "n": 17, "nonfinite": 1, "posinf": 0, "neginf": 0, "nan": 1})
    part = _edited(a, tmp_path / "part", label="part", partial=True,
                   overall__psnr={"mean": mean + 9, "n": 18, "nonfinite": 0})
    worse = _edited(a, tmp_path / "worse", label="worse", overall__psnr={"mean": mean - 1, "n": 18, "nonfinite": 0})
    assert main(["score", "--compare", str(a), str(nan), str(part), str(worse)]) == 0
    text = capsys.readouterr().out
    assert f"**{mean:.4f}**" in _row(text, "identity")
    assert "**" not in _row(text, "withnan").split(" | ")[2] and "†1" in _row(text, "withnan")
    assert "**" not in _row(text, "part (PARTIAL)").split(" | ")[2]
    assert "withnan psnr: 1 NaN" in text


@pytest.mark.parametrize("edit, field", [
    ({"overall__psnr__mean": "abc"}, "overall.psnr.mean must be a finite number or null, found 'abc'"),
    ({"overall__psnr__mean": math.inf}, "overall.psnr.mean must be a finite number or null, found inf"),
    ({"overall__psnr__mean": math.nan}, "overall.psnr.mean must be a finite number or null, found nan"),
    ({"metrics__psnr__better": "up"}, "metrics.psnr.better must be 'higher', 'lower' or 'unknown'"),
    ({"counts__scored": "18"}, "counts.scored must be a count"),
    ({"fingerprint": DELETE}, "fingerprint must be present, found nothing"),
    ({"per_category": []}, "per_category must be an object"),
    ({"derived__overall__x": "1"}, "derived.overall.x must be a finite number or null"),
    ({"format_version": 2}, "format_version 2 is newer than this ggt-100k reads (1)"),
    ({"label": None}, "label must be a string"),
])
def test_compare_names_the_file_and_field_of_a_malformed_summary(near_perfect, tmp_path, capsys, edit, field):
    bad = _edited(near_perfect / "identity", tmp_path / "bad", **edit)
    rc, err = _run(capsys, "score", "--compare", str(near_perfect / "exact"), str(bad))
    assert rc == 1 and f"{bad / 'summary.json'}: {field}" in err, err
    assert "unexpected" not in err and "Traceback" not in err


def test_compare_refuses_a_deeply_nested_summary(near_perfect, tmp_path, capsys):
    (tmp_path / "deep.json").write_text('{"format": "ggt-score", "x": ' + "[" * 100000 + "]" * 100000 + "}")
    rc, err = _run(capsys, "score", "--compare", str(near_perfect / "exact"), str(tmp_path / "deep.json"))
    assert rc == 1 and "deep.json: nested too deeply" in err and "unexpected" not in err


def test_plot_bars_say_what_the_tables_say():
    """A category whose pairs are all exact has no finite mean: its bar is labelled "inf †3", not
    drawn as a bar of 0 that reads as the worst score; other bars carry their value and †."""
    from matplotlib.figure import Figure

    ax = Figure().subplots()
    report.bars(ax, [0, 1, 2], [{"mean": None, "n": 0, "nonfinite": 3, "posinf": 3, "neginf": 0, "nan": 0},
                                {"mean": 12.5, "n": 1, "nonfinite": 2, "posinf": 2, "neginf": 0, "nan": 0},
                                {"mean": 0.25, "n": 3, "nonfinite": 0}])
    assert [t.get_text() for t in ax.texts] == ["inf †3", "12.5000 †2", "0.2500"]


def test_comparison_plot_shows_every_category(near_perfect, tmp_path):
    from ggt_dataset.eval import compare

    summaries = compare.read([str(near_perfect / "identity"), str(near_perfect / "exact")])
    psnr, _ = compare.figure(summaries).axes
    groups = ["mixed", "rain", "haze", "snow", "low_light", "old_photo", "overall"]
    assert [t.get_text() for t in psnr.get_xticklabels()] == groups
    labels = [t.get_text() for t in psnr.texts]          # identity's 7 bars, then exact's
    assert len(labels) == 14 and labels[7:].count("inf †3") == 5 and labels[-1].endswith("†17")
    compare.plot(summaries, str(tmp_path / "c.png"))
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"




@pytest.mark.slow
def test_no_reference_metrics_get_absdiff_to_the_ground_truths_own_score(eval_set, identity_preds, tmp_path):
    """Issue #12.3: per image |prediction - ground truth| of each NR score, and its mean per category."""
    import numpy as np
    import pyarrow.parquet as pq
    from ggt_dataset.eval.batches import tensor
    from ggt_dataset.eval.decode import decode
    from ggt_dataset.eval.metrics import Scorer
    from ggt_dataset.eval.protocol import load
    from ggt_dataset.eval.references import open_references

    (tmp_path / "nr.yaml").write_text(NR_PROTOCOL)
    out = tmp_path / "r"
    assert main(["score", identity_preds, "--reference", eval_set, "--out", str(out), "--protocol",
                 str(tmp_path / "nr.yaml"), "--device", "cpu", "-q"]) == 0
    table = pq.read_table(out / "per_image.parquet").to_pylist()
    assert set(table[0]) == {"id", "category", "psnr", "piqe", "entropy", "piqe_absdiff", "entropy_absdiff", "note"}
    # Each gap is |the prediction's score - the ground truth's score computed here, independently|.
    refs = open_references(eval_set)
    scorer = Scorer(load(str(tmp_path / "nr.yaml")).metric("piqe"), "cpu")
    gt = {i: float(scorer(tensor([decode(b, i)], scorer.dtype))[0]) for i, b in refs.iter_hq(set(refs.ids))}
    for row in table:
        assert row["piqe_absdiff"] == pytest.approx(abs(row["piqe"] - gt[row["id"]]), abs=1e-9)
    s = json.loads((out / "summary.json").read_text())
    rain = [r["entropy_absdiff"] for r in table if r["category"] == "rain"]
    assert s["absdiff"]["entropy"]["per_category"]["rain"]["mean"] == pytest.approx(np.mean(rain))
    assert s["absdiff"]["piqe"]["overall"]["mean"] == pytest.approx(np.mean([r["piqe_absdiff"] for r in table]))
    md = (out / "report.md").read_text()
    assert "piqe \\|Δ\\| ↓ | entropy \\|Δ\\| ↓ |" in md
    assert f"| rain | {report.cell(s['absdiff']['piqe']['per_category']['rain'])} |" in md


@pytest.mark.slow
def test_a_metric_of_unknown_direction_is_reported_never_ranked_or_bolded(near_perfect, eval_set, identity_preds,
                                                                          tmp_path, capsys):
    """Issue #12.0: AFINE-NR's direction is unknown (HarnessIR). Real reports under a protocol with
    an offline metric marked so: report.md says '?', and --compare bolds its other columns only.
    Before, 'better: unknown' was refused, and a summary saying so could not be read."""
    (tmp_path / "u.yaml").write_text(
        'name: u\nmetadata: {version: 1}\npyiqa: ">=0.1.16,<0.1.17"\nmetrics:\n'
        "  ssim: {pyiqa: ssim, kind: FR, better: higher, options: {test_y_channel: true, color_space: ycbcr}}\n"
        "  entropy: {pyiqa: entropy, kind: NR, better: unknown}\n")
    for label in ("exact", "identity"):
        preds = near_perfect.parent / "exact" if label == "exact" else identity_preds
        assert main(["score", str(preds), "--reference", eval_set, "--out", str(tmp_path / label), "--protocol",
                     str(tmp_path / "u.yaml"), "--device", "cpu", "-q", "--label", label]) == 0
    md = (tmp_path / "exact" / "report.md").read_text()
    assert "| ssim ↑ | entropy ? |" in md and "? entropy: which way is better is not established" in md
    capsys.readouterr()
    assert main(["score", "--compare", str(tmp_path / "exact"), str(tmp_path / "identity")]) == 0
    text = capsys.readouterr().out
    head = next(x for x in text.splitlines() if x.startswith("| submission"))
    col = [c.strip() for c in head.strip("|").split("|")].index("entropy ?")
    rows = [[c.strip() for c in x.strip("|").split("|")] for x in text.splitlines() if x.startswith(("| exact", "| identity"))]
    assert len(rows) == 2 and not any("**" in r[col] for r in rows)
    assert sum("**" in r[col - 1] for r in rows) == 1          # ssim: the better one is bold
    per_cat = text[text.index("**entropy** ? per category"):]
    assert "**" not in per_cat.split("\n", 1)[1].split("\n\n**")[0]


@pytest.mark.slow
def test_plots_drawn_beside_the_tables_are_the_plots_drawn_alone(eval_set, identity_preds, tmp_path):
    """report.write draws the plots on a thread while it writes the tables: the same PNG bytes as
    drawing them on this thread, and every other file as before (a guard for the overlap)."""
    from ggt_dataset.eval import api

    summary = api.score(identity_preds, eval_set, out=str(tmp_path / "r"), metrics=["psnr", "ssim"], device="cpu",
                        cache_dir=str(tmp_path / "c"))
    import pyarrow.parquet as pq

    rows = pq.read_table(tmp_path / "r" / "per_image.parquet").to_pylist()
    alone = tmp_path / "alone"
    alone.mkdir()
    report.draw_plots(summary, rows, str(alone))
    for name in ("per_category.png", "distribution.png"):
        assert (tmp_path / "r" / "plots" / name).read_bytes() == (alone / name).read_bytes()
    assert sorted(os.listdir(tmp_path / "r")) == ["per_image.csv", "per_image.parquet", "plots", "report.md",
                                                  "summary.json"]


def test_a_plot_that_fails_fails_the_report_and_keeps_the_earlier_one(eval_set, identity_preds, tmp_path,
                                                                      monkeypatch):
    """The plot thread's error reaches the caller, and no half-written report replaces the old one."""
    from ggt_dataset.eval import api

    out = tmp_path / "r"
    api.score(identity_preds, eval_set, out=str(out), metrics=["psnr"], device="cpu", cache_dir=str(tmp_path / "c"))
    before = (out / "summary.json").read_bytes()

    def broken(summary, rows, folder):
        raise RuntimeError("plotting failed")

    monkeypatch.setattr(report, "draw_plots", broken)
    with pytest.raises(RuntimeError, match="plotting failed"):
        api.score(identity_preds, eval_set, out=str(out), metrics=["psnr", "ssim"], device="cpu",
                  cache_dir=str(tmp_path / "c"))
    assert (out / "summary.json").read_bytes() == before
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]     # no temporary folder left beside it
