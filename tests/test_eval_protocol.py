"""Protocols are data: every shipped one loads; include, subsets, hashes and errors."""

from __future__ import annotations

import os

import pytest
from ggt_dataset.eval import protocol as P
from ggt_dataset.eval.metric_facts import DIRECTIONS


@pytest.mark.parametrize("name", P.list_protocols())
def test_every_shipped_protocol_loads_and_pins_pyiqa(name):
    proto = P.load(name)
    assert proto.version >= 1 and proto.pyiqa and proto.metrics
    for m in proto.metrics:
        assert m.kind in ("FR", "NR") and m.better in DIRECTIONS
        if m.kind == "NR" or m.name in ("lpips", "dists"):
            assert m.weights, f"{name}.{m.name} names no weight files"
    assert len(proto.sha256()) == 64


def test_ggt_pins_the_conventions_the_issue_names():
    ggt = P.load("ggt")
    assert [m.name for m in ggt.metrics] == ["psnr", "ssim", "lpips", "dists", "musiq", "maniqa",
                                              "clipiqa", "topiq_nr", "afine_nr", "niqe"]
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
    # with crop, max_diff is the limit every pair is held to: it was a TypeError mid-scoring
    *[("name: x\nmetadata: {version: 1}\ninputs: {size_mismatch: {policy: crop, max_diff: " + bad + "}}\n"
       "metrics: {p: {pyiqa: psnr, kind: FR, better: higher}}\n",
       f"size_mismatch.max_diff must be a whole number of pixels, 0 or more, with policy 'crop'; got {got}")
      for bad, got in (("null", "None"), ("'32'", "'32'"), ("-1", "-1"), ("2.5", "2.5"), ("true", "True"))],
    ("name: x\nmetrics: {p: {pyiqa: psnr, kind: FR, better: higher}}\n", "missing required key 'version'"),
    (("name: x\nmetadata: {version: 1}\nmetrics: {p: {pyiqa: psnr, kind: FR, better: higher}}\n"
     "derived: {s: 'p + q'}\n"), "unknown metrics ['q']"),
    (("name: x\nmetadata: {version: 1}\nmetrics: {p: {pyiqa: psnr, kind: FR, better: higher}}\n"
     "derived: {s: '__import__(1)'}\n"), "is not allowed"),
    ("[1, 2]\n", "YAML mapping"),
    (("name: x\nmetadata: {version: 1}\nmetrics: {p: {pyiqa: psnr, kind: FR, better: higher}}\n"
     "derived: [p]\n"), "'derived' must map score names"),
    # hostile YAML, refused before anything expands it
    ("a: &a [*a]\n", "refers to its own anchor"),
    pytest.param("[" * 50000 + "]" * 50000 + "\n", "nested too deeply", marks=pytest.mark.slow),
    ("# padding\n" * 60000, "larger than the 512 KiB"),
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
    assert P.evaluate_derived("(a * b) ** (1 / 2) + a ** -1", {"a": 4.0, "b": 9.0}) == pytest.approx(6.25)
    with pytest.raises(P.ProtocolError, match="not allowed"):
        P.evaluate_derived("a.__class__", {"a": 1.0})


@pytest.mark.parametrize("expr, message", [
    ("p.real", "'p.real' is not allowed"),
    ("9**9**9", "exponent in '9 ** 9 ** 9' must be a number within"),
    ("p ** p", "exponent in 'p ** p' must be a number"),
    ("p[0]", "'p[0]' is not allowed"),
    ("print(p)", "'print(p)' is not allowed"),
    ("max(p)", "'max(p)' is not allowed"),
    ("abs(p, p)", "'abs(p, p)' is not allowed"),
    ("p if p else 1", "is not allowed"),
    ("1e999 * p", "is not allowed"),
    ("'a' + p", "is not allowed"),
    ("-" * 600 + "p", "longer than 500 characters"),
])
def test_derived_expression_is_checked_whole_when_the_protocol_loads(tmp_path, expr, message):
    """Before: these loaded, and failed after all the scoring, when the report was written."""
    f = tmp_path / "derived.yaml"
    f.write_text("name: x\nmetadata: {version: 1}\nmetrics: {p: {pyiqa: psnr, kind: FR, better: higher}}\n"
                 f"derived: {{s: {expr!r}}}\n")
    with pytest.raises(P.ProtocolError, match="derived.yaml: derived expression") as e:
        P.load(str(f))
    assert message in str(e.value)


