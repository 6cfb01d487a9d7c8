import os
from pathlib import Path

import pytest

from ggt_dataset import publish as pub
from ggt_dataset.errors import PublishError


class RecordingApi:
    """Stands in for HfApi at the network boundary only; records the calls ggt makes."""

    def __init__(self):
        self.calls = []

    def create_repo(self, *args, **kwargs):
        self.calls.append(("create_repo", args, kwargs))

    def upload_folder(self, **kwargs):
        self.calls.append(("upload_folder", (), kwargs))
        return type("CommitInfo", (), {"commit_url": "https://hub/commit/1"})()


def test_dry_run_plan_lists_publishable_files_only(built_copy):
    result = pub.plan(built_copy, "me/GGT-100K")
    paths = [p for p, _ in result.files]
    assert "README.md" in paths and "ggt_manifest.json" in paths
    assert sum(p.startswith("data/") for p in paths) == 12
    assert not any(p.startswith(".ggt-build") for p in paths)
    assert result.total_bytes == sum(os.path.getsize(os.path.join(built_copy, p)) for p in paths)


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


def test_publish_checks_then_uploads_with_resumable_upload_folder(built_copy):
    api = RecordingApi()
    url = pub.publish(built_copy, "me/GGT-100K", private=True, api=api)
    assert url == "https://hub/commit/1"
    (name1, args1, kw1), (name2, _, kw2) = api.calls
    assert name1 == "create_repo" and args1 == ("me/GGT-100K",)
    assert kw1 == {"repo_type": "dataset", "private": True, "exist_ok": True}
    assert name2 == "upload_folder"
    assert kw2["repo_id"] == "me/GGT-100K" and kw2["repo_type"] == "dataset" and kw2["folder_path"] == built_copy
    assert ".ggt-build/**" in kw2["ignore_patterns"]
    assert "18 pairs" in kw2["commit_message"]
    # the uploaded card tells people to load the repo it lives in, and still verifies
    assert 'load_dataset("me/GGT-100K")' in Path(os.path.join(built_copy, "README.md")).read_text()
    from ggt_dataset.verify import verify
    assert verify(built_copy).ok


def test_publish_refuses_before_uploading(built_copy):
    os.remove(os.path.join(built_copy, "ggt_manifest.json"))
    api = RecordingApi()
    with pytest.raises(PublishError):
        pub.publish(built_copy, "me/x", api=api)
    assert api.calls == []
