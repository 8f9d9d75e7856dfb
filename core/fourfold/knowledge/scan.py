"""Finding a domain's knowledge files: a walk of each source folder that never leaves it.

The walk lists folders itself (``os.scandir``) and matches each file's path relative to
the source root against the include/exclude globs, so no pattern can reach outside the
root. Symlinks are resolved and must stay inside the root; symlinked folders are not
followed (their files are read where they really are); FIFOs, sockets and devices are
never opened, so they cannot block a scan; files with more than one name (hard links)
are skipped unless ``knowledge.limits.allow_hard_links``.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from wcmatch import glob

from fourfold.errors import KnowledgeError
from fourfold.manifest import Manifest
from fourfold.types import SourceFile

__all__ = ["ScanResult", "scan_sources", "scan_folder", "file_hash", "source_roots", "source_prefixes", "open_regular_file", "Walk", "GLOB_FLAGS"]

# ``**`` spans folders (and matches none), ``{a,b}`` alternatives, case-insensitive
# (``*.PDF`` is a PDF too); dotfiles never match, the walk skips them anyway.
GLOB_FLAGS = glob.GLOBSTAR | glob.BRACE | glob.IGNORECASE | glob.NODOTDIR

# A hard link is a second name of the same file, perhaps one outside the source folder
# that the folder's writer could not otherwise have put in it; nothing tells the two
# names apart, so every file with more than one name is refused unless allowed.
HARD_LINK_WARNING = (
    "has {n} names (hard links), so it may be a file from outside the source folder; "
    "set knowledge.limits.allow_hard_links: true to read it"
)

_KINDS = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


@dataclass
class ScanResult:
    """What a scan found.

    :ivar files: readable regular files matching the sources' patterns, sorted by relpath.
    :ivar warnings: one line per skipped entry, naming it and saying why.
    :ivar tags: each file's tags (those of the source it came from), by relpath.
    :ivar sources: the index of the source each file came from, by relpath.
    :ivar markers: the change marker a source component gave each of its documents, by
        relpath (folder files have none: their bytes are hashed).
    :ivar urls: where readers can see a source component's document (its citations'
        link unless its loader gives one), by relpath.
    :ivar fetchers: for documents of source components, what saves the bytes at the
        file's ``path`` (see :meth:`fetch`), by relpath.
    """

    files: list[SourceFile] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    tags: dict[str, tuple[str, ...]] = field(default_factory=dict)
    sources: dict[str, int] = field(default_factory=dict)
    markers: dict[str, str] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)
    fetchers: dict[str, Callable[[], None]] = field(default_factory=dict)

    def marker(self, file: SourceFile) -> str:
        """What tells whether ``file`` changed since the last refresh: its source's
        marker, else the sha256 of its bytes (see :func:`file_hash`).

        :raises OSError: a folder file is gone or unreadable.
        """
        found = self.markers.get(file.relpath)
        return found if found is not None else file_hash(file)

    def fetch(self, file: SourceFile) -> None:
        """Make ``file.path`` hold the document's bytes before a loader reads it: a
        source component's document is downloaded into the domain's source cache; a
        folder file is already there.

        :raises KnowledgeError: naming the document and its source, when its bytes could
            not be had.
        """
        fetcher = self.fetchers.get(file.relpath)
        if fetcher is not None:
            fetcher()

    def source_of(self, file: SourceFile) -> int | None:
        """The index of the source (``knowledge.sources[i]``) ``file`` came from."""
        return self.sources.get(file.relpath)

    def tags_for(self, file: SourceFile) -> tuple[str, ...]:
        """The tags of the source ``file`` came from."""
        return self.tags.get(file.relpath, ())


def source_roots(manifest: Manifest) -> list[Path | None]:
    """Each source's folder, resolved against the manifest's folder (None for a source
    component such as ``s3``)."""
    return [source.folder(manifest.base_dir) if source.is_folder else None for source in _knowledge(manifest).sources]


def source_prefixes(manifest: Manifest) -> list[str]:
    """The relpath prefix of each source ("" for none).

    A source's ``prefix`` when given. When several sources have none, each of those is
    prefixed with its folder's name (``-2``, ``-3``… appended when names repeat), so two
    sources' ``README.md`` never become the same document.
    """
    knowledge = _knowledge(manifest)
    explicit = [s.prefix or "" for s in knowledge.sources]  # checked and normalised by the manifest model
    unprefixed = [i for i, p in enumerate(explicit) if not p]
    if len(unprefixed) < 2:
        return explicit
    taken = set(explicit)
    out = list(explicit)
    for i in unprefixed:
        source = knowledge.sources[i]
        base = (source.folder(manifest.base_dir).name if source.is_folder else source.use) or "source"
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base}-{n}"
        taken.add(name)
        out[i] = name
    return out


def scan_sources(manifest: Manifest) -> ScanResult:
    """List the files of every folder source of ``manifest`` (sources such as ``s3``
    are components of a domain: :func:`fourfold.knowledge.scan_domain` lists them too).

    Skipped and reported in ``warnings`` (the rest is still read): symlinks leading out
    of the source folder, broken symlinks, symlinked folders, FIFOs, sockets and
    devices, hard links (unless ``knowledge.limits.allow_hard_links``), files over
    ``knowledge.limits.max_file_mb``, unreadable files and folders,
    names that are not valid UTF-8, and a second file claiming a relpath already taken.
    Dotfiles and dot-folders are skipped silently.

    :raises KnowledgeError: the manifest has no knowledge block, a source folder does
        not exist or is not a folder, or none of a source's ``include`` patterns (as
        written in the manifest) matches a file; ``file:line: field: problem``, as
        ``fourfold validate`` reports it. A pattern matching nothing while others of its
        source do is a warning in the same form.
    """
    result = ScanResult()
    owner: dict[str, int] = {}
    prefixes = source_prefixes(manifest)
    for index, source in enumerate(_knowledge(manifest).sources):
        if source.is_folder:
            scan_folder(manifest, index, prefixes[index], result, owner)
    result.files.sort(key=lambda f: f.relpath)
    return result


def scan_folder(manifest: Manifest, index: int, prefix: str, result: ScanResult, owner: dict[str, int]) -> None:
    """Add the files of folder source ``knowledge.sources[index]`` to ``result``;
    ``owner`` maps each relpath taken so far to its source's index."""
    knowledge = _knowledge(manifest)
    max_bytes = int(knowledge.limits.max_file_mb * 1024 * 1024)
    source = knowledge.sources[index]
    root = source.folder(manifest.base_dir)
    problem = source.folder_problem(manifest.base_dir)
    if problem:
        raise KnowledgeError(manifest.located(("knowledge", "sources", index, "path"), problem))
    walk = Walk(root, prefix, list(source.include), list(source.exclude), result.warnings, knowledge.limits.allow_hard_links)
    for rel, path, size in walk.files():
        relpath = f"{prefix}/{rel}" if prefix else rel
        label = f"{relpath}"
        if size > max_bytes:
            result.warnings.append(
                f"{label}: {size / 1048576:.1f} MB is over knowledge.limits.max_file_mb ({knowledge.limits.max_file_mb:g} MB); skipped"
            )
            continue
        if not os.access(path, os.R_OK):
            result.warnings.append(f"{label}: not readable (permission denied); skipped")
            continue
        if relpath in owner:
            result.warnings.append(
                f"{label}: knowledge.sources[{index}] has a file at the same path as knowledge.sources[{owner[relpath]}]; "
                "skipped (give the sources different 'prefix' values)"
            )
            continue
        owner[relpath] = index
        result.files.append(SourceFile(path=path, relpath=relpath, size=size))
        result.tags[relpath] = tuple(source.tags)
        result.sources[relpath] = index
    result.warnings += _unmatched_patterns(manifest, index, walk)


