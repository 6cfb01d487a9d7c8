import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from huggingface_hub import HfApi

from ggt_dataset import publish as pub
from ggt_dataset.errors import PublishError
from ggt_dataset.verify import verify


class RecordingApi(HfApi):
    """A real HfApi whose requests to the Hub are recorded instead of sent: upload_folder's
    own file selection (and its in-place ignore list) and upload_file run as for a user, and
    each commit's operations are what would be committed."""

    def __init__(self):
        super().__init__(token="hf_test")
        self.calls = []

    def create_repo(self, *args, **kwargs):
        self.calls.append(("create_repo", args, kwargs))

    def create_commit(self, **kwargs):
        self.calls.append(("create_commit", (), kwargs))
        return type("CommitInfo", (), {"commit_url": f"https://hub/commit/{len(self.calls)}"})()

    def _validate_yaml(self, content, **kwargs):  # a request to the Hub's YAML validator
        self.calls.append(("validate_yaml", (), {}))

    def commits(self):
        return [kw for name, _, kw in self.calls if name == "create_commit"]


@pytest.fixture(autouse=True)
def single_commit_upload(monkeypatch):
    # Without hf-xet, upload_folder makes one create_commit of the operations it selected
    # (the same selection the xet pipeline uploads), which RecordingApi can record.
    monkeypatch.setattr("huggingface_hub.hf_api.is_xet_available", lambda: False)


def dataset_paths(out):
    shards = json.loads(Path(os.path.join(out, "ggt_manifest.json")).read_text())["shards"]
    return {"README.md", "ggt_manifest.json", *(s["path"] for s in shards)}


def add_strays(out, tmp_path):
    """What a build folder may pick up: dot files, key files, notes, symlinks to elsewhere."""
    for rel in (".env", ".secrets/token", "data/rain/.env", "secrets.txt", "server.pem", "notes.txt"):
        os.makedirs(os.path.dirname(os.path.join(out, rel)) or out, exist_ok=True)
        Path(os.path.join(out, rel)).write_text("HF_TOKEN=hf_secret\n")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "private.txt").write_text("private")
    os.symlink(tmp_path / "elsewhere" / "private.txt", os.path.join(out, "linked.txt"))
    os.symlink(tmp_path / "elsewhere", os.path.join(out, "linked_dir"))
    return {".env", ".secrets/token", "data/rain/.env", "secrets.txt", "server.pem", "notes.txt",
            "linked.txt", "linked_dir/", ".ggt-build/"}


def test_dry_run_plan_lists_publishable_files_only(built_copy):
    result = pub.plan(built_copy, "me/GGT-100K")
    paths = [p for p, _ in result.files]
    assert "README.md" in paths and "ggt_manifest.json" in paths
    assert sum(p.startswith("data/") for p in paths) == 12
    assert not any(p.startswith(".ggt-build") for p in paths)
    on_disk = sum(os.path.getsize(os.path.join(built_copy, p)) for p in paths if p != "README.md")
    assert result.total_bytes == on_disk + len(result.card)  # the card as rendered for the repo


@pytest.mark.parametrize("repo_id,match", [("no-slash", "ORG/NAME"), ("me/bad name", "not a valid repo id"),
                                           ("me/--x", "not a valid repo id")])
def test_bad_repo_ids(built_copy, repo_id, match):
    with pytest.raises(PublishError, match=match):
        pub.plan(built_copy, repo_id)


def test_hub_limits_and_faults_are_refused(built_copy, monkeypatch):
    monkeypatch.setattr(pub, "MAX_FILES_PER_FOLDER", 1)
    with pytest.raises(PublishError, match=r"data/rain/: 2 files, over the Hub's 1 per folder"):
        pub.plan(built_copy, "me/x")
    monkeypatch.setattr(pub, "MAX_FILES_PER_FOLDER", 10_000)
    monkeypatch.setattr(pub, "MAX_FILE_BYTES", 1000)
    with pytest.raises(PublishError, match="over the Hub's 50 GB file limit"):
        pub.plan(built_copy, "me/x")
    monkeypatch.setattr(pub, "MAX_FILE_BYTES", 50 * 10**9)
    Path(os.path.join(built_copy, "data/rain/extra.parquet")).write_bytes(b"x")
    with pytest.raises(PublishError, match="not in the manifest"):
        pub.plan(built_copy, "me/x")


