import json
import os

import pytest
from conftest import image_bytes, write

from ggt_dataset.errors import LayoutError
from ggt_dataset.raw_scan import scan


@pytest.fixture
def files(tmp_path):
    for i in range(3):
        write(tmp_path / f"lq/{i}.jpg", image_bytes(i, fmt="JPEG"))
        write(tmp_path / f"hq/{i}.png", image_bytes(10 + i))
    return tmp_path


def jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_jsonl_manifest_with_metadata(files):
    rows = [{"lq_file_name": f"lq/{i}.jpg", "hq_file_name": f"hq/{i}.png", "split": "train",
             "category": "Low-Light", "source": "cam", "license": "CC0-1.0", "model": "m",
             "prompt": "restore", "qc_musiq": 60 + i, "qc_clip": None} for i in range(3)]
    r = scan(jsonl(files / "metadata.jsonl", rows))
    assert r.layout == "manifest" and not r.problems
    p = r.pairs[0]
    assert p.id == "low_light/0" and p.meta["generator"] == "m" and p.meta["license"] == "CC0-1.0"
    assert p.meta["qc_scores"] == [{"name": "musiq", "score": 60.0}]
    # a folder holding metadata.jsonl is read through it
    assert [q.id for q in scan(str(files)).pairs] == [q.id for q in r.pairs]


def test_csv_manifest_with_aliases_and_ids(files):
    (files / "pairs.csv").write_text("lq,gt,split,category,id\nlq/0.jpg,hq/0.png,test,rain,r0\n"
                                     "lq/1.jpg,hq/1.png,test,rain,r1\n")
    r = scan(str(files / "pairs.csv"))
    assert [(p.split, p.id) for p in r.pairs] == [("test", "r0"), ("test", "r1")]


def test_bad_rows_are_problems_naming_the_line(files):
    (files / "m.csv").write_text(
        "lq_file_name,hq_file_name,split,category,qc_x\n"
        "lq/0.jpg,hq/missing.png,train,rain,1\n"
        "lq/1.jpg,hq/1.png,validation,rain,1\n"
        "lq/2.jpg,hq/2.png,train,sunny,1\n"
        "../etc/passwd,hq/2.png,train,rain,1\n"
        "lq/2.jpg,hq/2.png,train,rain,abc\n")
    r = scan(str(files / "m.csv"))
    msgs = [str(e) for e in r.problems]
    assert not r.pairs and len(msgs) == 5
    assert any(m.startswith("hq/missing.png: listed in") and "m.csv:2" in m for m in msgs)
    assert any("split 'validation' is not one of" in m and "m.csv:3" in m for m in msgs)
    assert any("category 'sunny'" in m for m in msgs)
    assert any("must be a path inside" in m for m in msgs)
    assert any("qc_x='abc' is not a number" in m for m in msgs)


def test_duplicate_ids_drop_every_copy(files):
    rows = [{"lq": f"lq/{i}.jpg", "hq": f"hq/{i}.png", "split": "train", "category": "rain", "id": "same"}
            for i in range(2)] + [{"lq": "lq/2.jpg", "hq": "hq/2.png", "split": "train", "category": "rain"}]
    r = scan(jsonl(files / "m.jsonl", rows))
    assert [p.id for p in r.pairs] == ["rain/2"]
    assert sum("duplicate id 'same'" in str(e) for e in r.problems) == 2


@pytest.mark.parametrize("content,match", [
    ("lq,hq,split,category,colour\n", r"unknown columns \['colour'\]"),
    ("lq,split,category\n", r"missing columns \['hq_file_name'\]"),
])
def test_column_errors(files, content, match):
    (files / "m.csv").write_text(content)
    with pytest.raises(LayoutError, match=match):
        scan(str(files / "m.csv"))


def test_broken_jsonl_names_the_line(files):
    good = '{"lq": "lq/0.jpg", "hq": "hq/0.png", "split": "train", "category": "rain"}'
    (files / "m.jsonl").write_text(good + "\n{oops\n")
    with pytest.raises(LayoutError, match=r"m.jsonl:2: not valid JSON"):
        scan(str(files / "m.jsonl"))


