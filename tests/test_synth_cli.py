"""`ggt synth` and `ggt synth compare`: two commands with their own options; price text parsed by the library."""

from __future__ import annotations

import json

import pytest
from conftest import image_bytes, write

from ggt_dataset.cli.main import main
from ggt_dataset.errors import GGTError


def test_compare_is_a_command_with_its_own_options(tmp_path, capsys):
    with pytest.raises(SystemExit) as done:
        main(["synth", "compare", "--help"])
    assert done.value.code == 0
    helped = capsys.readouterr().out
    assert helped.startswith("usage: ggt synth compare") and "--backends" in helped and "--out OUT" in helped
    assert "--review" not in helped and "--prompter {" not in helped        # a run's options, not compare's
    # compare's options are not a run's: they used to be accepted there and ignored
    with pytest.raises(SystemExit) as done:
        main(["synth", str(tmp_path / "lq"), str(tmp_path / "out"), "--backends", "classical,gemini"])
    assert done.value.code == 2 and "unrecognized arguments: --backends" in capsys.readouterr().err
    with pytest.raises(SystemExit) as done:
        main(["synth", "compare", str(tmp_path / "lq"), "--out", str(tmp_path / "c"), "--review", "all"])
    assert done.value.code == 2 and "unrecognized arguments: --review all" in capsys.readouterr().err


def test_a_run_takes_options_before_or_after_its_folders(tmp_path):
    for i in range(2):
        write(str(tmp_path / "lq" / f"{i}.png"), image_bytes(i, size=(48, 40)))
    lq, common = str(tmp_path / "lq"), ["--prompter", "fixed", "--category", "rain", "--review", "none", "-q"]
    assert main(["synth", "--name", "before", *common, lq, str(tmp_path / "a")]) == 0
    assert main(["synth", lq, str(tmp_path / "b"), "--name", "after", *common]) == 0
    reports = [json.loads((tmp_path / out / "synth-report.json").read_text()) for out in "ab"]
    assert reports[0]["pairs"] == reports[1]["pairs"] and sum(reports[0]["pairs"].values()) == 2
    for out, name, report in zip("ab", ("before", "after"), reports):
        assert report["settings"]["prompter"] == "fixed" and report["qc"]["stages"][-1] == {"review": {"mode": "none"}}
        assert f"pretty_name: {name}" in (tmp_path / out / "ggt-release.yaml").read_text()


def test_prices_are_parsed_by_the_library():
    from ggt_dataset.synth.backends._common import Price
    from ggt_dataset.synth.parts import client_options

    assert Price.parse("0.5,3,60") == Price(0.5, 3.0, 60.0)
    assert Price.parse("0.5,3,60,1") == Price(0.5, 3.0, 60.0, 1.0)
    assert Price.parse("1.5,9", "--vlm-price", text_only=True) == Price(1.5, 9.0)
    with pytest.raises(GGTError, match=r"--judge-price '1,2,3': expected TEXT_IN,TEXT_OUT, finite"):
        Price.parse("1,2,3", "--judge-price", text_only=True)
    with pytest.raises(GGTError, match=r"--price 'a,b,c': expected TEXT_IN,TEXT_OUT,IMAGE_OUT\[,IMAGE_IN\]"):
        Price.parse("a,b,c")
    assert client_options("http://x", price="0.5,3,60", judge_price="1,2") == {
        "backend": {"base_url": "http://x", "price": Price(0.5, 3.0, 60.0)}, "vlm": {"base_url": "http://x"},
        "judge": {"base_url": "http://x", "price": Price(1.0, 2.0)}}
