"""The s3 source against moto's S3 server: a refresh downloads only the objects that
changed, sees additions and deletions, and an unreachable store leaves the published
index as it was."""

from __future__ import annotations

import pytest

import fourfold
from fourfold.index import IndexLayout, index_status, refresh
from fourfold.testing import SourceContract
from fourfold_sources import S3Source

import fourfold_sources

from ...helpers.moto_s3 import free_port
from .conftest import load_domain, write_manifest

DOCS = {
    "kb/cats.md": "# Cats\n\nAdult cats should be fed twice a day.\n",
    "kb/dogs.md": "# Dogs\n\nDogs need a walk at least twice daily.\n",
    "kb/tea/green.txt": "Green tea brews best with water at eighty degrees.\n",
    "kb/photo.png": "not a document",
    "elsewhere/kettle.md": "# Kettles\n\nDescale the kettle monthly.\n",
}


def put(moto, bucket, files):
    client = moto.client()
    for key, text in files.items():
        client.put_object(Bucket=bucket, Key=key, Body=text.encode("utf-8"))


def s3_manifest(tmp_path, moto, bucket, *, endpoint=None, gate="{min_chunks: 1}"):
    endpoint = endpoint or moto.url
    return write_manifest(tmp_path, f"[{{use: s3, with: {{bucket: {bucket}, prefix: kb, endpoint_url: '{endpoint}'}}}}]", gate=gate)


def test_a_refresh_downloads_only_changed_objects(tmp_path, moto, bucket):
    put(moto, bucket, DOCS)
    domain = load_domain(s3_manifest(tmp_path, moto, bucket))
    first = refresh(domain)
    assert first.published and sorted(first.added) == ["cats.md", "dogs.md", "tea/green.txt"]
    assert sorted(moto.downloads(bucket)) == ["kb/cats.md", "kb/dogs.md", "kb/tea/green.txt"]

    again = refresh(domain)
    assert not again.published and again.reason == "no change"
    assert len(moto.downloads(bucket)) == 3, "an unchanged object was downloaded"

    put(moto, bucket, {"kb/cats.md": "# Cats\n\nKittens eat four small meals a day.\n", "kb/birds.md": "# Birds\n\nParrots need company.\n"})
    moto.client().delete_object(Bucket=bucket, Key="kb/dogs.md")
    report = refresh(domain)
    assert report.published and report.changed == ["cats.md"] and report.added == ["birds.md"] and report.removed == ["dogs.md"]
    assert sorted(moto.downloads(bucket)[3:]) == ["kb/birds.md", "kb/cats.md"]
    assert report.unchanged == ["tea/green.txt"]

    passages, version = domain.search("kittens meals", top_k=1)
    assert version == report.version and passages[0].chunk.source == "cats.md"
    catalog = IndexLayout.for_domain(domain).read_catalog(report.version)
    assert catalog.documents["cats.md"].hash.startswith("etag:")
    assert set(catalog.documents) == {"birds.md", "cats.md", "tea/green.txt"}


def test_an_unreachable_store_keeps_the_published_version(tmp_path, moto, bucket):
    put(moto, bucket, DOCS)
    domain = load_domain(s3_manifest(tmp_path, moto, bucket))
    published = refresh(domain).version
    closed = f"http://127.0.0.1:{free_port()}"
    broken = load_domain(s3_manifest(tmp_path, moto, bucket, endpoint=closed))
    with pytest.raises(fourfold.KnowledgeError) as caught:
        refresh(broken)
    message = str(caught.value)
    assert "knowledge.sources[0]: source 's3'" in message and f"s3://{bucket}/kb/ at {closed}" in message
    assert "could not be listed" in message and "the published index is unchanged" in message
    status = index_status(domain)
    assert status.published == published and status.documents == 3
    last = status.last_refresh  # what `fourfold index status` and GET /v1/domains/{domain}/status show
    assert last["event"] == "failed" and "knowledge.sources[0]: source 's3'" in last["error"]


