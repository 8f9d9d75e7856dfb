"""The contract of :class:`fourfold.Source`: what a refresh relies on when it lists a
source and opens its documents."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Callable

import pytest

from fourfold.testing.base import ComponentContract, call, expect, label
from fourfold.types import SourceDocument

__all__ = ["SourceContract"]


class SourceContract(ComponentContract):
    """Checks a source against the refresh's expectations: it lists documents with
    unique relative keys and non-empty markers, lists them again with the same markers
    when nothing changed, opens each one's bytes, and (when the test can change the
    source, see ``change_document``) gives a changed document a new marker and stops
    listing a removed one.

    Point ``config`` (or the ``component_config`` fixture) at a source holding at least
    one document::

        class TestZipSource(fourfold.testing.SourceContract):
            component_class = ZipSource

            @pytest.fixture
            def component_config(self, tmp_path):
                ...  # write an archive with a document or two
                return {"archive": str(archive)}
    """

    kind = "source"

    @pytest.fixture
    def change_document(self) -> Callable[[SourceDocument], None] | None:
        """A function that changes the bytes of the document it is given, in the source
        the component reads; None (the default) skips the checks that need one."""
        return None

    @pytest.fixture
    def remove_document(self) -> Callable[[SourceDocument], None] | None:
        """A function that removes the document it is given from the source; None (the
        default) skips the check that needs one."""
        return None

    def _list(self, component, previous: dict[str, str] | None = None) -> tuple[list[SourceDocument], list[str]]:
        __tracebackhide__ = True
        warnings: list[str] = []
        found = call(component, "documents", previous or {}, warnings.append, fix="documents(previous, warn) must list the source")
        documents = list(found)
        for document in documents:
            expect(
                isinstance(document, SourceDocument),
                f"{label(component)}: documents() yielded {type(document).__name__}; yield fourfold.SourceDocument(key=..., marker=...)",
            )
        return documents, warnings

    def test_lists_documents(self, component):
        documents, _ = self._list(component)
        expect(documents, f"{label(component)}: documents() listed nothing; point the contract's config at a source with documents")

    def test_keys_are_unique_relative_paths(self, component):
        documents, _ = self._list(component)
        keys = [d.key for d in documents]
        expect(len(keys) == len(set(keys)), f"{label(component)}: documents() listed a key twice: give each document one key")
        for key in keys:
            parts = PurePosixPath(key).parts
            expect(
                isinstance(key, str) and key and not key.startswith("/") and ".." not in parts and "\\" not in key,
                f"{label(component)}: key {key!r} is not a relative POSIX path; keys become paths in citations and in fourfold's cache",
            )
            expect(PurePosixPath(key).suffix, f"{label(component)}: key {key!r} has no extension; loaders are chosen by extension")

    def test_markers_are_non_empty_strings(self, component):
        documents, _ = self._list(component)
        for d in documents:
            expect(
                isinstance(d.marker, str) and d.marker.strip(),
                f"{label(component)}: {d.key}: marker {d.marker!r} is empty; give a version id, ETag or content hash",
            )
            expect(
                ":" in d.marker,
                f"{label(component)}: {d.key}: marker {d.marker!r} does not say what it is; prefix it, e.g. 'etag:{d.marker}'",
            )

    def test_an_unchanged_source_lists_the_same_markers(self, component):
        first, _ = self._list(component)
        again, _ = self._list(component, {d.key: d.marker for d in first})
        before = {d.key: d.marker for d in first}
        after = {d.key: d.marker for d in again}
        changed = sorted(k for k in before if after.get(k) != before[k])
        expect(
            before.keys() == after.keys() and not changed,
            f"{label(component)}: listing twice without a change gave other keys or markers ({changed or sorted(before.keys() ^ after.keys())}); "
            "a marker must stay equal while the document's bytes do, or every refresh re-reads everything",
        )

    def test_opens_each_document(self, component):
        documents, _ = self._list(component)
        for d in documents[:20]:
            handle = call(component, "open", d, fix="open(document) must return a binary file object with its bytes")
            with handle as fh:
                data = fh.read()
            expect(isinstance(data, bytes), f"{label(component)}: open({d.key!r}).read() returned {type(data).__name__}, not bytes")
            expect(
                d.size is None or d.size == len(data),
                f"{label(component)}: {d.key}: listed with size {d.size} but open() gave {len(data)} bytes; give the size or None",
            )

    def test_a_changed_document_gets_a_new_marker(self, component, change_document):
        if change_document is None:
            pytest.skip("define a change_document fixture to check that changes are seen")
        first, _ = self._list(component)
        target = first[0]
        change_document(target)
        again, _ = self._list(component, {d.key: d.marker for d in first})
        now = {d.key: d.marker for d in again}
        expect(target.key in now, f"{label(component)}: {target.key} disappeared after it was changed")
        expect(
            now[target.key] != target.marker,
            f"{label(component)}: {target.key} kept marker {target.marker!r} after its bytes changed; the refresh would never re-read it",
        )
        others = sorted(d.key for d in first if d.key != target.key and now.get(d.key) != d.marker)
        expect(not others, f"{label(component)}: changing {target.key} changed the markers of {others} too")

    def test_a_removed_document_is_no_longer_listed(self, component, remove_document):
        if remove_document is None:
            pytest.skip("define a remove_document fixture to check that deletions are seen")
        first, _ = self._list(component)
        target = first[-1]
        remove_document(target)
        again, _ = self._list(component, {d.key: d.marker for d in first})
        expect(
            target.key not in {d.key for d in again},
            f"{label(component)}: {target.key} is still listed after it was removed; deletions must reach the index",
        )
