"""The upload source and its stores: a folder of the state dir on one host, an
S3-compatible bucket (moto's server) in server mode, and server mode without a bucket
refused, naming the setting."""

from __future__ import annotations

import hashlib
import io
import os
import stat

import pytest

import fourfold
from fourfold.index import refresh
from fourfold.settings import Settings
from fourfold.testing import SourceContract
from fourfold.uploads import FolderUploads, S3Uploads
from fourfold_sources import UploadSource

import fourfold_sources

from .conftest import load_domain, write_manifest


def put(store: fourfold.UploadStore, path: str, text: str) -> fourfold.UploadedDocument | None:
    data = text.encode("utf-8")
    return store.put(path, io.BytesIO(data), sha256=hashlib.sha256(data).hexdigest(), size=len(data))


# -- paths ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["", "/etc/passwd", "a/../b.md", "..", "a//b.md", "./a.md", "a\\b.md", "a\x00.md", "a/.git/config", "a/\n.md", "x" * 1025]
)
def test_paths_that_could_leave_the_store_are_refused(path):
    with pytest.raises(fourfold.DocumentPathError):
        fourfold.check_document_path(path)


def test_unicode_paths_are_kept_in_one_normal_form():
    assert fourfold.check_document_path("guides/cafe\u0301 世界.md") == "guides/caf\u00e9 世界.md"


# -- one host: a folder of the state dir ------------------------------------------------


def test_one_host_keeps_uploads_in_the_domains_state_dir(tmp_path):
    settings = Settings(home=tmp_path / "home")
    store = fourfold.upload_store(settings, "kb")
    assert isinstance(store, FolderUploads) and store.root == settings.domain_dir("kb") / "uploads"

    assert put(store, "guides/cats.md", "# Cats\n") is None
    replaced = put(store, "guides/cats.md", "# Cats\n\nTwice a day.\n")
    assert replaced is not None and replaced.size == len("# Cats\n")
    [document] = store.list()
    assert document.sha256 == hashlib.sha256(b"# Cats\n\nTwice a day.\n").hexdigest() and document.uploaded.endswith("+00:00")
    assert store.open("guides/cats.md").read() == b"# Cats\n\nTwice a day.\n"
    kept = store.root / "files" / "guides" / "cats.md"
    assert stat.S_IMODE(os.stat(kept).st_mode) == 0o644
    assert not [p for p in kept.parent.iterdir() if p.name.endswith(".tmp")], "no temporary file is left"

    assert store.delete("guides/cats.md") == document
    assert store.list() == [] and store.delete("guides/cats.md") is None
    assert not (store.root / "files" / "guides").exists(), "emptied folders are removed"


