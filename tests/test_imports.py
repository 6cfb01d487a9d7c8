"""The package's shape: no import cycles, and roots that import nothing heavy.

`ggt VERB --help` runs `import ggt_dataset` and the CLI's modules; if they pull in
`datasets` (with pandas) or torch, every help costs a second or more. Asserting on
sys.modules in a fresh interpreter is exact where a time limit would be flaky.
"""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEAVY = ("datasets", "pandas", "torch", "pyarrow", "pyiqa")
VERBS = ("sample", "build", "verify", "info", "publish", "baseline", "score", "weights", "view", "synth")


def heavy_after(code: str) -> list[str]:
    """The heavy modules a fresh interpreter has imported after running ``code``."""
    probe = f"{code}\nimport sys\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    r = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True)
    return [m for m in r.stdout.strip().split(",") if m]


@pytest.mark.parametrize("module", ["ggt_dataset", "ggt_dataset.cli.main", "ggt_dataset.eval",
                                    "ggt_dataset.schema", "ggt_dataset.layout"])
def test_importing_a_root_imports_nothing_heavy(module):
    assert heavy_after(f"import {module}") == []


@pytest.mark.parametrize("verb", VERBS)
def test_verb_help_imports_nothing_heavy(verb):
    code = ("import contextlib, io\nfrom ggt_dataset.cli.main import main\n"
            f"with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
            f"    main([{verb!r}, '--help'])")
    assert heavy_after(code) == []


def test_lazy_names_are_the_real_ones():
    from ggt_dataset.eval import api

    import ggt_dataset
    from ggt_dataset import schema

    assert ggt_dataset.FEATURES is schema.FEATURES and tuple(schema.FEATURES) == schema.COLUMNS
    assert ggt_dataset.eval.score is api.score
    with pytest.raises(AttributeError):
        ggt_dataset.NOT_A_NAME  # noqa: B018


def test_no_import_cycles():
    r = subprocess.run([sys.executable, os.path.join(ROOT, "bench/import_cycles.py")],
                       check=False, capture_output=True, text=True)
    assert r.returncode == 0 and " 0 cycle(s)" in r.stdout, r.stdout


def test_the_cycle_finder_sees_a_cycle():
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    try:
        from import_cycles import cycles
    finally:
        sys.path.pop(0)
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
