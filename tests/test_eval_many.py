"""`ggt score A/ B/ --out DIR`: several submissions in one pass over the ground truth (issue #13.3).

Each report must be what a separate `ggt score` of that folder writes (conftest's two_reports are
those separate runs), the ground truth is decoded and scored once, and every submission's inputs
and every --out sub-folder are checked before anything is scored.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import NR_PROTOCOL
from ggt_dataset.eval import api, scoring
from ggt_dataset.eval.metrics import Scorer
from ggt_dataset.eval.predictions import open_predictions
from ggt_dataset.eval.protocol import load
from ggt_dataset.eval.references import open_references

from ggt_dataset.cli.main import main

VOLATILE = ("created", "seconds")      # timings and creation time differ from run to run


def _many(capsys, preds: list[str], ref: str, out, *extra: str) -> tuple[int, str]:
    rc = main(["score", *preds, "--reference", ref, "--out", str(out), "--metrics", "psnr,ssim",
               "--device", "cpu", "-q", *extra])
    cap = capsys.readouterr()
    return rc, cap.out + cap.err


def _summary(folder) -> dict:
    with open(os.path.join(folder, "summary.json"), encoding="utf-8") as f:
        return {k: v for k, v in json.load(f).items() if k not in VOLATILE}


@pytest.mark.slow
def test_each_report_is_what_a_separate_run_writes(eval_set, identity_preds, classical_preds, two_reports,
                                                   tmp_path, capsys):
    out = tmp_path / "checkpoints"
    rc, text = _many(capsys, [identity_preds, classical_preds], eval_set, out)
    assert rc == 0, text
    assert sorted(os.listdir(out)) == ["classical", "comparison.md", "comparison.png", "identity"]
    for alone in two_reports:
        together = out / os.path.basename(alone)
        assert pq.read_table(together / "per_image.parquet").equals(pq.read_table(f"{alone}/per_image.parquet"))
        assert (together / "per_image.csv").read_bytes() == Path(alone, "per_image.csv").read_bytes()
        assert _summary(together) == _summary(alone)
        assert (together / "report.md").read_text() == Path(alone, "report.md").read_text()
    # The comparison is `ggt score --compare`'s of the separate reports.
    assert main(["score", "--compare", *two_reports, "--out", str(tmp_path / "cmp")]) == 0
    capsys.readouterr()
    assert (out / "comparison.md").read_text() == (tmp_path / "cmp" / "comparison.md").read_text()
    # A second run replaces the earlier folder of reports whole.
    rc, text = _many(capsys, [identity_preds, classical_preds], eval_set, out)
    assert rc == 0, text


@pytest.mark.slow
def test_ground_truth_is_decoded_and_scored_once(eval_set, identity_preds, classical_preds, monkeypatch, tmp_path):
    """18 ground truths, 3 submissions: 18 ground-truth decodes, and a no-reference metric scores
    each ground truth once (18) besides the 3 x 18 predictions. The NR metric is pyiqa's entropy:
    what is counted is the engine's calls, which any NR metric shows (MUSIQ, even unweighted,
    took most of a minute on 2 cores)."""
    decoded, nr_images = [], []
    real_decode, real_call = scoring.decode, Scorer.__call__

    def counting_decode(data, name, *a, **k):
        decoded.append(name)
        return real_decode(data, name, *a, **k)

    def counting_call(self, pred, gt=None):
        if self.spec.kind == "NR":
            nr_images.append(pred.shape[0])
        return real_call(self, pred, gt)

    monkeypatch.setattr(scoring, "decode", counting_decode)
    monkeypatch.setattr(Scorer, "__call__", counting_call)
    (tmp_path / "nr.yaml").write_text(NR_PROTOCOL)
    proto = load(str(tmp_path / "nr.yaml")).subset(["psnr", "entropy"])
    scorers = [Scorer(proto.metric("psnr"), "cpu"), Scorer(proto.metric("entropy"), "cpu")]
    refs = open_references(eval_set)
    subs = [open_predictions(p) for p in (identity_preds, classical_preds, identity_preds)]
    results = scoring.run_many(subs, refs, proto, scorers, labels=["a", "b", "c"], progress=False,
                              cache_dir=None, batch_size=4)
    assert sum("(ground truth" in n for n in decoded) == 18
    assert sum("(ground truth" not in n for n in decoded) == 3 * 18
    assert sum(nr_images) == 3 * 18 + 18
    # Each submission's numbers are those of a run of it alone (batched the same way).
    alone = scoring.run(open_predictions(classical_preds), refs, proto, scorers, progress=False, batch_size=4)
    assert results[1].rows == alone.rows and results[1].reference == alone.reference
    assert results[0].rows == results[2].rows


@pytest.mark.slow
def test_a_problem_in_one_submission_names_it_and_nothing_is_scored(eval_set, identity_preds, tmp_path,
                                                                    capsys, monkeypatch):
    broken = tmp_path / "broken"
    shutil.copytree(identity_preds, broken)
    gone = min(broken.rglob("*.png"))
    gone.unlink()
    scored = []
    monkeypatch.setattr(scoring, "_score", lambda subs, *a: scored.append(subs))
    out = tmp_path / "out"
    rc, text = _many(capsys, [identity_preds, str(broken)], eval_set, out)
    assert rc == 1 and "Traceback" not in text
    assert f"submission 'broken' ({broken})" in text and "1 missing" in text
    assert "identity" not in text.split("submission 'broken'")[0]     # the good one is not blamed
    assert not scored and not out.exists()


def test_out_is_checked_for_every_submission_before_any_work(eval_set, identity_preds, classical_preds,
                                                             tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(api, "_score", lambda *a, **k: pytest.fail("scored before --out was checked"))
    out = tmp_path / "out"
    (out / "classical").mkdir(parents=True)
    (out / "classical" / "thesis.tex").write_text("mine")
    rc, text = _many(capsys, [identity_preds, classical_preds], eval_set, out)
    assert rc == 1 and f"{out}/classical: a folder that is not a `ggt score` report" in text
    shutil.rmtree(out / "classical")
    (out / "notes.txt").write_text("mine")
    rc, text = _many(capsys, [identity_preds, classical_preds], eval_set, out)
    assert rc == 1 and f"{out}/notes.txt: exists and is not a folder" in text
    rc, text = _many(capsys, [identity_preds, classical_preds], eval_set, identity_preds)
    assert rc == 1 and "holds the predictions 'identity'" in text
    assert (out / "notes.txt").read_text() == "mine"


def test_labels_are_folder_names_made_unique(tmp_path, monkeypatch):
    assert api.labels_for(["a/out", "b/out/", "c/out", "d/x.zip"]) == ["out", "out-2", "out-3", "x.zip"]
    (tmp_path / "ckpt").mkdir()
    monkeypatch.chdir(tmp_path / "ckpt")
    assert api.labels_for(["."]) == ["ckpt"]


def test_label_with_several_predictions_is_refused(eval_set, identity_preds, classical_preds, tmp_path, capsys):
    rc, text = _many(capsys, [identity_preds, classical_preds], eval_set, tmp_path / "o", "--label", "x")
    assert rc == 1 and "--label names one submission" in text and "Traceback" not in text


def test_help_says_what_out_holds_with_several_predictions(capsys):
    with pytest.raises(SystemExit):
        main(["score", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "OUT/<name>/" in text and "comparison.md" in text


@pytest.mark.slow
@pytest.mark.heavy      # two 2048x2048 sqrtm: ~25 s of a core
def test_fid_plumbing_reference_cache_and_several_submissions_equal_separate_runs(
        small_eval_set, small_preds, tmp_path, monkeypatch):
    """pyiqa's real FID Inception without its checkpoint: streaming moments, the reference cache
    and the distance. Two submissions in one pass share the reference features and each gets what
    it gets alone: the pair in one pass (the reference features made: cache miss), then the second
    submission alone on that cache (hit), equal to its value from the pass, where the first
    submission's features could have leaked into it.

    Each distance is a sqrtm of a 2048x2048 matrix (~12 s of a core). The distance is a pure
    function of the two sets' moments, so it is remembered by their exact bytes: the run alone
    costs no sqrtm if, and only if, its moments are bit-identical to the pass's."""
    from ggt_dataset.eval.fid import FIDScorer

    real, computed, memo = FIDScorer.distance, [], {}

    def remembered(a, b):
        key = b"".join(x.tobytes() for m in (a, b) for x in m.stats())
        if key not in memo:
            memo[key] = real(a, b)
            computed.append(memo[key])
        return memo[key]

    monkeypatch.setattr(FIDScorer, "distance", staticmethod(remembered))
    proto = load("ggt").subset(["psnr"]).with_optional(["fid"])
    scorers = [Scorer(proto.metric("psnr"), "cpu"), FIDScorer(proto.metric("fid"), "cpu", unweighted=True)]
    refs = open_references(small_eval_set)
    both = [r.sets["fid"] for r in scoring.run_many(
        [open_predictions(p) for p in small_preds], refs, proto, scorers,
        progress=False, cache_dir=str(tmp_path / "c"), batch_size=4)]
    assert [s["cache"] for s in both] == ["miss", "miss"] and [s["n"] for s in both] == [6, 6]
    assert all(np.isfinite(s["value"]) for s in both) and both[0]["value"] != both[1]["value"]
    assert computed == [s["value"] for s in both]          # two sets of moments, two real distances
    alone = scoring.run(open_predictions(small_preds[1]), refs, proto, scorers, progress=False,
                        cache_dir=str(tmp_path / "c"), batch_size=4).sets["fid"]
    assert alone["cache"] == "hit" and alone["value"] == pytest.approx(both[1]["value"], rel=1e-9)
    assert len(computed) == 2           # the moments alone were bit-identical to the pass's
