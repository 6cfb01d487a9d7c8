"""The Hub path end to end, over HTTP: `ggt publish`, `load_dataset`, `ggt view` and `ggt score`
with the real clients, against tests/hub_server.py (a local Hub stand-in on 127.0.0.1).

The clients read HF_ENDPOINT and HF_HUB_OFFLINE when they are imported, and this session
runs offline (conftest), so each client runs in a subprocess with the server's environment.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from hub_server import HubServer

from ggt_dataset import manifest
from ggt_dataset.contents import CARD_FILE
from ggt_dataset.publish import plan
from ggt_dataset.schema import CATEGORIES

REPO = "org/ggt-100k"

# Rows of every split as comparable JSON: image columns become the sha256 of their bytes
# (the path differs between a folder and the Hub: a local file vs. an hf:// URL).
DIGEST = r"""
import hashlib, json, os, sys
import datasets
import ggt_dataset  # registers the fix for a stream closed early (README)

def rows(ds):
    for col in ("lq", "hq"):
        ds = ds.cast_column(col, datasets.Image(decode=False))
    return [{k: hashlib.sha256(v["bytes"]).hexdigest() if k in ("lq", "hq") else v for k, v in r.items()} for r in ds]

def digest(target, configs, kwargs, stream):
    out = {}
    for name in configs:
        dd = datasets.load_dataset(target, name, **kwargs)
        out[name] = {split: rows(ds) for split, ds in sorted(dd.items())}
        if stream and name == configs[0]:   # streaming reads the files itself, over HTTP range requests
            ds = datasets.load_dataset(target, name, split="train", streaming=True, **kwargs)
            out[name]["train (streaming)"] = rows(ds)
    return out

