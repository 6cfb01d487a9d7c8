"""`ggt view`'s server, over real HTTP: index, queries, pairs, images, overlays and bad input."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import urllib.parse

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from viewserver import get, get_json, ggt, ggt_view, serving

from ggt_dataset.view.index import build_index
from ggt_dataset.view.overlays import OverlayError
from ggt_dataset.view.query import QueryError
from ggt_dataset.view.source import Source, SourceError, open_source
from ggt_dataset.view.viewer import Viewer

pytest.importorskip("starlette")


@pytest.fixture(scope="session")
def report(eval_set, identity_preds, tmp_path_factory):
    from ggt_dataset.eval import score

    out = str(tmp_path_factory.mktemp("view-report") / "identity")
    score(identity_preds, eval_set, out=out, metrics=["psnr"])
    return out


@pytest.fixture(scope="session")
def server(eval_set, report):
    viewer = Viewer.open(eval_set, report=report)
    with serving(viewer) as url:
        yield url, viewer


def rows_of(built: str) -> list[dict]:
    """Every row of a build, straight from its shards, with the split from the file name."""
    out = []
    for root, _, files in os.walk(os.path.join(built, "data")):
        for f in sorted(files):
            t = pq.read_table(os.path.join(root, f), columns=["id", "category", "lq_sha256", "hq_sha256"])
            out += [{**r, "split": f.split("-")[0]} for r in t.to_pylist()]
    return out


def q(url: str, path: str, **params) -> tuple[int, dict]:
    return get_json(f"{url}{path}?{urllib.parse.urlencode(params)}")


def test_rows_page_filter_and_sort(server, eval_set):
    url, _ = server
    truth = rows_of(eval_set)
    status, everything = q(url, "/api/rows", per=200)
    assert status == 200 and everything["total"] == len(truth) == len(everything["rows"])
    status, test = q(url, "/api/rows", split="test", per=200)
    assert test["total"] == sum(r["split"] == "test" for r in truth) == 18
    status, rain = q(url, "/api/rows", category="rain,haze", split="test")
    assert rain["total"] == 6 and {r["values"]["category"] for r in rain["rows"]} == {"rain", "haze"}
    # Sorted by PSNR ascending (worst first): non-decreasing, and rows without a score (train) last.
    status, by_psnr = q(url, "/api/rows", sort="psnr", per=200)
    values = [r["values"]["psnr"] for r in by_psnr["rows"]]
    scored = [v for v in values if v is not None]
    assert len(scored) == 18 and scored == sorted(scored) and all(v is None for v in values[18:])
    status, desc = q(url, "/api/rows", sort="-psnr", split="test", per=200)
    assert [r["values"]["psnr"] for r in desc["rows"]] == sorted(scored, reverse=True)
    cut = scored[9]
    status, where = q(url, "/api/rows", where=f"psnr>{cut}")
    assert where["total"] == sum(v > cut for v in scored) and all(r["values"]["psnr"] > cut for r in where["rows"])
    # Pages are slices of the same order.
    status, p2 = q(url, "/api/rows", sort="psnr", per=5, page=2)
    assert [r["key"] for r in p2["rows"]] == [r["key"] for r in by_psnr["rows"][5:10]]
    assert p2["pages"] == -(-len(truth) // 5)
    status, found = q(url, "/api/rows", q="CHELSEA")
    assert found["total"] == sum("chelsea" in r["id"] for r in truth) > 0


def test_same_id_in_both_splits_is_two_pairs(server, eval_set):
    url, _ = server
    truth = rows_of(eval_set)
    both = {r["id"] for r in truth if r["split"] == "train"} & {r["id"] for r in truth if r["split"] == "test"}
    assert both, "the sample pack reuses names across splits; this test needs that"
    pair_id = min(both)
    sha = {(r["split"], r["id"]): r["lq_sha256"] for r in truth}
    for split in ("train", "test"):
        status, _, body = get(f"{url}/api/image?" + urllib.parse.urlencode(
            {"key": f"{split}:{pair_id}", "role": "lq", "size": "full"}))
        assert status == 200 and hashlib.sha256(body).hexdigest() == sha[split, pair_id]


def test_pair_detail_and_neighbours(server, eval_set):
    url, _ = server
    status, listing = q(url, "/api/rows", sort="-psnr", split="test", per=200)
    keys = [r["key"] for r in listing["rows"]]
    status, pair = q(url, "/api/pair", key=keys[3], sort="-psnr", split="test")
    assert status == 200
    assert (pair["position"], pair["total"], pair["prev"], pair["next"]) == (3, 18, keys[2], keys[4])
    assert pair["record"]["id"] == keys[3].split(":", 1)[1] and pair["roles"] == ["lq", "pred", "hq"]
    assert pair["values"]["psnr"] == listing["rows"][3]["values"]["psnr"]
    status, first = q(url, "/api/pair", key=keys[0], sort="-psnr", split="test")
    assert first["prev"] is None and first["next"] == keys[1]
    status, elsewhere = q(url, "/api/pair", key=keys[0], category="nonexistent")
    assert status == 400 and "nonexistent" in elsewhere["error"]


def test_images_are_the_stored_bytes(server, eval_set, identity_preds):
    url, _ = server
    row = next(r for r in rows_of(eval_set) if r["split"] == "test")
    key = f"test:{row['id']}"
    for role in ("lq", "hq"):
        status, kind, body = get(f"{url}/api/image?" + urllib.parse.urlencode({"key": key, "role": role}))
        assert status == 200 and kind.startswith("image/")
        assert hashlib.sha256(body).hexdigest() == row[f"{role}_sha256"]
    status, _, pred = get(f"{url}/api/image?" + urllib.parse.urlencode({"key": key, "role": "pred"}))
    with open(_pred_path(identity_preds, row["id"]), "rb") as f:
        assert status == 200 and pred == f.read()
    status, kind, thumb = get(f"{url}/api/image?" + urllib.parse.urlencode({"key": key, "role": "hq", "size": "thumb"}))
    img = Image.open(io.BytesIO(thumb))
    assert status == 200 and kind == "image/jpeg" and img.format == "JPEG" and max(img.size) <= 320


def _pred_path(folder: str, pair_id: str) -> str:
    base = os.path.join(folder, *pair_id.split("/"))
    return next(base + ext for ext in (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
                if os.path.exists(base + ext))


@pytest.mark.parametrize("path, code", [
    ("/api/image?key=test:no/such&role=lq", 404),
    ("/api/image?key=no-split-here&role=lq", 404),
    ("/api/image?key=test:rain/chelsea_000&role=secret", 404),
    ("/api/image?key=test:rain/chelsea_000&role=lq&size=huge", 404),
    ("/api/rows?where=psnr>>3", 400),
    ("/api/rows?where=psnr>1.2.3", 400),
    ("/api/rows?where=psnr>.", 400),
    ("/api/rows?sort=--psnr", 400),
    ("/api/rows?where=id>3", 400),
    ("/api/rows?sort=-nothing", 400),
    ("/api/rows?category=rainy", 400),
    ("/api/rows?page=two", 400),
    ("/api/pair?key=", 404),
    ("/static/../../etc/passwd", 404),
    ("/etc/passwd", 404),
    ("/api/nothing", 404),
])
def test_bad_requests_get_a_json_error(server, path, code):
    url, _ = server
    status, kind, body = get(url + path)
    assert status == code and kind.startswith("application/json")
    assert b"Traceback" not in body and b'"error"' in body


def test_prediction_missing_for_a_train_pair_is_404(server, eval_set):
    url, _ = server
    row = next(r for r in rows_of(eval_set) if r["split"] == "train")
    status, _, body = get(f"{url}/api/image?" + urllib.parse.urlencode({"key": f"train:{row['id']}", "role": "pred"}))
    assert status == 404 and b"no prediction" in body


def test_read_only_and_host_checked(server, eval_set):
    url, _ = server
    for method in ("POST", "PUT", "DELETE"):
        status, _, _ = get(f"{url}/api/rows", method=method)
        assert status == 405
    status, _, _ = get(f"{url}/api/info", headers={"Host": "evil.example:80"})
    assert status == 400
    # No file system path leaks into what the page sees.
    _, listing = q(url, "/api/rows", split="test")
    key = urllib.parse.quote(listing["rows"][0]["key"])
    for path in ("/api/info", "/api/rows?per=200", f"/api/pair?key={key}"):
        status, _, body = get(url + path)
        assert status == 200 and os.path.dirname(eval_set).encode() not in body


def test_index_memory_is_a_few_numbers_and_the_id_per_row(eval_set):
    index = build_index(open_source(eval_set))
    per_row = (sum(c.values.nbytes for c in index.columns.values()) + index.hashes.nbytes
               + index.hash_rows.nbytes + index.ids.nbytes) / index.num_rows
    id_chars = sum(len(i) for i in index.ids.to_pylist()) / index.num_rows
    assert per_row <= 64 + id_chars, per_row          # numbers, plus the ids' own characters
    assert all(c.values.dtype.itemsize <= 4 for c in index.columns.values())


def test_fsspec_path_reads_the_same(eval_set):
    """A Hub repo is read through an fsspec file system; the local one exercises that code path."""
    import fsspec

    local = open_source(eval_set)
    remote = Source("via-fsspec", local.shards, fsspec.filesystem("file"))
    a, b = Viewer(build_index(local)), Viewer(build_index(remote))
    assert a.rows({"per": "200"})["rows"] == b.rows({"per": "200"})["rows"]
    key = a.rows({})["rows"][0]["key"]
    assert a.image(key, "hq", "full") == b.image(key, "hq", "full")


def test_hub_target_offline_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SourceError, match="someone/GGT-100K"):
        open_source("someone/GGT-100K")


def test_not_a_build(tmp_path):
    with pytest.raises(SourceError, match="ggt build"):
        open_source(str(tmp_path))
    (tmp_path / "data" / "rain").mkdir(parents=True)
    (tmp_path / "data" / "rain" / "notes.parquet").write_bytes(b"x")
    with pytest.raises(SourceError, match="no shards named"):
        open_source(str(tmp_path))


def test_report_for_another_dataset_is_refused(eval_set, tmp_path):
    pq.write_table(pa.table({"id": ["elsewhere/a", "elsewhere/b"], "psnr": [1.0, 2.0]}),
                   tmp_path / "per_image.parquet")
    with pytest.raises(OverlayError, match="none of its 2 ids"):
        Viewer.open(eval_set, report=str(tmp_path))
    with pytest.raises(OverlayError, match="per_image.parquet"):
        Viewer.open(eval_set, report=str(tmp_path / "nowhere"))


def test_report_with_a_foreign_summary_is_refused_by_name(eval_set, report, tmp_path):
    """A summary.json that is not ggt score's would give metrics no direction: say so, don't guess."""
    from ggt_dataset.errors import GGTError

    shutil.copy(os.path.join(report, "per_image.parquet"), tmp_path / "per_image.parquet")
    (tmp_path / "summary.json").write_text('{"format": "something-else"}')
    with pytest.raises(GGTError, match=r"summary\.json: not a ggt score summary"):
        Viewer.open(eval_set, report=str(tmp_path))


def test_flat_folder_predictions_match_by_name(eval_set, identity_preds, tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    for root, _, files in os.walk(identity_preds):
        for f in files:
            shutil.copy(os.path.join(root, f), flat / f)
    viewer = Viewer.open(eval_set, predictions=str(flat))
    outputs = viewer.subs[0].outputs
    assert len(outputs.rows) == 18 and not outputs.unmatched


def test_undecodable_prediction_is_422_not_a_traceback(eval_set, identity_preds, tmp_path):
    preds = tmp_path / "preds"
    shutil.copytree(identity_preds, preds)
    victim = _pred_path(str(preds), next(r["id"] for r in rows_of(eval_set) if r["split"] == "test"))
    with open(victim, "r+b") as f:
        f.truncate(40)
    pair_id = os.path.relpath(os.path.splitext(victim)[0], preds).replace(os.sep, "/")
    with serving(Viewer.open(eval_set, predictions=str(preds))) as url:
        status, kind, body = get(f"{url}/api/image?" + urllib.parse.urlencode(
            {"key": f"test:{pair_id}", "role": "pred", "size": "thumb"}))
    assert status == 422 and kind.startswith("application/json") and b"cannot be decoded" in body


def test_thumbnail_of_16_bit_gray_is_not_clipped_white():
    from ggt_dataset.view.thumbs import thumbnail

    ramp = (np.linspace(0, 65535, 64 * 64).reshape(64, 64)).astype(np.uint16)
    buf = io.BytesIO()
    Image.fromarray(ramp).save(buf, "PNG")
    thumb = np.asarray(Image.open(io.BytesIO(thumbnail(buf.getvalue()))).convert("L"), np.float64)
    assert 100 < thumb.mean() < 155                      # a ramp's middle, not 255 everywhere


@pytest.mark.slow
def test_cli_errors_are_one_line(tmp_path, eval_set):
    r = ggt("view", str(tmp_path))
    assert r.returncode == 1 and "ggt view: error:" in r.stderr and "Traceback" not in r.stderr
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        busy = s.getsockname()[1]
        r = ggt("view", eval_set, "--port", str(busy))
    assert r.returncode == 1 and f"127.0.0.1:{busy}" in r.stderr and "--port" in r.stderr


def test_page_past_the_end_is_the_last_page(server):
    url, _ = server
    status, last = q(url, "/api/rows", per=5, page=999)
    assert status == 200 and last["page"] == last["pages"] and 0 < len(last["rows"]) <= 5


@pytest.mark.slow
def test_concurrent_reads_are_safe_and_right(eval_set):
    """The server's threads share one reader per shard: many at once must neither crash nor mix rows."""
    import random
    from concurrent.futures import ThreadPoolExecutor

    viewer = Viewer.open(eval_set)
    truth = {f"{r['split']}:{r['id']}": r for r in rows_of(eval_set)}
    keys = list(truth)
    viewer.index._images.max_bytes = 1                  # no cache: every call reads its row group

    def one(seed: int) -> bool:
        rng = random.Random(seed)
        key, role = rng.choice(keys), rng.choice(("lq", "hq"))
        body, _ = viewer.image(key, role, "full")
        record = viewer.index.records([viewer.index.find(key)])[0]
        return (hashlib.sha256(body).hexdigest() == truth[key][f"{role}_sha256"]
                and f"{record['split']}:{record['id']}" == key)

    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(one, range(2000)))


