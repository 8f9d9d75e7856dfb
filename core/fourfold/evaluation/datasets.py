"""Retrieval evaluation sets in the BEIR-like layout of ``../shared/data/*``:

- ``corpus.jsonl``: ``{"id", "title", "text"}`` per passage;
- ``queries.jsonl``: ``{"id", "text"}`` per question;
- ``qrels.tsv``: header ``query-id  corpus-id  score``, one judgement per line.

Queries can be split deterministically into a ``tune`` half (for choosing parameters)
and a ``check`` half (for reporting), so tuning never sees the questions it is judged on;
:func:`set_aside` keeps a slice of the tune half back from training, for choosing
settings of the trained result.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from fourfold.errors import FourfoldError

__all__ = ["CorpusDoc", "RetrievalDataset", "load_dataset", "set_aside", "split_queries", "SPLITS"]

SPLITS = ("all", "tune", "check")


@dataclass(frozen=True)
class CorpusDoc:
    id: str
    title: str
    text: str


@dataclass
class RetrievalDataset:
    name: str
    path: Path
    corpus: list[CorpusDoc]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    corpus_digest: str

    def judged_queries(self, split: str = "all") -> list[str]:
        """Query ids with at least one relevant passage, in file order, of ``split``."""
        ids = [q for q in self.queries if any(g > 0 for g in self.qrels.get(q, {}).values())]
        return split_queries(ids, split)


def split_queries(ids: list[str], split: str) -> list[str]:
    """``all``, or the ``tune`` / ``check`` half by a hash of each id (stable across runs)."""
    if split == "all":
        return list(ids)
    if split not in SPLITS:
        raise FourfoldError(f"unknown split '{split}'; expected one of {', '.join(SPLITS)}")
    want_tune = split == "tune"
    return [q for q in ids if (hashlib.sha256(f"fourfold-tune|{q}".encode()).digest()[0] < 128) == want_tune]


def set_aside(ids: list[str], fraction: float = 0.2) -> tuple[list[str], list[str]]:
    """``(kept, set_aside)``: the ``fraction`` of ``ids`` that sort first by a hash of
    each id (at least one when ``ids`` has five or more), each part in file order."""
    count = round(len(ids) * fraction)
    if len(ids) >= 5:
        count = max(1, count)
    chosen = set(sorted(ids, key=lambda q: hashlib.sha256(f"fourfold-aside|{q}".encode()).digest())[:count])
    return [q for q in ids if q not in chosen], [q for q in ids if q in chosen]


def _read_jsonl(path: Path, required: tuple[str, ...]) -> list[dict]:
    if not path.is_file():
        raise FourfoldError(f"{path}: not found; a retrieval dataset folder holds corpus.jsonl, queries.jsonl and qrels.tsv")
    rows = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise FourfoldError(f"{path}:{n}: not JSON ({exc})") from None
            missing = [k for k in required if k not in row]
            if missing:
                raise FourfoldError(f"{path}:{n}: missing {', '.join(repr(k) for k in missing)}")
            rows.append(row)
    return rows


def load_dataset(path: str | Path) -> RetrievalDataset:
    """Read a dataset folder.

    :raises FourfoldError: naming the file and line of anything malformed.
    """
    folder = Path(path).expanduser().resolve()
    if not folder.is_dir():
        raise FourfoldError(f"{folder}: not a folder; expected a dataset folder with corpus.jsonl, queries.jsonl and qrels.tsv")
    corpus_file = folder / "corpus.jsonl"
    corpus = [CorpusDoc(str(r["id"]), str(r.get("title") or ""), str(r["text"])) for r in _read_jsonl(corpus_file, ("id", "text"))]
    queries = {str(r["id"]): str(r["text"]) for r in _read_jsonl(folder / "queries.jsonl", ("id", "text"))}
    qrels_file = folder / "qrels.tsv"
    if not qrels_file.is_file():
        raise FourfoldError(f"{qrels_file}: not found")
    qrels: dict[str, dict[str, int]] = {}
    with qrels_file.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            parts = line.rstrip("\n").split("\t")
            if n == 1 and parts[0] in ("query-id", "query_id", "qid"):
                continue
            if not line.strip():
                continue
            if len(parts) < 3:
                raise FourfoldError(f"{qrels_file}:{n}: expected 'query-id<TAB>corpus-id<TAB>score'")
            try:
                grade = int(float(parts[2]))
            except ValueError:
                raise FourfoldError(f"{qrels_file}:{n}: score '{parts[2]}' is not a number") from None
            qrels.setdefault(parts[0], {})[parts[1]] = grade
    with corpus_file.open("rb") as fh:
        digest = hashlib.file_digest(fh, "sha256").hexdigest()
    return RetrievalDataset(folder.name, folder, corpus, queries, qrels, digest)