print(json.dumps([digest(*job) for job in json.loads(sys.argv[1])], default=str), flush=True)
os._exit(0)     # as `ggt` does: skip the teardown, ~1 s of CPU with torch loaded (not checked here)
"""


@pytest.fixture(scope="module")
def hub():
    server = HubServer(page_size=5).start()   # a small page: listing a build follows the pagination
    yield server
    server.stop()


def client(hub: HubServer, hf_home, *args, extra_env=None, timeout=240) -> subprocess.CompletedProcess:
    env = {**os.environ, **hub.env(str(hf_home)), **(extra_env or {})}
    return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=timeout,
                          check=False, cwd=os.path.dirname(__file__))


def ggt(hub: HubServer, hf_home, *args, **kw) -> subprocess.CompletedProcess:
    return client(hub, hf_home, "-m", "ggt_dataset.cli.main", *args, **kw)


def digests(hub: HubServer, hf_home, *jobs: tuple[str, list[str], dict, bool]) -> list[dict]:
    """Each job's (target, configs, load_dataset kwargs, stream too) rows, read by one client
    process: a process costs ~3 s of imports, and revisions and folders are cached apart."""
    r = client(hub, hf_home, "-c", DIGEST, json.dumps(jobs))
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout)


def assert_no_gaps(hub: HubServer) -> None:
    assert hub.gaps == [], f"the clients called routes tests/hub_server.py lacks: {hub.gaps}"


@pytest.fixture(scope="module")
def published(hub, built, tmp_path_factory):
    """The sample build, published with `ggt publish` (the real HfApi, over HTTP)."""
    r = ggt(hub, tmp_path_factory.mktemp("hf"), "publish", built, "--repo-id", REPO)
    assert r.returncode == 0, r.stderr
    assert f"published {built} to datasets/{REPO}" in r.stdout
    return REPO


@pytest.fixture(scope="module")
def read_back(hub, built, published, tmp_path_factory) -> tuple[dict, dict]:
    """What load_dataset gives (and a stream) from the build folder's default config, and from
    every config of the published repo: one client process (each costs ~3 s of imports)."""
    folder, from_hub = digests(hub, tmp_path_factory.mktemp("hf"), (built, ["default"], {}, True),
                               (published, ["default", *CATEGORIES], {}, True))
    return folder["default"], from_hub


@pytest.fixture(scope="module")
def folder_rows(read_back) -> dict:
    return read_back[0]


def category_rows(rows: dict, category: str) -> dict:
    """A category config's rows as the default config's rows of that category, in order (no stream)."""
    return {split: [r for r in split_rows if r["category"] == category] for split, split_rows in rows.items()
            if "streaming" not in split}


@pytest.mark.slow
def test_publish_sends_exactly_the_build_and_load_dataset_reads_it_back(hub, built, published, read_back):
    """Every config, and streaming, gives the same rows and image bytes from the Hub as from the folder."""
    sent, checked = hub.files(published), plan(built, published)
    assert set(sent) == set(dict(checked.files)) | {".gitattributes"}
    for path, _ in checked.files:
        local = checked.card if path == CARD_FILE else Path(built, path).read_bytes()
        assert sent[path] == local, path
    assert sent[CARD_FILE] != Path(built, CARD_FILE).read_bytes()   # rendered for the repo
    folder_rows, from_hub = read_back
    assert from_hub["default"] == folder_rows
    for category in CATEGORIES:   # a category's config: the default's rows of that category, in order
        assert from_hub[category] == category_rows(folder_rows, category)
        assert all(from_hub[category].values())
    assert sum(len(folder_rows[s]) for s in ("train", "test")) == manifest.read(built)["totals"]["pairs"]
    assert any("cursor=" in p for p in hub.calls("GET", f"/api/datasets/{published}/tree/"))   # paginated
    assert_no_gaps(hub)


def _view(hub: HubServer, hf_home, *args):
    """Start `ggt view` on a free port; return (process, base URL) once it listens."""
    env = {**os.environ, **hub.env(str(hf_home))}
    proc = subprocess.Popen([sys.executable, "-m", "ggt_dataset.cli.main", "view", *args, "--port", "0",
                             "--no-thumb-cache"], env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            text=True)
    deadline, seen = time.monotonic() + 90, ""
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        seen += line
        if m := re.search(r"open (http://127\.0\.0\.1:\d+/)", line):
            return proc, m.group(1).rstrip("/")
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError(f"ggt view did not start: {seen}")


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=60) as r:
        return json.load(r)


def _local_images(built: str) -> dict[str, bytes]:
    import pyarrow.parquet as pq

    out = {}
    for shard in manifest.read(built)["shards"]:
        t = pq.read_table(os.path.join(built, shard["path"]), columns=["id", "hq"])
        for pair_id, hq in zip(t.column("id").to_pylist(), t.column("hq").to_pylist()):
            out[f"{shard['split']}:{pair_id}"] = hq["bytes"]
    return out


@pytest.mark.slow
def test_view_reads_row_groups_over_http_range_requests(hub, built, published, tmp_path):
    before = len(hub.requests)
    proc, url = _view(hub, tmp_path, published)
    try:
        info = _get_json(f"{url}/api/info")
        assert info["rows"] == manifest.read(built)["totals"]["pairs"]
        rows = _get_json(f"{url}/api/rows?per=200")["rows"]
        local = _local_images(built)
        assert {r["key"] for r in rows} == set(local)
        key = rows[0]["key"]
        with urllib.request.urlopen(f"{url}/api/image?" + urllib.parse.urlencode(
                {"key": key, "role": "hq", "size": "full"}), timeout=60) as r:
            assert r.read() == local[key]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    shard_reads = [(m, p, s) for m, p, s in hub.requests[before:] if p.startswith("/cdn/")]
    assert shard_reads and all(s == 206 for m, p, s in shard_reads), shard_reads   # ranges, never whole files
    assert_no_gaps(hub)


def _score(hub, hf_home, preds, reference, out, *extra) -> dict:
    r = ggt(hub, hf_home, "score", preds, "--reference", reference, "--out", str(out), "--metrics", "psnr",
            "--device", "cpu", "-q", "--cache-dir", str(out) + "-cache", *extra)
    assert r.returncode == 0, r.stderr[-3000:]
    with open(os.path.join(out, "summary.json")) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def identity(built, tmp_path_factory):
    from ggt_dataset.eval.baselines import run_baseline

    out = str(tmp_path_factory.mktemp("identity") / "preds")
    run_baseline("identity", built, out)
    return out


def _per_image(report) -> list[dict]:
    import pyarrow.parquet as pq

    return pq.read_table(os.path.join(report, "per_image.parquet")).sort_by("id").to_pylist()


@pytest.mark.slow
def test_score_against_the_hub_equals_scoring_against_the_folder(hub, built, published, identity, tmp_path):
    from ggt_dataset.eval import api

    from_hub = _score(hub, tmp_path / "hf", identity, published, tmp_path / "hub")
    local = api.score(identity, built, out=str(tmp_path / "local"), metrics=["psnr"], device="cpu",
                      cache_dir=str(tmp_path / "cache"))
    assert _per_image(tmp_path / "hub") == _per_image(tmp_path / "local")
    assert from_hub["overall"] == local["overall"]
    assert from_hub["fingerprint"]["test_set"]["sha256"] == local["fingerprint"]["test_set"]["sha256"]
    assert from_hub["fingerprint"]["test_set"]["source"] == published
    assert_no_gaps(hub)


@pytest.fixture(scope="module")
def interrupted(hub, built, tmp_path_factory):
    """`ggt publish` of a private copy of the build, with the Hub gone after 3 shards, then back."""
    import shutil

    out = str(tmp_path_factory.mktemp("interrupted") / "ggt-100k")
    shutil.copytree(built, out)
    repo, card = "org/interrupted", os.path.join(out, CARD_FILE)
    hf_home = tmp_path_factory.mktemp("hf")
    card_before = (Path(card).read_bytes(), os.stat(card).st_mtime_ns)
    hub.fail_uploads_after(3)
    r = ggt(hub, hf_home, "publish", out, "--repo-id", repo)
    stored = set(hub.repos[repo].lfs)
    files = set(hub.files(repo))
    hub.start()                                   # the Hub is back (on another port: same repos)
    return {"out": out, "repo": repo, "hf_home": hf_home, "run": r, "stored": stored, "files": files,
            "card_before": card_before, "card_after": (Path(card).read_bytes(), os.stat(card).st_mtime_ns)}


@pytest.mark.slow
def test_interrupted_publish_says_to_run_again(hub, interrupted):
    """Without hf_xet the client raises RuntimeError('Error while uploading ...') from the network
    error; it was 'unexpected RuntimeError' with no word of re-running."""
    r = interrupted["run"]
    assert r.returncode == 1 and "Traceback" not in r.stderr and "unexpected" not in r.stderr, r.stderr
    # Before the error, the client's own retry warnings. The cause is the refused connection, or
    # huggingface_hub's "client has been closed" (a retrying thread closes the shared client).
    error = r.stderr[r.stderr.index("ggt publish: error: "):]
    assert "datasets/org/interrupted" in error and "run the same command again" in error, error


@pytest.mark.slow
def test_interrupted_publish_resumes_without_sending_twice(hub, interrupted, tmp_path):
    """The re-run sends only the shards the Hub lacks; a third run sends nothing and makes no commit;
    the local card is never touched."""
    out, repo, hf_home = interrupted["out"], interrupted["repo"], interrupted["hf_home"]
    shards = {s["sha256"] for s in manifest.read(out)["shards"]}
    assert interrupted["run"].returncode != 0
    assert 3 <= len(interrupted["stored"]) < len(shards) and interrupted["files"] == {".gitattributes"}
    assert interrupted["card_after"] == interrupted["card_before"]

    since = len(hub.requests)
    r = ggt(hub, hf_home, "publish", out, "--repo-id", repo)
    assert r.returncode == 0, r.stderr
    sent = {p.rsplit("/", 1)[1] for p in hub.calls("PUT", "/lfs/", since)}
    assert sent == shards - interrupted["stored"]     # nothing the Hub already had
    assert set(hub.files(repo)) == set(dict(plan(out, repo).files)) | {".gitattributes"}

    since, head = len(hub.requests), hub.repos[repo].refs["main"]
    r = ggt(hub, hf_home, "publish", out, "--repo-id", repo)
    assert r.returncode == 0, r.stderr
    assert hub.calls("PUT", "/lfs/", since) == [] and hub.calls("POST", f"/api/datasets/{repo}/commit", since) == []
    assert hub.repos[repo].refs["main"] == head       # an unchanged build: no new commit
    card = os.path.join(out, CARD_FILE)
    assert (Path(card).read_bytes(), os.stat(card).st_mtime_ns) == interrupted["card_before"]
    assert_no_gaps(hub)


@pytest.fixture(scope="module")
def pinned(hub, built, tmp_path_factory):
    """A repo whose tag v1 (commit v1) is the sample build, and whose main has moved on to a
    smaller build published over it (same shard names, another card)."""
    from ggt_dataset.build import build
    from ggt_dataset.sample import write_sample

    repo, base = "org/pinned", tmp_path_factory.mktemp("pinned")
    r = ggt(hub, base / "hf", "publish", built, "--repo-id", repo)
    assert r.returncode == 0, r.stderr
    v1 = hub.repos[repo].refs["main"]
    hub.tag(repo, "main", "v1")
    write_sample(str(base / "raw"), train_per_category=1, test_per_category=1, size=48)
    build(str(base / "raw"), str(base / "v2"), progress=False)
    r = ggt(hub, base / "hf", "publish", str(base / "v2"), "--repo-id", repo)
    assert r.returncode == 0, r.stderr
    assert hub.repos[repo].refs["main"] != v1
    return repo, v1, str(base / "v2")


def _pairs(build_dir: str) -> int:
    return manifest.read(build_dir)["totals"]["pairs"]


@pytest.mark.slow
def test_a_revision_pins_what_is_loaded(hub, built, pinned, folder_rows, tmp_path):
    repo, _, v2 = pinned
    at_v1, at_main, local_v2 = digests(hub, tmp_path, (repo, ["default"], {"revision": "v1"}, True),
                                       (repo, ["rain"], {}, False), (v2, ["rain"], {}, False))
    assert at_v1["default"] == folder_rows
    assert at_main["rain"] == local_v2["rain"] != category_rows(folder_rows, "rain")   # main moved on from v1
    assert_no_gaps(hub)


@pytest.mark.slow
def test_a_revision_pins_what_is_viewed(hub, built, pinned, tmp_path):
    repo, v1, v2 = pinned
    for args, rows in (((repo, "--revision", v1), _pairs(built)), ((repo,), _pairs(v2))):
        proc, url = _view(hub, tmp_path, *args)
        try:
            assert _get_json(f"{url}/api/info")["rows"] == rows, args
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    assert _pairs(built) != _pairs(v2)
    assert_no_gaps(hub)


@pytest.mark.slow
def test_offline_load_still_reads_a_repo_loaded_before(hub, published, tmp_path):
    """load() asks the Hub first only when online: offline, the cache answers as before."""
    r = ggt(hub, tmp_path / "hf", "info", published, "--config", "rain")
    assert r.returncode == 0, r.stderr
    offline = ggt(hub, tmp_path / "hf", "info", published, "--config", "rain", extra_env={"HF_HUB_OFFLINE": "1"})
    assert offline.returncode == 0 and offline.stdout == r.stdout, offline.stderr


@pytest.mark.slow
def test_a_revision_pins_what_is_scored_and_the_report_records_it(hub, built, pinned, identity, tmp_path):
    repo, v1, _ = pinned
    summary = _score(hub, tmp_path / "hf", identity, repo, tmp_path / "report", "--revision", "v1")
    assert summary["fingerprint"]["test_set"]["revision"] == v1
    from ggt_dataset.eval.references import open_references

    v1_refs = open_references(built)     # v1 is the sample build; main has moved on to another one
    assert summary["fingerprint"]["test_set"]["sha256"] == v1_refs.fingerprint
    assert_no_gaps(hub)


def test_a_local_reference_has_no_revision(built, identity, tmp_path, capsys):
    from ggt_dataset.cli.main import main

    assert main(["score", identity, "--reference", built, "--revision", "v1", "--metrics", "psnr",
                 "--out", str(tmp_path / "r"), "-q"]) == 1
    assert "a local dataset has no revision" in capsys.readouterr().err and not (tmp_path / "r").exists()


UNREACHABLE_COMMANDS = {
    "publish": lambda built, ident, out: ["-m", "ggt_dataset.cli.main", "publish", built, "--repo-id", "org/gone"],
    "load": lambda built, ident, out: ["-m", "ggt_dataset.cli.main", "info", "org/gone"],
    "view": lambda built, ident, out: ["-m", "ggt_dataset.cli.main", "view", "org/gone", "--port", "0",
                                       "--no-thumb-cache"],
    "score": lambda built, ident, out: ["-m", "ggt_dataset.cli.main", "score", ident, "--reference", "org/gone",
                                        "--out", out, "--metrics", "psnr", "--device", "cpu", "-q"],
}


@pytest.mark.parametrize("command, offline", [
    ("publish", False), ("publish", True),
    ("load", False), ("load", True), ("view", False), ("view", True),
    pytest.param("score", False, marks=pytest.mark.slow),   # torch, ~10 s; offline it is load's path
])
@pytest.mark.slow
def test_no_hub_is_one_line_naming_the_endpoint_and_what_to_do(hub, built, identity, tmp_path, command, offline,
                                                               refused_port):
    endpoint = f"http://127.0.0.1:{refused_port}"
    args = UNREACHABLE_COMMANDS[command](built, identity, str(tmp_path / "report"))
    r = client(hub, tmp_path, *args, extra_env={"HF_ENDPOINT": endpoint, "HF_HUB_OFFLINE": "1" if offline else "0"},
               timeout=120)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1 and len(lines) == 1, r.stderr
    assert endpoint in lines[0] and "run the same command again" in lines[0], lines[0]
    assert ("HF_HUB_OFFLINE" in lines[0]) == offline, lines[0]


PR_CLIENT = r"""
import sys
from huggingface_hub import HfApi, hf_hub_download
api, repo = HfApi(), sys.argv[1]
api.create_repo(repo, repo_type="dataset")
pr = api.upload_file(path_or_fileobj=b"v2", path_in_repo="notes/a.txt", repo_id=repo, repo_type="dataset",
                     create_pr=True, commit_message="a PR")