def test_one_read_for_concurrent_misses():
    from concurrent.futures import ThreadPoolExecutor

    from ggt_dataset.view.index import LRU

    calls = []

    def make():
        calls.append(1)
        import time

        time.sleep(0.05)
        return b"x" * 10

    cache = LRU(1 << 20, len)
    with ThreadPoolExecutor(6) as pool:
        assert list(pool.map(lambda _: cache.get("k", make), range(6))) == [b"x" * 10] * 6
    assert len(calls) == 1


def test_nested_non_finite_numbers_become_null():
    import json

    from ggt_dataset.view.viewer import _clean

    record = {"qc_scores": [{"name": "a", "score": float("nan")}, {"name": "b", "score": 1.5}],
              "x": float("inf"), "id": "rain/1"}
    assert json.loads(json.dumps(_clean(record), allow_nan=False)) == {
        "qc_scores": [{"name": "a", "score": None}, {"name": "b", "score": 1.5}], "x": None, "id": "rain/1"}


def test_labels_with_commas_filter_exactly(odd_build):
    viewer = Viewer.open(odd_build)
    one = viewer.rows({"license": "CC BY-SA 4.0, attribution Jane"})
    assert [r["id"] for r in one["rows"]] == ["rain/a"]
    two = viewer.rows({"license": ["CC BY-SA 4.0, attribution Jane", "CC0-1.0"]})
    assert sorted(r["id"] for r in two["rows"]) == ["rain/a", "rain/b"]
    # A comma list works for labels without commas; one with a comma must be given whole (or repeated).
    assert viewer.rows({"license": ["CC0-1.0", "CC BY 4.0, attribution Joe"]})["total"] == 2
    with pytest.raises(QueryError, match="'CC BY 4.0'"):
        viewer.rows({"license": "CC0-1.0,CC BY 4.0, attribution Joe"})
    by_licence = [r["values"]["license"] for r in viewer.rows({"sort": "license"})["rows"]]
    assert by_licence == sorted(by_licence)                 # labels sort alphabetically


