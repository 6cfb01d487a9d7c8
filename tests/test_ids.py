import os

import pytest

from ggt_dataset.errors import BadIdError, GGTError
from ggt_dataset.ids import id_path, shown, validate_id


@pytest.mark.parametrize("pair_id", ["rain/0001", "rain/a/b", "x", "haze/chelsea_000.v2", "snow/ a b"])
def test_relative_ids_pass(pair_id):
    assert validate_id(pair_id, "m.jsonl:2") == pair_id


@pytest.mark.parametrize("pair_id,why", [
    ("../x", "'..'"), ("rain/../../x", "'..'"), ("rain/./x", "'.'"), ("/etc/x", "absolute"),
    ("rain\\..\\x", "backslash"), ("rain//x", "empty part"), ("rain/", "empty part"), ("", "empty"),
    ("rain/a\x00b", "control"), ("rain/a\nb", "control"), ("rain/a\x1b[31m", "control"),
    ("rain/a\u2028b", "control"), ("rain/\udcff", "Unicode"), (7, "must be text")])
def test_unsafe_ids_refused_naming_where(pair_id, why):
    with pytest.raises(BadIdError, match=why) as e:
        validate_id(pair_id, "m.jsonl:9")
    assert str(e.value).startswith("m.jsonl:9: id ")
    assert "\n" not in str(e.value) and "\x00" not in str(e.value)   # repr-escaped
    assert isinstance(e.value, GGTError)


def test_id_path_stays_under_root(tmp_path):
    assert id_path(str(tmp_path), "rain/a/b", ".png") == os.path.join(str(tmp_path), "rain", "a", "b.png")
    with pytest.raises(BadIdError, match="out.*'..'"):
        id_path(str(tmp_path / "out"), "../../x", ".png")


def test_shown_escapes_only_what_a_terminal_would_act_on():
    assert shown("rain/ünïcode 1.png") == "rain/ünïcode 1.png"
    assert shown("rain/a\x1b[2J\r.png") == "rain/a\\x1b[2J\\r.png"