def test_the_marker_is_the_hash_kept_at_upload_so_listing_reads_no_bytes(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("FOURFOLD_HOME", str(home))
    domain = load_domain(write_manifest(tmp_path, "[{use: upload}]"))
    store = fourfold.upload_store(domain.settings, domain.name)
    put(store, "cats.md", "# Cats\n\nAdult cats should be fed twice a day.\n")
    put(store, "tea/green.txt", "Green tea brews best with water at eighty degrees.\n")
    first = refresh(domain)
    assert first.published and sorted(first.added) == ["cats.md", "tea/green.txt"]

    opened = []
    original = FolderUploads.open
    monkeypatch.setattr(FolderUploads, "open", lambda self, path: opened.append(path) or original(self, path))
    put(store, "cats.md", "# Cats\n\nKittens eat four small meals a day.\n")
    report = refresh(domain)
    assert report.changed == ["cats.md"] and report.unchanged == ["tea/green.txt"] and opened == ["cats.md"]
    passages, _ = domain.search("kittens meals", top_k=1)
    assert passages[0].chunk.source == "cats.md"

    store.delete("cats.md")
    assert refresh(domain).removed == ["cats.md"]


class TestUploadSourceContract(SourceContract):
    component_class = UploadSource
    plugin = fourfold_sources

    @pytest.fixture
    def component_config(self, component_context):
        self.store = fourfold.upload_store(component_context.settings, component_context.domain)
        put(self.store, "cats.md", "# Cats\n\nFed twice a day.\n")
        put(self.store, "guides/dogs.md", "# Dogs\n\nWalked twice daily.\n")
        return {}

    @pytest.fixture
    def change_document(self):
        return lambda d: put(self.store, d.key, "changed\n")

    @pytest.fixture
    def remove_document(self):
        return lambda d: self.store.delete(d.key)


# -- server mode: an S3-compatible bucket -----------------------------------------------


def server_settings(tmp_path, moto=None, bucket=None) -> Settings:
    """Server mode (a Qdrant URL), with the uploads bucket when given."""
    extra = {"upload_s3_url": f"s3://{bucket}/uploads", "upload_s3_endpoint": moto.url} if bucket else {}
    return Settings(home=tmp_path / "home", qdrant_url="http://127.0.0.1:6333", **extra)


def test_server_mode_keeps_uploads_in_the_bucket(tmp_path, moto, bucket):
    store = fourfold.upload_store(server_settings(tmp_path, moto, bucket), "kb")
    assert isinstance(store, S3Uploads) and store.location == f"s3://{bucket}/uploads/kb/ at {moto.url}"
    assert put(store, "guides/café.md", "# Café\n\nOpen at eight.\n") is None
    assert put(store, "guides/café.md", "# Café\n\nOpen at nine.\n").sha256 == hashlib.sha256("# Café\n\nOpen at eight.\n".encode()).hexdigest()
    head = moto.client().head_object(Bucket=bucket, Key="uploads/kb/guides/café.md")
    assert head["Metadata"]["sha256"] == hashlib.sha256("# Café\n\nOpen at nine.\n".encode()).hexdigest()
    [document] = store.list()
    assert document.path == "guides/café.md" and document.size == len("# Café\n\nOpen at nine.\n".encode())
    heads = sum(1 for line in moto.requests() if line.startswith("HEAD "))
    assert heads >= 1 and store.list() == [document]
    assert sum(1 for line in moto.requests() if line.startswith("HEAD ")) == heads, "a document listed before is not asked for again"
    assert store.open("guides/café.md").read().decode() == "# Café\n\nOpen at nine.\n"
    assert not (tmp_path / "home" / "domains" / "kb" / "uploads").exists(), "nothing is kept on this host"
    assert store.delete("guides/café.md") == document and store.list() == []


def test_another_host_refreshes_from_what_one_host_uploaded(tmp_path, moto, bucket, monkeypatch):
    """Two state dirs, one bucket: the API host's upload is read by the worker host."""
    api_host = S3Uploads.from_url(f"s3://{bucket}/uploads", "remote", endpoint_url=moto.url)
    put(api_host, "cats.md", "# Cats\n\nAdult cats should be fed twice a day.\n")
    monkeypatch.setenv("FOURFOLD_HOME", str(tmp_path / "worker-home"))
    monkeypatch.setenv("FOURFOLD_UPLOAD_S3_URL", f"s3://{bucket}/uploads")
    monkeypatch.setenv("FOURFOLD_UPLOAD_S3_ENDPOINT", moto.url)
    fourfold.get_settings(fresh=True)
    try:
        domain = load_domain(write_manifest(tmp_path, "[{use: upload}]"))
        report = refresh(domain)
        assert report.published and report.added == ["cats.md"]
        passages, _ = domain.search("cats fed", top_k=1)
        assert passages[0].chunk.source == "cats.md"
    finally:
        monkeypatch.undo()
        fourfold.get_settings(fresh=True)


def test_server_mode_without_a_bucket_is_refused_naming_the_setting(tmp_path, monkeypatch):
    with pytest.raises(fourfold.ConfigError, match="FOURFOLD_UPLOAD_S3_URL"):
        fourfold.upload_store(server_settings(tmp_path), "kb")
    context = fourfold.ComponentContext(domain="kb", base_dir=tmp_path, state_dir=tmp_path / "state", settings=server_settings(tmp_path))
    source = UploadSource(UploadSource.Config(), context)
    with pytest.raises(fourfold.ConfigError, match="FOURFOLD_QDRANT_URL is set .*FOURFOLD_UPLOAD_S3_URL=s3://bucket/prefix"):
        list(source.documents({}, lambda line: None))


def test_the_api_refuses_uploads_in_server_mode_without_a_bucket(tmp_path):
    from fastapi.testclient import TestClient

    from fourfold.api import ApiOptions, create_app
    from fourfold.api.assistants import Assistants
    from fourfold.plugins import PluginHost

    settings = server_settings(tmp_path)
    assistants = Assistants.from_manifests([write_manifest(tmp_path, "[{use: upload}]")], host=PluginHost(settings), settings=settings)
    token = {"Authorization": f"Bearer {assistants.write_tokens['remote'].tokens[0]}"}
    with TestClient(create_app(assistants=assistants, options=ApiOptions(warm_up=False))) as client:
        answer = client.put("/v1/domains/remote/documents/cats.md", content=b"# Cats\n", headers=token)
    assert answer.status_code == 503 and answer.json()["error"]["code"] == "upload_store_unconfigured"
    assert "FOURFOLD_UPLOAD_S3_URL" in answer.json()["error"]["message"]


def test_the_api_uploads_to_the_bucket_in_server_mode(tmp_path, moto, bucket):
    from fastapi.testclient import TestClient

    from fourfold.api import ApiOptions, create_app
    from fourfold.api.assistants import Assistants
    from fourfold.plugins import PluginHost

    settings = server_settings(tmp_path, moto, bucket)
    assistants = Assistants.from_manifests([write_manifest(tmp_path, "[{use: upload}]")], host=PluginHost(settings), settings=settings)
    token = {"Authorization": f"Bearer {assistants.write_tokens['remote'].tokens[0]}"}
    with TestClient(create_app(assistants=assistants, options=ApiOptions(warm_up=False))) as client:
        created = client.put("/v1/domains/remote/documents/guides/Привет.md", content="# Привет\n".encode(), headers=token)
        assert created.status_code == 201 and created.json()["action"] == "created"
        listed = client.get("/v1/domains/remote/documents", headers=token).json()
        assert listed["store"].startswith(f"s3://{bucket}/uploads/remote/") and [d["path"] for d in listed["documents"]] == ["guides/Привет.md"]
        assert client.delete("/v1/domains/remote/documents/guides/Привет.md", headers=token).json()["action"] == "deleted"
    assert moto.client().list_objects_v2(Bucket=bucket).get("KeyCount") == 0
