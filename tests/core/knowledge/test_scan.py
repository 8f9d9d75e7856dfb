"""Scanning knowledge sources: globs, prefixes, and never leaving a source folder."""

from __future__ import annotations

import os
import threading

import pytest

import fourfold
from fourfold.knowledge import file_hash, load_document, scan_sources

from .conftest import write


def relpaths(scan) -> list[str]:
    return [f.relpath for f in scan.files]


def warning_for(scan, relpath: str) -> str:
    found = [w for w in scan.warnings if w.startswith(relpath + ":") or w.startswith(relpath + "/:")]
    assert found, f"no warning about {relpath}: {scan.warnings}"
    return found[0]


class TestGlobs:
    def test_default_patterns_read_every_supported_format_at_any_depth(self, tmp_path, knowledge_domain):
        kb = tmp_path / "kb"
        for rel in ("a.md", "b.markdown", "c.txt", "d.html", "e.htm", "f.pdf", "deep/er/g.MD", "x.py", "notes.docx"):
            write(kb, rel)
        scan = scan_sources(knowledge_domain("sources: [{path: kb}]").manifest)
        assert relpaths(scan) == ["a.md", "b.markdown", "c.txt", "d.html", "deep/er/g.MD", "e.htm", "f.pdf"]
        assert scan.warnings == []
        assert all(f.path.is_absolute() and f.size == 4 for f in scan.files)

    def test_include_and_exclude_with_globstar(self, tmp_path, knowledge_domain):
        kb = tmp_path / "kb"
        for rel in ("guide.md", "policies/leave.md", "policies/drafts/new.md", "policies/old/2019.md", "faq/q.txt", "faq/q.html"):
            write(kb, rel)
        domain = knowledge_domain(
            """
            sources:
              - path: kb
                include: ["**/*.md", "faq/*.{txt,html}"]
                exclude: ["**/drafts/**", "policies/old/*"]
            """
        )
        assert relpaths(scan_sources(domain.manifest)) == ["faq/q.html", "faq/q.txt", "guide.md", "policies/leave.md"]

    def test_dotfiles_and_dot_folders_are_skipped_silently(self, tmp_path, knowledge_domain):
        kb = tmp_path / "kb"
        for rel in ("ok.md", ".hidden.md", ".git/notes.md", "sub/.cache/x.md", "..weird.md"):
            write(kb, rel)
        scan = scan_sources(knowledge_domain("sources: [{path: kb}]").manifest)
        assert relpaths(scan) == ["ok.md"] and scan.warnings == []

    def test_patterns_cannot_reach_outside_the_source(self, tmp_path, knowledge_domain):
        write(tmp_path, "secret.md", "outside")
        write(tmp_path / "kb", "inside.md")
        domain = knowledge_domain('sources: [{path: kb, include: ["../*.md", "/**/*.md", "**/*.md"]}]')
        assert relpaths(scan_sources(domain.manifest)) == ["inside.md"]

    def test_a_source_folder_gone_since_the_manifest_loaded_is_an_error(self, tmp_path, knowledge_domain):
        (tmp_path / "nowhere").mkdir()
        domain = knowledge_domain("sources: [{path: nowhere}]")
        (tmp_path / "nowhere").rmdir()
        with pytest.raises(fourfold.KnowledgeError, match=r"knowledge.sources\[0\].path: 'nowhere' should be a folder; .* does not exist"):
            scan_sources(domain.manifest)