def test_version_changes_with_what_is_shown(eval_set, identity_preds, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(identity_preds, other)
    a = Viewer.open(eval_set, predictions=identity_preds)
    b = Viewer.open(eval_set, predictions=str(other))
    assert a.version != b.version and a.info()["version"] == a.version
    assert Viewer.open(eval_set, predictions=identity_preds).version == a.version


def test_report_outputs_found_relative_to_the_report(eval_set, identity_preds, tmp_path, monkeypatch):
    """A report made in another directory names its outputs relative to it; the viewer still finds them."""
    from ggt_dataset.eval import score

    work = tmp_path / "work"
    shutil.copytree(identity_preds, work / "preds")
    monkeypatch.chdir(work)
    score("preds", eval_set, out="report", metrics=["psnr"])
    monkeypatch.chdir(tmp_path)
    viewer = Viewer.open(eval_set, report=str(work / "report"))
    assert viewer.subs[0].outputs is not None and len(viewer.subs[0].outputs.rows) == 18


def test_sorting_from_the_full_order_equals_sorting_the_filtered_rows(eval_set):
    """Filtered queries take their rows from one cached full sort; ties and missing values included."""
    from ggt_dataset.view.index import Column
    from ggt_dataset.view.query import Query, Selections, _mask, _order

    index = build_index(open_source(eval_set))
    rng = np.random.default_rng(0)
    values = rng.integers(0, 4, index.num_rows).astype(np.float32)      # many ties
    values[rng.random(index.num_rows) < 0.2] = np.nan
    index.add_column(Column("score", values, "metric", better="lower"))
    selections = Selections(index)
    for sort in ("score", "-score", "category", "-lq_width"):
        for labels in ((), (("split", ("test",)),), (("category", ("haze", "rain")),)):
            query = Query(labels=labels, sort=sort)
            direct = _order(np.flatnonzero(_mask(query, index)).astype(np.int32), sort, index)
            assert selections.rows(query).tolist() == direct.tolist(), (sort, labels)


def test_parquet_outputs_without_bytes_leak_no_path(eval_set, tmp_path, capfd):
    """A Parquet --predictions row with no image bytes: the page is told which pair, the log which file."""
    test_ids = [r["id"] for r in rows_of(eval_set) if r["split"] == "test"]
    kind = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    preds = tmp_path / "outputs.parquet"
    pq.write_table(pa.table({"id": test_ids, "prediction": pa.array(
        [{"bytes": None, "path": f"{i}.png"} for i in test_ids], kind)}), preds)
    key = f"test:{test_ids[0]}"
    with serving(Viewer.open(eval_set, predictions=str(preds))) as url:
        answers = [get(f"{url}/api/pair?" + urllib.parse.urlencode({"key": key}))]
        answers += [get(f"{url}/api/image?" + urllib.parse.urlencode({"key": key, "role": "pred", "size": size}))
                    for size in ("full", "thumb")]
    assert answers[0][0] == 200 and json.loads(answers[0][2])["sizes"] == {"pred": None}
    for status, _, body in answers[1:]:
        assert status == 422 and key.encode() in body and b"server's log" in body
    for _, _, body in answers:
        assert str(tmp_path).encode() not in body and b"outputs.parquet" not in body
    log = capfd.readouterr().err
    assert f"{preds} (id {test_ids[0]}): no image bytes" in log


def test_public_messages_name_folders_not_paths(eval_set, identity_preds, report):
    """What an HTTP error says: each folder the server reads by its last part; the home folder as ~."""
    viewer = Viewer.open(eval_set, predictions=identity_preds, report=report)
    for folder in (eval_set, identity_preds, report):
        inside = os.path.join(os.path.realpath(folder), "rain", "x.png")
        assert viewer.public(f"{inside}: gone") == f"{os.path.basename(folder)}/rain/x.png: gone"
    home = os.path.expanduser("~")
    assert viewer.public(f"{home}/elsewhere/y.png") == "~/elsewhere/y.png"


@pytest.mark.slow
def test_all_interfaces_warns_and_prints_urls_that_answer(eval_set):
    """--host 0.0.0.0: a warning that the data is reachable from the network, and every URL printed works."""
    from ggt_dataset.view.app import machine_addresses

    with ggt_view(eval_set, "--host", "0.0.0.0", "--port", "0", "--no-thumb-cache") as said:
        urls = re.findall(r"^  (?:open|or) +(http://\S+)", said, re.MULTILINE)
        assert "warning: --host 0.0.0.0 is reachable from the network" in said, said
        assert urls[0].startswith("http://127.0.0.1:")
        assert [u.split("/")[2].rsplit(":", 1)[0] for u in urls[1:]] == machine_addresses("0.0.0.0")
        for u in urls:
            status, info = get_json(f"{u}api/info")
            assert status == 200 and info["rows"] == len(rows_of(eval_set)), u
    with ggt_view(eval_set, "--port", "0", "--no-thumb-cache") as said:
        assert "warning" not in said and len(re.findall(r"http://", said)) == 1


def test_a_report_opens_on_its_split_worst_first(server, eval_set, tmp_path):
    """The first view with a report: the scored split, worst first (ascending for higher-is-better PSNR,
    descending for lower-is-better metrics); without a report, everything in dataset order."""
    url, _ = server
    status, info = get_json(f"{url}/api/info")
    assert status == 200 and info["start"] == {"split": ["test"], "sort": "psnr"}
    train = [r["id"] for r in rows_of(eval_set) if r["split"] == "train"]
    pq.write_table(pa.table({"id": train, "lpips": [0.5] * len(train)}), tmp_path / "per_image.parquet")
    (tmp_path / "summary.json").write_text(json.dumps({"format": "ggt-score", "metrics": {"lpips": {"better": "lower"}},
                                                       "fingerprint": {"test_set": {"split": "train"}}}))
    assert Viewer.open(eval_set, report=str(tmp_path)).info()["start"] == {"split": ["train"], "sort": "-lpips"}
    assert Viewer.open(eval_set).info()["start"] == {}


@pytest.mark.parametrize("query, param", [("where=nonsense", "where"), ("where=id>3", "where"),
                                          ("category=rainy", "category"), ("sort=-nothing", "sort"),
                                          ("page=two", "page")])
def test_a_bad_query_names_its_parameter(server, query, param):
    """The page shows the message next to that parameter's input."""
    url, _ = server
    status, body = get_json(f"{url}/api/rows?{query}")
    assert status == 400 and body["param"] == param and body["error"]


def test_a_metric_of_unknown_direction_does_not_order_the_grid(eval_set, tmp_path):
    """AFINE-NR's direction is unknown (HarnessIR): the viewer must not sort it as lower-is-better,
    which it did for any direction other than 'higher'."""
    test = [r["id"] for r in rows_of(eval_set) if r["split"] == "test"]
    pq.write_table(pa.table({"id": test, "afine_nr": [0.5] * len(test)}), tmp_path / "per_image.parquet")
    (tmp_path / "summary.json").write_text(json.dumps({"format": "ggt-score",
                                                       "metrics": {"afine_nr": {"better": "unknown"}}}))
    viewer = Viewer.open(eval_set, report=str(tmp_path))
    assert viewer.info()["start"] == {"split": ["test"]}
    assert viewer.index.columns["afine_nr"].better is None
