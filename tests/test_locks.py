"""ggt_dataset/locks.py: one exclusive lock helper for ggt build's OUT and ggt synth's OUT_RAW."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ggt_dataset.errors import GGTError
from ggt_dataset.locks import exclusive


def _held_by(pid: str) -> GGTError:
    return GGTError(f"held by {pid}")


def test_a_second_holder_is_refused_by_the_callers_error_naming_the_first(tmp_path):
    path = str(tmp_path / "state" / "lock")            # the folder is made
    with exclusive(path, _held_by):
        assert Path(path).read_text() == f"{os.getpid()}\n"
        # flock locks belong to an open file, so a second open in this process is another holder
        with pytest.raises(GGTError, match=f"^held by {os.getpid()}$"), exclusive(path, _held_by):
            pass
    with exclusive(path, _held_by):                     # released at the end of the block
        pass


def test_build_and_synth_refuse_through_the_same_helper(tmp_path):
    from ggt_dataset.build import STATE_DIR, _exclusive
    from ggt_dataset.errors import BuildError
    from ggt_dataset.synth.journal import run_lock

    out = str(tmp_path / "out")
    build_lock, synth_state = os.path.join(out, STATE_DIR, "lock"), os.path.join(out, ".ggt-synth")
    with (exclusive(build_lock, _held_by),
          pytest.raises(BuildError, match="another `ggt build` is writing here"), _exclusive(out)):
        pass
    with (exclusive(os.path.join(synth_state, "lock"), _held_by),
          pytest.raises(GGTError, match=rf"another ggt synth \(pid {os.getpid()}\) is using {out}"),
          run_lock(synth_state)):
        pass