def test_a_missing_bucket_is_named(tmp_path, moto, aws_env):
    domain = load_domain(write_manifest(tmp_path, f"[{{use: s3, with: {{bucket: no-such-bucket, endpoint_url: '{moto.url}'}}}}]"))
    with pytest.raises(fourfold.KnowledgeError, match=r"source 's3' \(s3://no-such-bucket/ .*NoSuchBucket"):
        refresh(domain)


def test_the_removal_gate_still_applies(tmp_path, moto, bucket):
    put(moto, bucket, DOCS)
    domain = load_domain(s3_manifest(tmp_path, moto, bucket, gate="{min_chunks: 1, max_removed_fraction: 0.5}"))
    published = refresh(domain).version
    client = moto.client()
    for key in ("kb/cats.md", "kb/dogs.md"):
        client.delete_object(Bucket=bucket, Key=key)
    with pytest.raises(fourfold.IndexVersionError, match="2 of 3 documents disappeared"):
        refresh(domain)
    assert index_status(domain).published == published


def test_include_exclude_and_versions(tmp_path, moto, bucket):
    put(moto, bucket, DOCS)
    moto.client().put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    put(moto, bucket, {"kb/cats.md": DOCS["kb/cats.md"] + "More.\n"})
    source = S3Source(
        S3Source.Config(bucket=bucket, prefix="kb", endpoint_url=moto.url, include=["**/*.md", "**/*.png"], exclude=["dogs*"], versions=True),
        fourfold.testing.make_context(tmp_path, kind="source"),
    )
    listed = {d.key: d.marker for d in source.documents({}, print)}
    assert sorted(listed) == ["cats.md", "photo.png"]
    assert all(m.startswith("version:") for m in listed.values())
    with source.open(next(d for d in source.documents({}, print) if d.key == "cats.md")) as fh:
        assert fh.read().endswith(b"More.\n")


@pytest.mark.parametrize(
    ("sources", "message"),
    [
        ("[{use: s3, with: {bucket: docs, nope: 1}}]", "knowledge.sources[0].with.nope: unknown key 'nope'"),
        ("[{use: s3, include: ['*.md'], with: {bucket: docs}}]", "include beside 'use: s3' apply to folders only"),
        ("[{use: s4, with: {bucket: docs}}]", "knowledge.sources[0].use:"),
        ("[{path: kb, use: s3}]", "give either 'path' (a folder) or 'use'"),
        ("[{tags: [a]}]", "not neither"),
    ],
)
def test_manifest_mistakes_are_explained(tmp_path, sources, message):
    (tmp_path / "kb").mkdir()
    _, issues = fourfold.manifest.loading.validate_manifest_file(write_manifest(tmp_path, sources))
    assert any(message in issue for issue in issues), issues


class TestS3SourceContract(SourceContract):
    component_class = S3Source
    plugin = fourfold_sources

    @pytest.fixture
    def component_config(self, moto, bucket):
        put(moto, bucket, DOCS)
        self.moto, self.bucket = moto, bucket
        return {"bucket": bucket, "prefix": "kb", "endpoint_url": moto.url}

    @pytest.fixture
    def change_document(self):
        return lambda d: put(self.moto, self.bucket, {f"kb/{d.key}": "changed\n"})

    @pytest.fixture
    def remove_document(self):
        return lambda d: self.moto.client().delete_object(Bucket=self.bucket, Key=f"kb/{d.key}")


def test_pending_changes_are_seen_without_downloading(tmp_path, moto, bucket):
    from fourfold.index.status import changed_documents

    put(moto, bucket, DOCS)
    domain = load_domain(s3_manifest(tmp_path, moto, bucket))
    refresh(domain)
    assert changed_documents(domain) == []
    put(moto, bucket, {"kb/dogs.md": "# Dogs\n\nDogs sleep a lot.\n"})
    moto.client().delete_object(Bucket=bucket, Key="kb/cats.md")
    downloads = len(moto.downloads(bucket))
    assert changed_documents(domain) == ["dogs.md", "cats.md"]
    assert len(moto.downloads(bucket)) == downloads