assert pr.pr_num == 1 and pr.pr_revision == "refs/pr/1", pr
assert open(hf_hub_download(repo, "notes/a.txt", repo_type="dataset", revision="refs/pr/1"), "rb").read() == b"v2"
assert not api.file_exists(repo, "notes/a.txt", repo_type="dataset")
api.merge_pull_request(repo, 1, repo_type="dataset")
assert [f.path for f in api.list_repo_tree(repo, "notes", repo_type="dataset")] == ["notes/a.txt"]
info = api.get_paths_info(repo, ["notes/a.txt", "notes", "missing"], repo_type="dataset", expand=True)
assert [(type(i).__name__, i.path) for i in info] == [("RepoFile", "notes/a.txt"), ("RepoFolder", "notes")], info
assert info[0].size == 2 and info[0].lfs is None and info[0].last_commit.title == "Merge pull request #1"
api.create_tag(repo, tag="v1", repo_type="dataset")
assert [t.name for t in api.list_repo_refs(repo, repo_type="dataset").tags] == ["v1"]
print("ok")
"""


@pytest.mark.slow
def test_pull_requests_merge_and_tags_with_the_real_client(tmp_path):
    with HubServer() as server:
        r = client(server, tmp_path, "-c", PR_CLIENT, "org/prs", timeout=120)
        assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-3000:]
        assert server.gaps == []


def test_unknown_routes_answer_501_and_are_logged(tmp_path, capfd):
    with HubServer() as server:
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(f"{server.endpoint}/api/whoami-v2", timeout=10)
        assert e.value.code == 501
        assert server.gaps == ["GET /api/whoami-v2: not implemented by tests/hub_server.py"]
        assert "hub_server: 501 GET /api/whoami-v2" in capfd.readouterr().err
        with pytest.raises(urllib.error.HTTPError) as e:    # a known route, a missing repo: the Hub's 404
            urllib.request.urlopen(f"{server.endpoint}/api/datasets/org/none", timeout=10)
        assert e.value.code == 404 and e.value.headers["X-Error-Code"] == "RepoNotFound"


@pytest.mark.slow
def test_with_hf_xet_the_client_uploads_through_xet_which_the_stand_in_lacks(built, tmp_path):
    """Why the tests set HF_HUB_DISABLE_XET=1: with hf_xet importable, huggingface_hub sends every
    file the preupload call marks `lfs` through Xet, asking for a write token first, and never
    falls back to the LFS batch API. If this starts passing, the stand-in's docstring is stale."""
    pytest.importorskip("hf_xet")
    with HubServer() as server:
        r = ggt(server, tmp_path, "publish", built, "--repo-id", "org/xet", extra_env={"HF_HUB_DISABLE_XET": "0"})
        assert r.returncode == 1 and "Traceback" not in r.stderr
        assert server.gaps == ["GET /api/datasets/org/xet/xet-write-token/main: not implemented by tests/hub_server.py"]
        assert server.calls("POST", "/datasets/org/xet.git/info/lfs/objects/batch") == []