def test_publish_sends_exactly_the_dataset_files_and_the_dry_run_says_so(built_copy, tmp_path):
    strays = add_strays(built_copy, tmp_path)
    local_card = Path(os.path.join(built_copy, "README.md")).read_bytes()
    result = pub.plan(built_copy, "me/GGT-100K")
    assert {p for p, _ in result.files} == dataset_paths(built_copy)
    left = dict(result.left_out)
    assert set(left) == strays
    for secret in (".env", ".secrets/token", "data/rain/.env", "secrets.txt", "server.pem"):
        assert "LOOKS LIKE A SECRET" in left[secret]
    assert "a symlink" in left["linked.txt"] and "a symlink" in left["linked_dir/"]

    api = RecordingApi()
    url = pub.publish(built_copy, "me/GGT-100K", private=True, api=api)
    (name1, args1, kw1), *_ = api.calls
    assert name1 == "create_repo" and args1 == ("me/GGT-100K",)
    assert kw1 == {"repo_type": "dataset", "private": True, "exist_ok": True}
    data_commit, card_commit = api.commits()
    sent = {op.path_in_repo for op in data_commit["operations"]}
    assert sent == dataset_paths(built_copy) - {"README.md"}
    assert "18 pairs" in data_commit["commit_message"]
    (card_op,) = card_commit["operations"]
    assert card_op.path_in_repo == "README.md" and url == "https://hub/commit/3"
    # the card is the last commit, made from memory: it names the repo, the local one is untouched
    assert 'load_dataset("me/GGT-100K")' in card_op.path_or_fileobj.decode()
    assert Path(os.path.join(built_copy, "README.md")).read_bytes() == local_card
    # ... and the uploaded card still verifies against the shards
    Path(os.path.join(built_copy, "README.md")).write_bytes(card_op.path_or_fileobj)
    assert verify(built_copy).ok


def test_publish_leaves_module_state_alone_and_repeats_the_same_upload(built_copy):
    # upload_folder extends the ignore list it is given in place; a shared module-level list grew
    # with every publish().
    before = {k: list(v) for k, v in vars(pub).items() if isinstance(v, list)}
    first, second = RecordingApi(), RecordingApi()
    pub.publish(built_copy, "me/x", api=first)
    pub.publish(built_copy, "me/x", api=second)
    assert {k: list(v) for k, v in vars(pub).items() if isinstance(v, list)} == before
    paths = [[op.path_in_repo for c in api.commits() for op in c["operations"]] for api in (first, second)]
    assert paths[0] == paths[1]


def test_a_symlinked_shard_is_refused_by_name(built_copy, tmp_path):
    shard = min(dataset_paths(built_copy) - {"README.md", "ggt_manifest.json"})
    moved = tmp_path / "moved.parquet"
    os.replace(os.path.join(built_copy, shard), moved)
    os.symlink(moved, os.path.join(built_copy, shard))
    api = RecordingApi()
    with pytest.raises(PublishError, match=f"{shard}: a symlink"):
        pub.publish(built_copy, "me/x", api=api)
    assert api.calls == []


def test_card_linked_files_are_sent_and_secrets_never(built_copy):
    meta_path = os.path.join(built_copy, "ggt_manifest.json")
    meta = json.loads(Path(meta_path).read_text())
    meta["release"]["description"] += ' ![teaser](assets/teaser%5B1%5D.png) <img src="./.env"> [x](https://a/b.png)'
    Path(meta_path).write_text(json.dumps(meta))
    os.makedirs(os.path.join(built_copy, "assets"))
    Path(os.path.join(built_copy, "assets/teaser[1].png")).write_bytes(b"png")
    Path(os.path.join(built_copy, ".env")).write_text("HF_TOKEN=hf_secret")
    api = RecordingApi()
    pub.publish(built_copy, "me/x", api=api)
    sent = {op.path_in_repo for c in api.commits() for op in c["operations"]}
    assert sent == dataset_paths(built_copy) | {"assets/teaser[1].png"}


@pytest.mark.slow
def test_dry_run_cli_lists_every_file_and_what_it_leaves_out(built_copy, tmp_path, ggt_in_process):
    strays = add_strays(built_copy, tmp_path)
    run = ggt_in_process("publish", built_copy, "--repo-id", "me/x", "--dry-run")
    assert run.returncode == 0, run.stderr
    listed = [line.split()[0] for line in run.stdout.splitlines() if line.startswith("  ")]
    assert sorted(listed) == sorted(dataset_paths(built_copy) | strays)
    assert f"left out, not uploaded ({len(strays)}):" in run.stdout
    assert "  .env  LOOKS LIKE A SECRET" in run.stdout