def file_hash(file: SourceFile) -> str:
    """sha256 of the file's bytes (hex): equal hashes mean the document is unchanged.

    :raises OSError: the file is gone, unreadable, or no longer a regular file.
    """
    digest = hashlib.sha256()
    with open_regular_file(file.path) as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def open_regular_file(path: Path):
    """Open ``path`` for reading only if it is a regular file (a FIFO put in its place
    after the scan is refused instead of blocking the reader)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path} is no longer a regular file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


# -------------------------------------------------------------------------
# the walk
# -------------------------------------------------------------------------


class Walk:
    """One folder's matching regular files, never leaving it (see the module docstring);
    skipped entries are appended to ``warnings``."""

    def __init__(self, root: Path, prefix: str, include: list[str], exclude: list[str], warnings: list[str], allow_hard_links: bool = False):
        self.root = root
        self.allow_hard_links = allow_hard_links
        self.prefix = prefix
        self.matcher = glob.compile(include, flags=GLOB_FLAGS, exclude=exclude or None)
        self.patterns = {p: glob.compile(p, flags=GLOB_FLAGS, exclude=exclude or None) for p in include}
        self.matched: set[str] = set()  # include patterns that matched a file
        self.warnings = warnings

    def files(self):
        """``(relpath in source, path to read, size)`` of every matching regular file."""
        folders = [""]
        while folders:
            rel_dir = folders.pop()
            try:
                with os.scandir(self.root / rel_dir if rel_dir else self.root) as it:
                    entries = sorted(it, key=lambda e: e.name)
            except OSError as exc:
                self._warn(rel_dir + "/", f"folder cannot be read ({exc.strerror or exc})")
                continue
            subfolders = []
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
                try:
                    rel.encode("utf-8")
                except UnicodeEncodeError:
                    self._warn(ascii(rel), "name is not valid UTF-8")
                    continue
                found = self._entry(entry, rel)
                if found == "folder":
                    subfolders.append(rel)
                elif found is not None:
                    yield found
            folders.extend(reversed(subfolders))

    def _entry(self, entry: os.DirEntry, rel: str):
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError as exc:
            self._warn(rel, f"cannot be examined ({exc.strerror or exc})")
            return None
        path = Path(entry.path)
        if stat.S_ISLNK(st.st_mode):
            target = Path(os.path.realpath(entry.path))
            if not _inside(target, self.root):
                self._warn(rel, f"symlink to {target}, outside the source folder")
                return None
            try:
                st = os.stat(target)
            except OSError:
                self._warn(rel, "broken symlink")
                return None
            if stat.S_ISDIR(st.st_mode):
                self._warn(rel + "/", "symlinked folder not followed (its files are read where they are)")
                return None
            path = target
        elif stat.S_ISDIR(st.st_mode):
            return "folder"
        if not self.matcher.match(rel):
            return None
        self.matched.update(p for p, matcher in self.patterns.items() if p not in self.matched and matcher.match(rel))
        if not stat.S_ISREG(st.st_mode):
            kind = next((name for check, name in _KINDS if check(st.st_mode)), "not a regular file")
            self._warn(rel, f"{kind}, not a regular file")
            return None
        if st.st_nlink > 1 and not self.allow_hard_links:
            self._warn(rel, HARD_LINK_WARNING.format(n=st.st_nlink))
            return None
        return rel, path, st.st_size

    def _warn(self, rel: str, why: str) -> None:
        shown = f"{self.prefix}/{rel}" if self.prefix else rel
        self.warnings.append(f"{shown}: {why}; skipped")


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _unmatched_patterns(manifest: Manifest, index: int, walk: "Walk") -> list[str]:
    """Problems with a source's ``include`` patterns: none matched a file (an error,
    when the patterns were written in the manifest), or one of several matched none
    (a warning)."""
    source = _knowledge(manifest).sources[index]
    if "include" not in source.model_fields_set:
        return []
    patterns = list(source.include)
    unmatched = [i for i, pattern in enumerate(patterns) if pattern not in walk.matched]
    if len(unmatched) == len(patterns):
        shown = ", ".join(repr(p) for p in patterns)
        raise KnowledgeError(
            manifest.located(("knowledge", "sources", index, "include"), f"no file in {walk.root} matches {shown}")
        )
    return [
        manifest.located(("knowledge", "sources", index, "include", i), f"'{patterns[i]}' matches no file in {walk.root}")
        for i in unmatched
    ]


def _knowledge(manifest: Manifest):
    if manifest.knowledge is None:
        where = f"{manifest.path}: " if manifest.path else ""
        raise KnowledgeError(f"{where}domain '{manifest.domain}' has no 'knowledge:' block, so there are no sources to read")
    return manifest.knowledge
