"""Protocols are data: every shipped one loads; include, subsets, hashes and errors."""

from __future__ import annotations

import pytest
from ggt_dataset.eval import protocol as P


@pytest.mark.parametrize("name", P.list_protocols())
def test_every_shipped_protocol_loads_and_pins_pyiqa(name):
    proto = P.load(name)
    assert proto.version >= 1 and proto.pyiqa and proto.metrics
    for m in proto.metrics:
        assert m.kind in ("FR", "NR") and m.better in ("higher", "lower")
        if m.kind == "NR" or m.name in ("lpips", "dists"):
            assert m.weights, f"{name}.{m.name} names no weight files"
    assert len(proto.sha256()) == 64


def test_ggt_pins_the_conventions_the_issue_names():
    ggt = P.load("ggt")
    assert [m.name for m in ggt.metrics] == ["psnr", "ssim", "lpips", "dists", "musiq", "maniqa",
                                              "clipiqa", "topiq_nr", "niqe"]
    assert ggt.metric("psnr").pyiqa_options() == {"color_space": "ycbcr", "eps": 0.0, "test_y_channel": True}
    assert ggt.metric("maniqa").pyiqa == "maniqa-pipal"
    assert (ggt.crop_border, ggt.size.policy, ggt.size.max_diff) == (0, "crop", 32)


def test_ntire_inherits_metrics_and_changes_preprocessing():
    ggt, ntire = P.load("ggt"), P.load("ntire")
    assert [m.name for m in ntire.metrics] == [m.name for m in ggt.metrics]
    assert (ntire.crop_border, ntire.size.policy) == (4, "resize")
    assert dict(ntire.derived)["perception"] and ntire.sha256() != ggt.sha256()
    vals = {"lpips": 0.2, "dists": 0.1, "clipiqa": 0.6, "maniqa": 0.5, "musiq": 60.0, "niqe": 4.0}
    assert P.evaluate_derived(dict(ntire.derived)["perception"], vals) == pytest.approx(
        0.8 + 0.9 + 0.6 + 0.5 + 0.6 + 0.6)


def test_subset_keeps_order_given_and_drops_unusable_derived():
    ntire = P.load("ntire").subset(["ssim", "psnr"])
    assert [m.name for m in ntire.metrics] == ["ssim", "psnr"] and ntire.restricted_to == ("ssim", "psnr")
    assert ntire.usable_derived() == []
    with pytest.raises(P.ProtocolError, match="has no metric 'psnrr'"):
        P.load("ggt").subset(["psnrr"])


def test_user_protocol_file_and_hash_follows_content(tmp_path):
    f = tmp_path / "mine.yaml"
    f.write_text("include: " + P.resolve_path("ggt") + "\nname: mine\nmetadata: {version: 3}\n"
                 "inputs: {crop_border: 8}\n")
    mine = P.load(str(f))
    assert (mine.name, mine.version, mine.crop_border, mine.size.policy) == ("mine", 3, 8, "crop")
    h = mine.sha256()
    f.write_text(f.read_text().replace("crop_border: 8", "crop_border: 6"))
    assert P.load(str(f)).sha256() != h


@pytest.mark.parametrize("body, message", [
    ("name: x\nmetadata: {version: 1}\nmetrics: {p: {pyiqa: psnr, kind: XX, better: higher}}\n", "kind: FR|NR"),
    ("name: x\nmetadata: {version: 1}\nmetrics: {p: {pyiqa: psnr, kind: FR, better: up}}\n", "better"),
    ("name: x\nmetadata: {version: 1}\nmetrics: {p: {pyiqa: psnr, kind: FR, better: higher, colour: 1}}\n",
     "unknown keys"),
    (("name: x\nmetadata: {version: 1}\ninputs: {size_mismatch: {policy: stretch}}\n"
     "metrics: {p: {pyiqa: psnr, kind: FR, better: higher}}\n"), "size_mismatch.policy"),
    ("name: x\nmetrics: {p: {pyiqa: psnr, kind: FR, better: higher}}\n", "missing required key 'version'"),
    (("name: x\nmetadata: {version: 1}\nmetrics: {p: {pyiqa: psnr, kind: FR, better: higher}}\n"
     "derived: {s: 'p + q'}\n"), "unknown metrics ['q']"),
    (("name: x\nmetadata: {version: 1}\nmetrics: {p: {pyiqa: psnr, kind: FR, better: higher}}\n"
     "derived: {s: '__import__(1)'}\n"), "unknown metrics"),
    ("[1, 2]\n", "YAML mapping"),
])
def test_bad_protocols_name_file_and_problem(tmp_path, body, message):
    f = tmp_path / "bad.yaml"
    f.write_text(body)
    with pytest.raises(P.ProtocolError, match="bad.yaml") as e:
        P.load(str(f))
    assert message in str(e.value)


def test_include_cycle_is_refused(tmp_path):
    (tmp_path / "a.yaml").write_text("include: b.yaml\n")
    (tmp_path / "b.yaml").write_text("include: a.yaml\n")
    with pytest.raises(P.ProtocolError, match="include cycle"):
        P.load(str(tmp_path / "a.yaml"))


def test_derived_expressions_allow_arithmetic_only():
    assert P.evaluate_derived("max(0, (10 - a) / 10) + b * 2", {"a": 4.0, "b": 1.5}) == pytest.approx(3.6)
    with pytest.raises(P.ProtocolError, match="not allowed"):
        P.evaluate_derived("a.__class__", {"a": 1.0})