def test_spreadsheet_csv_with_bom_and_jsonl_with_bom(files):
    (files / "m.csv").write_text("\ufefflq,hq,split,category\nlq/0.jpg,hq/0.png,train,rain\n", encoding="utf-8")
    assert [p.id for p in scan(str(files / "m.csv")).pairs] == ["rain/0"]
    (files / "m.jsonl").write_text('\ufeff{"lq": "lq/0.jpg", "hq": "hq/0.png", "split": "test", "category": "rain"}\n',
                                   encoding="utf-8")
    assert [p.id for p in scan(str(files / "m.jsonl")).pairs] == ["rain/0"]


@pytest.mark.parametrize("text,match", [
    ("lq,hq,split,category\nlq/0.jpg,hq/0.png,train,rain,extra\n", "m.csv:2: more fields than the header"),
    ("lq,lq_file_name,hq,split,category\n", r"columns \['lq', 'lq_file_name'\] all mean 'lq_file_name'"),
])
def test_csv_shape_errors(files, text, match):
    (files / "m.csv").write_text(text)
    with pytest.raises(LayoutError, match=match):
        scan(str(files / "m.csv"))


@pytest.mark.parametrize("extra,match", [
    ({"id": 0}, "id 0 must be non-empty text"), ({"id": ""}, "id '' must be non-empty text"),
    ({"id": True}, "id True must be non-empty text"), ({"qc_a": 10**400}, "is not a number"),
    ({"prompt": "\ud800"}, "is not valid Unicode text"), ({"source": 5}, "source must be text"),
])
def test_bad_values_are_refused_not_rewritten(files, extra, match):
    row = {"lq": "lq/0.jpg", "hq": "hq/0.png", "split": "train", "category": "rain", **extra}
    r = scan(jsonl(files / "m.jsonl", [row]))
    assert not r.pairs and match in str(r.problems[0])


def test_jsonl_duplicate_keys_are_refused(files):
    (files / "m.jsonl").write_text('{"lq": "lq/0.jpg", "lq": "lq/1.jpg", "hq": "hq/0.png", "split": "train", '
                                   '"category": "rain"}\n')
    with pytest.raises(LayoutError, match="key 'lq' appears twice"):
        scan(str(files / "m.jsonl"))


@pytest.mark.parametrize("pair_id,why", [
    ("../../outside", "'..'"), ("/tmp/x", "absolute path"), ("rain\\..\\x", "backslash"),
    ("rain/\x00x", "control character"), ("rain//x", "empty part"), ("rain/./x", "'.'")])
def test_ids_that_could_name_a_file_outside_a_folder_are_bad_pairs(files, pair_id, why):
    rows = [{"lq": "lq/0.jpg", "hq": "hq/0.png", "split": "test", "category": "rain", "id": pair_id},
            {"lq": "lq/1.jpg", "hq": "hq/1.png", "split": "test", "category": "rain", "id": "rain/a/b"}]
    r = scan(jsonl(files / "m.jsonl", rows))
    assert [p.id for p in r.pairs] == ["rain/a/b"]          # '/' inside an id is fine
    msg = str(r.problems[0])
    assert msg.startswith(f"lq/0.jpg: {files / 'm.jsonl'}:1: id {pair_id!r}") and why in msg, msg


@pytest.mark.slow
def test_build_refuses_a_manifest_id_with_dotdot(files, tmp_path, ggt_in_process):
    rows = [{"lq": "lq/0.jpg", "hq": "hq/0.png", "split": "test", "category": "rain", "id": "../../escape"}]
    jsonl(files / "metadata.jsonl", rows)
    r = ggt_in_process("build", files, tmp_path / "out")
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "id '../../escape' has a '.' or '..' part" in r.stdout + r.stderr
    assert not (tmp_path / "out").exists()


def test_a_fifo_listed_in_a_manifest_is_named_not_read(files):
    os.mkfifo(files / "lq/pipe.jpg")
    rows = [{"lq": "lq/pipe.jpg", "hq": "hq/0.png", "split": "test", "category": "rain"}]
    r = scan(jsonl(files / "m.jsonl", rows))
    assert "lq/pipe.jpg: listed in" in str(r.problems[0]) and "but not a regular file" in str(r.problems[0])
