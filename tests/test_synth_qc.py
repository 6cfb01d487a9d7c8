"""QC stages: each records a score and a verdict; config from YAML; direction-aware quality gain."""

from __future__ import annotations

import numpy as np
import pytest

from ggt_dataset.synth import qc
from ggt_dataset.synth.qc import QCConfigError, StageResult


def _photo(seed=0, h=64, w=80):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 3 % 256, y * 4 % 256, (x + y) * 2 % 256], axis=2).astype(np.float64)
    return (base * 0.8 + rng.random((h, w, 3)) * 40).clip(0, 255).astype(np.uint8)


def test_validity_pass_resize_aspect_blank_border():
    lq = _photo()
    ok, kept = qc.check_validity(qc.Validity(), lq, lq)
    assert ok.verdict == "pass" and kept is lq and ok.scores["border"] == 0.0
    import cv2

    big = cv2.resize(lq, (160, 128))
    res, kept = qc.check_validity(qc.Validity(), lq, big)
    assert res.verdict == "pass" and kept.shape == lq.shape and "resized from 160x128" in res.note
    res, _ = qc.check_validity(qc.Validity(), lq, cv2.resize(lq, (100, 64)))
    assert res.verdict == "fail" and "aspect" in res.note
    res, _ = qc.check_validity(qc.Validity(), lq, np.full_like(lq, 128))
    assert res.verdict == "fail" and res.note == "blank image"
    framed = lq.copy()
    framed[:6] = 0
    res, _ = qc.check_validity(qc.Validity(), lq, framed)
    assert res.verdict == "fail" and "border" in res.note


def test_fidelity_structure_and_colour_drift():
    lq = _photo()
    brighter = (lq.astype(np.float64) ** 0.8 * 255 ** 0.2).clip(0, 255).astype(np.uint8)
    same = qc.check_fidelity(qc.Fidelity(), lq, brighter)
    assert same.verdict == "pass" and same.scores["structure"] > 0.95
    other = qc.check_fidelity(qc.Fidelity(), lq, _photo(1)[::-1, ::-1].copy())
    assert other.verdict == "fail" and other.scores["structure"] < 0.6
    tinted = lq.copy()
    tinted[:, :, 2] = 255
    drift = qc.check_fidelity(qc.Fidelity(), lq, tinted)
    assert drift.scores["colour_drift"] > 25 and drift.verdict == "fail"


def test_review_modes_and_final_verdict():
    flagged = [StageResult("fidelity", "review")]
    assert qc.check_review(qc.Review("flagged"), flagged).verdict == "review"
    assert qc.check_review(qc.Review("none"), flagged).verdict == "pass"
    assert qc.check_review(qc.Review("all"), [StageResult("validity", "pass")]).verdict == "review"
    assert qc.final_verdict([StageResult("validity", "pass"), StageResult("quality", "fail")]) == "rejected"
    assert qc.final_verdict(flagged + [StageResult("review", "review")]) == "review"
    assert qc.final_verdict(flagged + [StageResult("review", "pass")]) == "accepted"


def test_quality_gain_respects_direction_and_falls_back_with_a_record():
    from ggt_dataset.synth.qc_quality import NRScorer

    scorer = NRScorer(qc.Quality(metrics=("musiq", "piqe")))
    assert scorer.chosen.spec.name == "piqe" and scorer.chosen.spec.better == "lower"
    assert scorer.chosen.skipped and "musiq: weight files missing" in scorer.chosen.skipped[0]
    clean = _photo()
    noisy = (clean + np.random.default_rng(3).normal(0, 40, clean.shape)).clip(0, 255).astype(np.uint8)
    better = scorer.check(noisy, clean)
    worse = scorer.check(clean, noisy)
    assert better.scores["gain"] == pytest.approx(-worse.scores["gain"])
    assert better.scores["gain"] == pytest.approx(better.scores["piqe_lq"] - better.scores["piqe_hq"])
    assert "fell back from musiq" in better.note
    from ggt_dataset.errors import GGTError

    with pytest.raises(GGTError, match="none of the metrics musiq can run here"):
        NRScorer(qc.Quality(metrics=("musiq",)))


def test_judge_answer_parsing():
    from ggt_dataset.synth.qc_quality import judge_result

    good = judge_result(qc.Judge(), '{"removal": 90, "fidelity": 81, "reason": "clean"}', "vlm")
    assert good.verdict == "pass" and good.scores["geomean"] == pytest.approx((90 * 81) ** 0.5, abs=1e-3)
    assert judge_result(qc.Judge(), '{"removal": 90, "fidelity": 40}', "vlm").verdict == "fail"
    assert judge_result(qc.Judge(), "not json", "vlm").verdict == "review"


def test_a_judge_score_outside_0_100_goes_to_review_not_clamped():
    """The scale is 0-100: 150 means the model ignored it, which a clamp to 100 would hide (a pass)."""
    from ggt_dataset.synth.qc_quality import judge_result

    off = judge_result(qc.Judge(), '{"removal": 150, "fidelity": 81, "reason": "x"}', "vlm")
    assert off.verdict == "review" and "removal is 150" in off.note and off.scores == {}
    assert judge_result(qc.Judge(), '{"removal": 90, "fidelity": "high"}', "vlm").verdict == "review"


def test_config_yaml(tmp_path):
    path = tmp_path / "qc.yaml"
    path.write_text("stages:\n  - validity: {aspect_tolerance: 0.05}\n  - quality: {metrics: [piqe], margin: 2}\n"
                    "  - review\nstop_at_fail: false\n")
    cfg = qc.load_config(str(path))
    assert [n for n, _ in cfg.stages] == ["validity", "quality", "review"] and not cfg.stop_at_fail
    assert cfg.stage("quality").metrics == ("piqe",) and cfg.stage("validity").aspect_tolerance == 0.05
    assert cfg.fingerprint() != qc.QCConfig().fingerprint()
    assert [n for n, _ in cfg.with_judge("gemini").stages] == ["validity", "quality", "judge", "review"]
    for text, message in (("stages:\n  - sharpness: {}\n", "unknown stage 'sharpness'"),
                          ("stages:\n  - validity: {tolerance: 1}\n", "unexpected keyword"),
                          ("stages:\n  - review\n  - validity\n", "must come last"),
                          ("stagez: []\n", "expected a mapping")):
        path.write_text(text)
        with pytest.raises(QCConfigError, match=message):
            qc.load_config(str(path))
