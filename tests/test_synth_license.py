"""The licence `ggt synth` writes into OUT_RAW's card: `ggt build` then `ggt publish --dry-run`
of what synth made passes the Hub's card rules, or synth stops first, naming the option.

synth once wrote `license: other` with neither license_name nor license_link, so publish of
every synthesized release (the demo's included) was refused.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import image_bytes, write

from ggt_dataset.cli.main import main

FAST = ["--prompter", "fixed", "--review", "none", "-q"]      # the classical backend: offline


def _lq(folder: Path, n: int = 1) -> list[str]:
    """``n`` photos in ``folder``/rain, and options whose QC keeps them: only the validity stage
    (the quality stage rejects noise, and these photos are noise)."""
    for i in range(n):
        write(str(folder / "rain" / f"{i}.png"), image_bytes(i, size=(48, 40)))
    qc = folder.parent / "qc.yaml"
    qc.write_text("stages: [validity]\n")
    return ["--qc", str(qc)]


def _synth_build_publish(ggt_in_process, args: list[str],
                         tmp_path: Path) -> tuple[dict, subprocess.CompletedProcess]:
    """synth, build, then a publish dry run (which checks the card and never reaches the network)."""
    out_raw, built = str(tmp_path / "synth-raw"), str(tmp_path / "built")
    assert main(["synth", *args, out_raw, *FAST]) == 0
    assert main(["build", out_raw, built]) == 0
    dry_run = ggt_in_process("publish", built, "--repo-id", "me/x", "--dry-run")
    return yaml.safe_load(Path(out_raw, "ggt-release.yaml").read_text()), dry_run


def _pair_licenses(out_raw: Path) -> set:
    return {json.loads(line)["license"] for line in (out_raw / "metadata.jsonl").read_text().splitlines()}


@pytest.mark.slow
def test_synth_of_a_raw_releases_lq_carries_its_licence_and_publishes(sample_raw, tmp_path, ggt_in_process):
    """The demo's path: synth of the sample pack's test LQ, build, publish dry run."""
    qc = tmp_path / "qc.yaml"
    qc.write_text("stages: [validity]\n")
    args = [os.path.join(sample_raw, "test", "LQ"), "--split", "test", "--qc", str(qc)]
    info, run = _synth_build_publish(ggt_in_process, args, tmp_path)
    assert {k: info[k] for k in ("license", "license_name", "license_link")} == {
        "license": "other", "license_name": "scikit-image-data",
        "license_link": "https://scikit-image.org/docs/stable/api/skimage.data.html"}
    assert run.returncode == 0 and "all checks passed" in run.stdout, run.stderr


@pytest.mark.slow
def test_photos_of_unknown_licence_are_unknown_and_publish(tmp_path, ggt_in_process):
    """No --license and no release around LQ_DIR: the Hub's `unknown`, which claims nothing and
    needs no name or link; each pair's licence column stays empty."""
    qc = _lq(tmp_path / "lq", 2)
    info, run = _synth_build_publish(ggt_in_process, [str(tmp_path / "lq"), *qc], tmp_path)
    assert info["license"] == "unknown" and "license_name" not in info and "license_link" not in info
    assert _pair_licenses(tmp_path / "synth-raw") == {None}
    assert run.returncode == 0 and "all checks passed" in run.stdout, run.stderr


def test_an_explicit_licence_is_the_cards_and_each_pairs(tmp_path):
    qc, out_raw = _lq(tmp_path / "lq"), tmp_path / "synth-raw"
    assert main(["synth", str(tmp_path / "lq"), str(out_raw), "--license", "other", "--license-name", "mine-1.0",
                 "--license-link", "https://example.org/mine", *qc, *FAST]) == 0
    info = yaml.safe_load((out_raw / "ggt-release.yaml").read_text())
    assert (info["license"], info["license_name"], info["license_link"]) == \
        ("other", "mine-1.0", "https://example.org/mine")
    assert _pair_licenses(out_raw) == {"other"}


@pytest.mark.parametrize("options, named", [
    (["--license", "other", "--license-name", "mine-1.0"], "license_link missing; pass --license-link to ggt synth"),
    (["--license", "other"], "license_name and license_link missing; pass --license-name and --license-link"),
    (["--license", "CC BY 4.0"], "license 'CC BY 4.0' is not one of the Hub's licence ids"),
    (["--license-name", "mine-1.0"], "describe --license other; pass --license other too"),
    (["--license", "mit", "--license-link", "https://x.org"], "describe --license other, not --license mit"),
])
def test_a_licence_the_hub_would_refuse_stops_synth_before_anything_is_made(tmp_path, capsys, options, named):
    qc = _lq(tmp_path / "lq")
    assert main(["synth", str(tmp_path / "lq"), str(tmp_path / "synth-raw"), *options, *qc, *FAST]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ggt synth: error: ") and named in err and "Traceback" not in err, err
    assert not (tmp_path / "synth-raw").exists()


def test_a_bad_licence_carried_from_lq_dirs_release_names_that_file(tmp_path, capsys):
    qc = _lq(tmp_path / "raw" / "test" / "LQ")
    (tmp_path / "raw" / "ggt-release.yaml").write_text("license: other\n")
    assert main(["synth", str(tmp_path / "raw" / "test" / "LQ"), str(tmp_path / "synth-raw"), *qc, *FAST]) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path / 'raw' / 'ggt-release.yaml'} (LQ_DIR's release" in err
    assert "pass --license-name and --license-link to ggt synth" in err and not (tmp_path / "synth-raw").exists()