@pytest.mark.parametrize("env,match", [
    ({"HF_HUB_OFFLINE": "1"}, "HF_HUB_OFFLINE is set"),
    ({"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": "http://127.0.0.1:9"},
     "cannot reach the Hub at http://127.0.0.1:9 (ConnectError")])
@pytest.mark.slow
def test_publish_without_network_is_a_clear_error_and_changes_nothing(built_copy, env, match):
    before = {p: Path(os.path.join(built_copy, p)).read_bytes() for p in dataset_paths(built_copy)}
    run = subprocess.run([sys.executable, "-m", "ggt_dataset.cli.main", "publish", built_copy,
                          "--repo-id", "me/x", "--token", "hf_test"], capture_output=True, text=True,
                         check=False, env={**os.environ, **env})
    assert run.returncode == 1 and match in run.stderr, run.stderr
    assert "unexpected" not in run.stderr and "Traceback" not in run.stderr
    assert {p: Path(os.path.join(built_copy, p)).read_bytes() for p in before} == before


def test_publish_refuses_before_uploading(built_copy):
    os.remove(os.path.join(built_copy, "ggt_manifest.json"))
    api = RecordingApi()
    with pytest.raises(PublishError):
        pub.publish(built_copy, "me/x", api=api)
    assert api.calls == []


def _dry_run(ggt_in_process, out):
    return ggt_in_process("publish", out, "--repo-id", "me/x", "--dry-run")


@pytest.mark.slow
def test_license_other_needs_a_name_and_a_link_from_ggt_release_yaml(tree, tmp_path, ggt_in_process):
    """The Hub refuses `license: other` without license_name and license_link: the dry run
    says so and where to fix it, and ggt-release.yaml takes both keys into the card."""
    from ggt_dataset.build import build

    info = Path(tree) / "ggt-release.yaml"
    info.write_text("pretty_name: Mine\nlicense: other\n")
    out = str(tmp_path / "out")
    build(tree, out, progress=False)
    run = _dry_run(ggt_in_process, out)
    assert run.returncode == 1 and "all checks passed" not in run.stdout
    assert ("README.md: license is `other`, so the Hub needs license_name" in run.stderr
            and "license_name and license_link missing" in run.stderr
            and "set license_name and license_link in the raw release's ggt-release.yaml, then run the "
                "same `ggt build` again" in run.stderr), run.stderr
    assert "Traceback" not in run.stderr and "unexpected" not in run.stderr

    info.write_text("pretty_name: Mine\nlicense: other\nlicense_name: mine-1.0\nlicense_link: LICENSE.md\n")
    build(tree, out, progress=False)
    card = Path(out, "README.md").read_text()
    assert "license: other\nlicense_name: mine-1.0\nlicense_link: LICENSE.md\n" in card
    assert "Dataset licence: `other` ([mine-1.0](LICENSE.md))." in card
    run = _dry_run(ggt_in_process, out)  # the link names a file that is not there
    assert run.returncode == 1 and "license_link 'LICENSE.md' is neither an http(s) URL" in run.stderr
    Path(out, "LICENSE.md").write_text("Terms.\n")
    run = _dry_run(ggt_in_process, out)
    assert run.returncode == 0 and "all checks passed" in run.stdout and "  LICENSE.md  7 B" in run.stdout


@pytest.mark.slow
def test_a_card_the_hub_would_refuse_is_refused_before_any_upload(built_copy, monkeypatch):
    """Each rule on its own: values outside the Hub's lists, no pretty_name, a data_files
    pattern that matches none of the files sent."""
    from ggt_dataset import card

    render = card.render
    for change, message in [
        ({"license": "CC-BY-4.0"}, "license 'CC-BY-4.0' is not one of the Hub's licence ids"),
        ({"pretty_name": ""}, "pretty_name is missing"),
        ({"task_categories": ["image-restoration"]}, "task_categories ['image-restoration'] not in"),
        ({"size_categories": ["n<100"]}, "size_categories ['n<100'] not in"),
        ({"configs": [{"config_name": "rain", "data_files": [{"split": "train", "path": "data/Rain/*"}]}]},
         "config 'rain': data_files 'data/Rain/*' matches none of the files to upload"),
    ]:
        monkeypatch.setattr(card, "render", lambda data, repo, change=change: _edit_header(render(data, repo), change))
        api = RecordingApi()
        with pytest.raises(PublishError, match="README.md: " + re.escape(message)):
            pub.publish(built_copy, "me/x", api=api)
        assert api.calls == []


def _edit_header(text, change):
    _, header, body = text.split("---\n", 2)
    return "---\n" + yaml.safe_dump({**yaml.safe_load(header), **change}, sort_keys=False) + "---\n" + body