@pytest.mark.parametrize("expr, values", [
    ("a / b", {"a": 0.0, "b": 0.0}), ("a / b", {"a": 1.0, "b": 0.0}), ("(a - 2) ** 0.5", {"a": 1.0}),
    ("a * 1e300 * 1e300", {"a": 1.0}), ("(a * 1e300) ** 16", {"a": 1.0}), ("b ** -1", {"b": 0.0}),
])
def test_derived_arithmetic_errors_are_values_not_exceptions(expr, values):
    import math

    assert not math.isfinite(P.evaluate_derived(expr, values))


_BOUNDED_LOAD = """
import resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, (int(sys.argv[2]), int(sys.argv[2])))
from ggt_dataset.eval import protocol as P
from ggt_dataset.eval.metric_facts import DIRECTIONS
t = time.process_time()      # CPU time: the work done, whatever else the machine runs
try:
    P.load(sys.argv[1]).sha256()       # sha256 serialises the whole expanded mapping
    print("loaded")
except P.ProtocolError as e:
    print("refused:", e)
print("cpu_seconds", time.process_time() - t)
# VmHWM is this program's own peak: ru_maxrss keeps the forking parent's (pytest's) across exec.
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print("peak_rss_mb", int(hwm.split()[1]) // 1024)
"""