class TestHostileEntries:
    @pytest.fixture
    def hostile(self, tmp_path, knowledge_domain):
        kb = tmp_path / "kb"
        write(kb, "good.md", "# Good\n\nFine text.\n")
        write(kb, "sub/also-good.txt", "Also fine.\n")
        write(tmp_path, "outside/secret.md", "outside the root")
        os.symlink("/etc/passwd", kb / "passwd.md")
        os.symlink("/etc", kb / "etc")
        os.symlink(tmp_path / "outside", kb / "escape")
        os.symlink("../outside/secret.md", kb / "dotdot.md")
        os.symlink("sub/also-good.txt", kb / "alias.txt")  # inside the root: read
        os.symlink(kb / "sub", kb / "loop")  # a folder inside the root: not followed
        os.symlink("missing.md", kb / "broken.md")
        os.mkfifo(kb / "pipe.md")
        with open(kb / "huge.txt", "wb") as fh:  # sparse: 3 MB on paper, nothing on disk
            fh.truncate(3 * 1024 * 1024)
        domain = knowledge_domain("sources: [{path: kb}]\nlimits: {max_file_mb: 2}")
        return domain, kb

    def test_everything_hostile_is_skipped_and_reported_while_the_rest_is_read(self, hostile):
        domain, kb = hostile
        result: dict = {}
        scanner = threading.Thread(target=lambda: result.setdefault("scan", scan_sources(domain.manifest)), daemon=True)
        scanner.start()
        scanner.join(timeout=30)
        assert not scanner.is_alive(), "the scan blocked (on the FIFO?)"
        scan = result["scan"]
        assert relpaths(scan) == ["alias.txt", "good.md", "sub/also-good.txt"]
        assert scan.files[0].path == kb / "sub" / "also-good.txt"  # the link's target, inside the root
        assert "outside the source folder" in warning_for(scan, "passwd.md")
        assert "outside the source folder" in warning_for(scan, "etc")
        assert "outside the source folder" in warning_for(scan, "escape")
        assert "outside the source folder" in warning_for(scan, "dotdot.md")
        assert "symlinked folder not followed" in warning_for(scan, "loop")
        assert "broken symlink" in warning_for(scan, "broken.md")
        assert "a FIFO, not a regular file" in warning_for(scan, "pipe.md")
        assert "3.0 MB is over knowledge.limits.max_file_mb (2 MB)" in warning_for(scan, "huge.txt")
        assert all(w.endswith("skipped") for w in scan.warnings)
        assert not any("secret" in f.relpath or "passwd" in f.relpath for f in scan.files)

    def test_a_file_swapped_after_the_scan_is_refused(self, hostile):
        domain, kb = hostile
        scan = scan_sources(domain.manifest)
        good = next(f for f in scan.files if f.relpath == "good.md")
        os.unlink(good.path)
        os.symlink("/etc/passwd", good.path)
        with pytest.raises(fourfold.KnowledgeError, match=r"good.md: now leads to /etc/passwd"):
            load_document(domain, good)
        os.unlink(good.path)
        os.mkfifo(good.path)
        with pytest.raises(OSError):
            file_hash(good)  # refused at once instead of blocking
        with pytest.raises(fourfold.KnowledgeError, match="no longer a regular file"):
            load_document(domain, good)

    def test_a_hard_link_to_a_file_outside_is_skipped_and_named(self, tmp_path, knowledge_domain):
        kb = tmp_path / "kb"
        write(kb, "good.md", "# Good\n\nFine text.\n")
        write(tmp_path, "outside/secret.md", "# Secret\n\nThe root password is hunter2.\n")
        os.link(tmp_path / "outside" / "secret.md", kb / "notes.md")
        scan = scan_sources(knowledge_domain("sources: [{path: kb}]").manifest)
        assert relpaths(scan) == ["good.md"]
        assert warning_for(scan, "notes.md") == (
            "notes.md: has 2 names (hard links), so it may be a file from outside the source folder; "
            "set knowledge.limits.allow_hard_links: true to read it; skipped"
        )

    def test_hard_links_are_read_when_allowed(self, tmp_path, knowledge_domain):
        kb = tmp_path / "kb"
        write(kb, "good.md", "# Good\n\nFine text.\n")
        os.link(kb / "good.md", kb / "same.md")
        domain = knowledge_domain("sources: [{path: kb}]\nlimits: {allow_hard_links: true}")
        scan = scan_sources(domain.manifest)
        assert relpaths(scan) == ["good.md", "same.md"] and scan.warnings == []

    def test_a_file_hard_linked_after_the_scan_is_refused(self, tmp_path, knowledge_domain):
        kb = tmp_path / "kb"
        write(kb, "good.md", "# Good\n\nFine text.\n")
        domain = knowledge_domain("sources: [{path: kb}]")
        good = scan_sources(domain.manifest).files[0]
        os.unlink(good.path)
        write(tmp_path, "outside/secret.md", "# Secret\n\nhunter2\n")
        os.link(tmp_path / "outside" / "secret.md", good.path)
        with pytest.raises(fourfold.KnowledgeError, match=r"good.md: has 2 names \(hard links\)"):
            load_document(domain, good)

    def test_names_that_are_not_utf8_are_reported(self, tmp_path, knowledge_domain):
        kb = tmp_path / "kb"
        write(kb, "ok.md")
        with open(os.path.join(os.fsencode(kb), b"bad-\xff.md"), "wb") as fh:
            fh.write(b"x")
        scan = scan_sources(knowledge_domain("sources: [{path: kb}]").manifest)
        assert relpaths(scan) == ["ok.md"]
        assert len(scan.warnings) == 1 and "not valid UTF-8" in scan.warnings[0]

    @pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
    def test_unreadable_files_are_reported(self, tmp_path, knowledge_domain):
        kb = tmp_path / "kb"
        write(kb, "ok.md")
        write(kb, "locked.md").chmod(0)
        scan = scan_sources(knowledge_domain("sources: [{path: kb}]").manifest)
        assert relpaths(scan) == ["ok.md"]
        assert "not readable" in warning_for(scan, "locked.md")


