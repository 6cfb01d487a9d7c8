"""Reports: real Parquet and CSV read back, a self-describing summary, Markdown, plots, comparisons."""

from __future__ import annotations

import json
import math
import shutil

import pytest
from ggt_dataset.eval import report
from ggt_dataset.eval.predictions import open_predictions

from ggt_dataset.cli.main import main


def _score(tmp_path, preds, ref, name, *extra):
    out = tmp_path / name
    assert main(["score", str(preds), "--reference", ref, "--out", str(out), "--metrics", "psnr,ssim",
                 "--device", "cpu", "-q", *extra]) == 0
    return out


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


def test_unweighted_scores_never_reach_a_report(tmp_path):
    with pytest.raises(report.ReportError, match="without their pretrained weights"):
        report.write(str(tmp_path / "r"), {"metrics": {}}, [], unweighted=["musiq"])
    assert not (tmp_path / "r").exists()