def _load_in_child(path, memory=3 << 30, timeout=60):
    """Load (and hash) a protocol in a child limited in memory and time: a hostile file the
    loader fails to refuse must not take the test run, or the machine, down with it."""
    import subprocess
    import sys

    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    try:
        r = subprocess.run([sys.executable, "-c", _BOUNDED_LOAD, str(path), str(memory)],
                           check=False, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail(f"loading {path} did not finish in {timeout} s")
    assert r.returncode == 0, r.stderr[-2000:]
    lines = dict(line.split(" ", 1) for line in r.stdout.splitlines() if " " in line)
    return lines, r.stdout


def test_billion_laughs_is_refused_fast_in_bounded_memory(tmp_path):
    # 0.6 KB: 10^9 'lol' leaves once expanded; yaml.safe_load alone shares the aliases.
    lines = ["name: lol", "metadata: {version: 1}", "metrics: {p: {pyiqa: psnr, kind: FR, better: higher}}",
             "a0: &a0 [" + ", ".join(["lol"] * 10) + "]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    f = tmp_path / "lol.yaml"
    f.write_text("\n".join(lines) + "\n")
    assert f.stat().st_size < 1024
    out, text = _load_in_child(f)
    assert "lol.yaml: expands to more than" in out.get("refused:", ""), text
    assert float(out["cpu_seconds"]) < 2 and int(out["peak_rss_mb"]) < 1024, text   # old: MemoryError at 3 GiB


def test_a_handful_of_aliases_still_loads(tmp_path):
    f = tmp_path / "anchors.yaml"
    f.write_text("name: x\nmetadata: {version: 1}\nmetrics:\n  p: &fr {pyiqa: psnr, kind: FR, better: higher}\n"
                 "  q: *fr\n")
    assert [m.pyiqa for m in P.load(str(f)).metrics] == ["psnr", "psnr"]


def test_include_of_a_fifo_is_refused_not_waited_on(tmp_path):
    os.mkfifo(tmp_path / "pipe.yaml")
    (tmp_path / "mine.yaml").write_text("include: pipe.yaml\n")
    out, text = _load_in_child(tmp_path / "mine.yaml", timeout=30)   # the old loader blocks forever
    assert "pipe.yaml: a protocol must be a regular file" in out.get("refused:", ""), text


def test_include_cycle_through_differently_spelled_paths(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.yaml").write_text("include: ./sub/b.yaml\n")
    (tmp_path / "sub" / "b.yaml").write_text("include: ../sub/../a.yaml\n")
    with pytest.raises(P.ProtocolError, match="include cycle"):
        P.load(str(tmp_path / "a.yaml"))


@pytest.mark.parametrize("value", ["[ggt.yaml]", "{file: ggt.yaml}", "3", "''"])
def test_include_must_be_one_file_name(tmp_path, value):
    f = tmp_path / "mine.yaml"
    f.write_text(f"include: {value}\nname: mine\n")
    with pytest.raises(P.ProtocolError, match="mine.yaml: include must be one file name"):
        P.load(str(f))


@pytest.mark.slow
def test_non_finite_derived_score_is_flagged_and_the_report_still_written(eval_set, identity_preds, tmp_path):
    """0/0 and overflow in a derived score made summary.json's strict JSON write fail: no report."""
    import json

    from ggt_dataset.cli.main import main

    f = tmp_path / "mine.yaml"
    f.write_text(f"include: {P.resolve_path('ggt')}\nname: mine\nmetadata: {{version: 1}}\n"
                 "derived: {zero: 'psnr / (ssim - ssim)', huge: 'psnr * 1e300 * 1e300', ok: 'ssim * 2'}\n")
    out = tmp_path / "r"
    assert main(["score", identity_preds, "--reference", eval_set, "--protocol", str(f), "--out", str(out),
                 "--metrics", "psnr,ssim", "--device", "cpu", "-q"]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["derived"]["overall"]["zero"] is None and s["derived"]["overall"]["huge"] is None
    assert s["derived"]["overall"]["ok"] == pytest.approx(2 * s["overall"]["ssim"]["mean"])
    assert {"where": "overall", "name": "zero", "value": "nan"} in s["derived"]["nonfinite"]
    assert {"where": "rain", "name": "huge", "value": "inf"} in s["derived"]["nonfinite"]
    assert "‡ derived scores that are not finite" in (out / "report.md").read_text()


def test_minimum_pair_size_follows_the_metrics_and_border_crop():
    assert P.load("ggt").min_side() == (96, "niqe")           # one 96x96 NIQE block
    assert P.load("ggt").subset(["psnr", "ssim"]).min_side() == (11, "ssim")
    assert P.load("ntire").subset(["psnr", "ssim"]).min_side() == (19, "ssim")   # 11 + 2 * 4
    assert P.load("ggt").subset(["psnr", "musiq"]).min_side() == (1, "psnr")
    assert P.load("ggt").subset(["ssim"]).size_problem(11, 11) is None
    assert "10x11 px, smaller than the 11x11 px" in P.load("ggt").subset(["ssim"]).size_problem(11, 10)


def test_include_merges_metrics_by_name(tmp_path):
    """A variant restates only the metrics it changes (basicsr: psnr, ssim); the rest follow the
    parent, and 'name: null' drops one. Before, a child's 'metrics' replaced the parent's whole."""
    bsr, ggt = P.load("basicsr"), P.load("ggt")
    assert [m.name for m in bsr.metrics] == [m.name for m in ggt.metrics]
    assert bsr.metric("lpips") == ggt.metric("lpips") and bsr.metric("fid") == ggt.metric("fid")
    assert dict(bsr.metric("ssim").options)["convention"] == "basicsr" and bsr.metric("psnr").dtype == "float64"
    f = tmp_path / "mine.yaml"
    f.write_text(f"include: {P.resolve_path('ggt')}\nname: mine\nmetadata: {{version: 1}}\n"
                 "metrics: {niqe: null, psnr: {pyiqa: psnr, kind: FR, better: higher}}\n")
    mine = P.load(str(f))
    assert [m.name for m in mine.metrics] == [m.name for m in ggt.metrics if m.name != "niqe"]
    assert mine.metric("psnr").options == () and mine.metric("ssim") == ggt.metric("ssim")


def test_ggt_is_harnessirs_protocol_or_says_where_it_is_not():
    """Issue #12.0: HarnessIR's harness/metrics.py scores NR with MANIQA (maniqa-pipal), CLIPIQA,
    MUSIQ, TOPIQ (topiq_nr) and AFINE-NR (direction unknown, top-left crop to multiples of 32),
    FR with PSNR, SSIM (Y of YCbCr), LPIPS and DISTS. v2 had no AFINE-NR and stated no difference."""
    ggt = P.load("ggt")
    assert ggt.version >= 3
    pyiqa = {m.pyiqa: m for m in ggt.metrics}
    assert {"maniqa-pipal", "clipiqa", "musiq", "topiq_nr", "afine_nr"} <= {m.pyiqa for m in ggt.metrics
                                                                          if m.kind == "NR"}
    assert {"psnr", "ssim", "lpips", "dists"} == {m.pyiqa for m in ggt.metrics if m.kind == "FR"}
    afine = pyiqa["afine_nr"]
    assert (afine.better, afine.ranked, afine.crop_to_multiple, afine.min_side()) == ("unknown", False, 32, 32)
    assert {w.file for w in afine.weights} == {"afine.pth", "ViT-B-32.pt"}
    for m in ("psnr", "ssim"):
        assert pyiqa[m].pyiqa_options()["test_y_channel"] and pyiqa[m].pyiqa_options()["color_space"] == "ycbcr"
    # Each difference that remains is stated: eps, NIQE as an extra.
    text = " ".join(ggt.differences)
    assert "eps 0" in text and "1e-8" in text and "NIQE" in text and len(ggt.differences) >= 5
    assert ggt.describe()["differences"] == list(ggt.differences)
    ntire = P.load("ntire")
    assert ntire.version >= 3 and ntire.differences == ()     # NTIRE's rules, not a HarnessIR variant
    assert "afine_nr" not in P._expr_names(dict(ntire.derived)["perception"], "ntire")


@pytest.mark.parametrize("extra, message", [
    ("derived: {q: 'musiq + afine'}\n", "derived 'q' uses ['afine'], whose direction is unknown"),
    ("", None),
])
def test_a_metric_of_unknown_direction_never_enters_a_derived_score(tmp_path, extra, message):
    f = tmp_path / "p.yaml"
    f.write_text("name: u\nmetadata: {version: 1}\nmetrics:\n"
                 "  musiq: {pyiqa: musiq, kind: NR, better: higher}\n"
                 "  afine: {pyiqa: afine_nr, kind: NR, better: unknown, crop_to_multiple: 64}\n" + extra)
    if message is None:
        assert P.load(str(f)).metric("afine").min_side() == 64
        return
    with pytest.raises(P.ProtocolError) as e:
        P.load(str(f))
    assert message in str(e.value)


@pytest.mark.parametrize("multiple", [None, 1, 48, 0, "32"])
def test_afine_must_be_cropped_to_multiples_of_32(tmp_path, multiple):
    """pyiqa's AFINE asserts sides divisible by 32: a protocol that would reach that assert mid-run
    is refused when it loads."""
    f = tmp_path / "p.yaml"
    crop = "" if multiple is None else f", crop_to_multiple: {multiple!r}"
    f.write_text("name: u\nmetadata: {version: 1}\nmetrics:\n"
                 f"  afine: {{pyiqa: afine_nr, kind: NR, better: unknown{crop}}}\n")
    with pytest.raises(P.ProtocolError, match="crop_to_multiple must be a positive integer and a multiple of 32"):
        P.load(str(f))


def test_afine_crop_is_top_left_to_multiples_of_32_and_sets_the_smallest_pair():
    import torch
    from ggt_dataset.eval.metrics import crop_to_multiple

    batch = torch.arange(2 * 3 * 70 * 100, dtype=torch.float32).reshape(2, 3, 70, 100)
    out = crop_to_multiple(batch, 32)
    assert out.shape == (2, 3, 64, 96) and torch.equal(out, batch[..., :64, :96])
    assert crop_to_multiple(batch, 1) is batch
    afine = P.load("ggt").subset(["psnr", "afine_nr"])
    assert afine.size_problem(32, 32) is None
    assert "31x40 px, smaller than the 32x32 px protocol 'ggt' needs (afine_nr needs 32x32 px)" in \
        afine.size_problem(40, 31)