class TestSeveralSources:
    def test_prefixes_keep_relpaths_apart_and_tags_follow_the_source(self, tmp_path, knowledge_domain):
        write(tmp_path / "handbook", "README.md")
        write(tmp_path / "policies", "README.md")
        write(tmp_path / "contracts", "README.md")
        domain = knowledge_domain(
            """
            sources:
              - {path: handbook, tags: [hr]}
              - {path: policies, tags: [hr, legal]}
              - {path: contracts, prefix: /legal/contracts/, tags: [legal]}
            """
        )
        scan = scan_sources(domain.manifest)
        assert relpaths(scan) == ["handbook/README.md", "legal/contracts/README.md", "policies/README.md"]
        assert [scan.tags_for(f) for f in scan.files] == [("hr",), ("legal",), ("hr", "legal")]

    def test_one_source_without_prefix_keeps_plain_relpaths(self, tmp_path, knowledge_domain):
        write(tmp_path / "docs", "a.md")
        write(tmp_path / "more", "b.md")
        domain = knowledge_domain("sources: [{path: docs}, {path: more, prefix: extra}]")
        assert relpaths(scan_sources(domain.manifest)) == ["a.md", "extra/b.md"]

    def test_folders_with_the_same_name_get_numbered_prefixes(self, tmp_path, knowledge_domain):
        write(tmp_path / "one" / "docs", "a.md")
        write(tmp_path / "two" / "docs", "a.md")
        domain = knowledge_domain("sources: [{path: one/docs}, {path: two/docs}]")
        assert relpaths(scan_sources(domain.manifest)) == ["docs-2/a.md", "docs/a.md"]

    def test_a_path_claimed_twice_is_read_once_and_reported(self, tmp_path, knowledge_domain):
        write(tmp_path / "a", "x.md")
        write(tmp_path / "b", "x.md")
        domain = knowledge_domain("sources: [{path: a, prefix: same}, {path: b, prefix: same}]")
        scan = scan_sources(domain.manifest)
        assert relpaths(scan) == ["same/x.md"] and scan.files[0].path == tmp_path / "a" / "x.md"
        assert "knowledge.sources[1] has a file at the same path as knowledge.sources[0]" in warning_for(scan, "same/x.md")

    @pytest.mark.parametrize("prefix", ["../up", "a/../../b", "a\\\\b"])
    def test_prefixes_must_be_plain_relative_paths(self, tmp_path, knowledge_domain, prefix):
        write(tmp_path / "kb", "a.md")
        with pytest.raises(fourfold.ManifestError, match=r"knowledge.sources\[0\].prefix: should be a plain relative path"):
            knowledge_domain(f'sources: [{{path: kb, prefix: "{prefix}"}}]')


class TestHashing:
    def test_the_hash_follows_the_content(self, tmp_path, knowledge_domain):
        kb = tmp_path / "kb"
        write(kb, "a.md", "same words")
        write(kb, "b.md", "same words")
        domain = knowledge_domain("sources: [{path: kb}]")
        a, b = scan_sources(domain.manifest).files
        assert file_hash(a) == file_hash(b)
        write(kb, "b.md", "same words.")
        assert file_hash(a) != file_hash(b)
