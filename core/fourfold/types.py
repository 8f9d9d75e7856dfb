"""Plain data that flows between components: documents, chunks, passages, prompts, answers.

These are dataclasses rather than pydantic models because they are created in hot loops
(one per chunk, one per retrieved passage); the HTTP layer converts them at its edge.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "SourceFile",
    "SourceDocument",
    "Section",
    "LoadedDocument",
    "Chunk",
    "Passage",
    "SearchFilters",
    "Message",
    "Prompt",
    "Citation",
    "Answer",
    "GenerationLimits",
    "GenerationUsage",
    "GeneratedText",
    "count_words",
    "TrainingResult",
    "chunk_point_id",
    "content_hash",
]

# Fixed namespace for deterministic point ids; changing it re-embeds nothing (vectors are
# cached by content) but renames every point, so it never changes.
_POINT_NAMESPACE = uuid.UUID("6f1c2b7e-3d4a-5b8c-9e0f-a1b2c3d4e5f6")


def content_hash(text: str) -> str:
    """sha256 hex digest of ``text`` (UTF-8)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def chunk_point_id(embedder_id: str, source: str, text_hash: str, occurrence: int) -> str:
    """Deterministic id of a chunk's point in a vector store.

    The same text in the same document under the same embedder always gets the same id,
    so an unchanged chunk survives a refresh untouched; ``occurrence`` tells apart
    identical chunks inside one document.
    """
    return str(uuid.uuid5(_POINT_NAMESPACE, f"{embedder_id}\x00{source}\x00{text_hash}\x00{occurrence}"))


@dataclass(frozen=True)
class SourceFile:
    """A file found in a knowledge source, handed to a loader.

    :ivar path: absolute path on disk.
    :ivar relpath: POSIX path relative to the knowledge source root, prefixed with the
        source's ``prefix`` when it has one; this is what citations show.
    :ivar size: size in bytes at scan time.
    """

    path: Path
    relpath: str
    size: int

    @property
    def suffix(self) -> str:
        """The extension, lower case, without the dot (``"md"``): what picks the loader."""
        return self.path.suffix.lower().lstrip(".")


@dataclass(frozen=True)
class SourceDocument:
    """One document a :class:`fourfold.Source` lists, before anything of it is read.

    :ivar key: POSIX path of the document inside its source (``"guides/cats.md"``): no
        leading ``/``, no ``..``; its extension picks the loader. Prefixed with the
        source's ``prefix`` it becomes the document's path in citations.
    :ivar marker: a cheap change marker, equal as long as the bytes are: a version id,
        an ETag, validators of an HTTP response or a content hash, prefixed by what it
        is (``"etag:…"``, ``"version:…"``, ``"sha256:…"``). A document whose marker is
        the one recorded at the last refresh is neither opened nor read again.
    :ivar size: size in bytes when the listing says it (None: unknown).
    :ivar url: where a reader can see the document (a citation's link), if anywhere.
    """

    key: str
    marker: str
    size: int | None = None
    url: str | None = None


@dataclass(frozen=True)
class Section:
    """A run of text under one heading path, on one page where the format has pages.

    :ivar text: the text, as readers should see it (chunks are cut from it).
    :ivar heading_path: the headings above the text, outermost first
        (``("Caring for cats", "Feeding")``); chunks show them joined by `` > ``.
    :ivar page: the page number from 1, for formats with pages; None otherwise.
    """

    text: str
    heading_path: tuple[str, ...] = ()
    page: int | None = None


@dataclass
class LoadedDocument:
    """What a loader returns: a title and the document's text as sections, in order.

    A loader may return several, one per *record* of a file (a row, a message, an
    entry); each is chunked and cited on its own, under its own title.

    :ivar title: the document's (or record's) title; never empty: citations show it.
    :ivar sections: the text, in reading order.
    :ivar metadata: ``"url"``: the link a citation shows; ``"warnings"``: partial
        problems as strings (shown to the user, not stored); anything else
        (JSON-serialisable: dates, authors, …) is stored on every chunk of the document
        (:attr:`Chunk.metadata`), returned in citations and usable in
        :attr:`SearchFilters.metadata`.
    """

    title: str
    sections: list[Section]
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """Every section's text, separated by blank lines."""
        return "\n\n".join(s.text for s in self.sections)


@dataclass
class Chunk:
    """A piece of a document small enough to embed, with everything a citation needs.

    :ivar id: the point id (see :func:`chunk_point_id`): stable while the text, source
        and embedder are.
    :ivar text: what readers see and prompts quote.
    :ivar source: the document's path as cited (:attr:`SourceFile.relpath`).
    :ivar title: the document's or record's title.
    :ivar heading: the heading path, joined by `` > ``.
    :ivar page: the page number, for formats with pages.
    :ivar ordinal: position among the chunks of its document (or record), from 0.
    :ivar text_hash: :func:`content_hash` of ``text``.
    :ivar file_type: the document's extension without the dot.
    :ivar tags: the tags of the knowledge source it came from.
    :ivar url: the record's link (``metadata["url"]`` of what the loader returned).
        Added in 1.1.
    :ivar metadata: the rest of the loader's metadata (dates, authors, …), JSON values.
        Added in 1.1.
    """

    id: str
    text: str
    source: str
    title: str
    heading: str = ""
    page: int | None = None
    ordinal: int = 0
    text_hash: str = ""
    file_type: str = ""
    tags: tuple[str, ...] = ()
    url: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        """The payload stored beside the vectors (JSON-serialisable). ``url`` and
        ``metadata`` are left out when empty, so chunks without them keep the payload
        (and fingerprint) they had before those fields existed."""
        data = asdict(self)
        data["tags"] = list(self.tags)
        if data["url"] is None:
            del data["url"]
        if not data["metadata"]:
            del data["metadata"]
        return data

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> "Chunk":
        """The chunk :meth:`payload` was made from (unknown keys are ignored)."""
        data = dict(payload)
        data["tags"] = tuple(data.get("tags") or ())
        data["metadata"] = dict(data.get("metadata") or {})
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class Passage:
    """A retrieved chunk with its score from one retriever.

    :ivar chunk: the chunk as it was indexed, every field kept.
    :ivar score: higher is better; a retriever returns passages with scores descending.
    :ivar signals: what the retriever measured beside the score, for the answerability
        check: ``dense`` (cosine of question and passage), ``sparse`` (BM25 score),
        ``dense_rank`` / ``sparse_rank`` (1-based rank in each search). Optional.
    """

    chunk: Chunk
    score: float
    signals: dict[str, float] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """The chunk's text."""
        return self.chunk.text


@dataclass(frozen=True)
class SearchFilters:
    """Metadata filters every retriever honours.

    :ivar source_prefix: only chunks whose ``source`` starts with this.
    :ivar file_types: only these file types (extensions without the dot).
    :ivar tags: only chunks carrying all of these tags.
    :ivar metadata: only chunks whose :attr:`Chunk.metadata` has each ``(key, value)``
        (a list-valued field matches when it contains the value). Added in 1.1.
    """

    source_prefix: str | None = None
    file_types: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    metadata: tuple[tuple[str, Any], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.source_prefix or self.file_types or self.tags or self.metadata)

    def matches(self, chunk: Chunk) -> bool:
        """Whether ``chunk`` passes every filter (what a retriever keeps)."""
        if self.source_prefix and not chunk.source.startswith(self.source_prefix):
            return False
        if self.file_types and chunk.file_type not in self.file_types:
            return False
        for key, value in self.metadata:
            found = chunk.metadata.get(key)
            if not (found == value or (isinstance(found, list) and value in found)):
                return False
        return all(t in chunk.tags for t in self.tags)


@dataclass(frozen=True)
class Message:
    """One turn of a conversation.

    :ivar role: who speaks: ``"system"``, ``"user"`` or ``"assistant"``.
    :ivar content: what is said.
    """

    role: Literal["system", "user", "assistant"]
    content: str


@dataclass
class Prompt:
    """What a prompt strategy hands a generator.

    ``messages`` is the chat-form input for LLM generators; ``question`` and
    ``passages`` are kept alongside so non-LLM generators (extractive) can work
    directly on them.

    :ivar messages: the model input, system message first.
    :ivar question: the question being answered.
    :ivar passages: the passages the prompt numbers ``[1]``, ``[2]``, …, in that order.
    :ivar metadata: anything the strategy wants to read again in ``finish()``.
    """

    messages: list[Message]
    question: str
    passages: list[Passage] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GenerationLimits:
    """How much a generator may produce for one answer.

    :ivar max_tokens: the longest answer, in the model's tokens.
    :ivar timeout_s: seconds before the answer is given up.
    """

    max_tokens: int = 256
    timeout_s: float = 60.0


@dataclass(frozen=True)
class GenerationUsage:
    """What one generation read and produced, as the generator counts it. Added in 1.2.

    :ivar prompt_tokens: the size of the input the generator read.
    :ivar completion_tokens: the size of the text it produced (before any checks).
    :ivar stopped_at_limit: it stopped because it reached its token limit
        (:attr:`GenerationLimits.max_tokens`, or its own configured cap), not because the
        answer was complete.
    :ivar unit: what was counted: ``"tokens"`` (the model's tokenizer) or ``"words"``.
    """

    prompt_tokens: int
    completion_tokens: int
    stopped_at_limit: bool = False
    unit: Literal["tokens", "words"] = "tokens"


class GeneratedText(str):
    """Generated text that carries its :class:`GenerationUsage`. Added in 1.2.

    Optional for generators: ``generate()`` may return one instead of a plain ``str``,
    and ``stream()`` may yield one (usually empty) as its last piece. It *is* a ``str``,
    so code that only reads text is unaffected; generators that return plain strings
    keep working and their usage is counted in words.
    """

    usage: GenerationUsage | None

    def __new__(cls, text: str = "", usage: GenerationUsage | None = None) -> "GeneratedText":
        obj = super().__new__(cls, text)
        obj.usage = usage
        return obj


def count_words(text: str) -> int:
    """Whitespace-separated words in ``text`` (the unit of :class:`GenerationUsage` for
    generators without a tokenizer)."""
    return len(text.split())


@dataclass
class Citation:
    """A passage an answer cites as ``[n]``.

    :ivar n: the number the answer text uses, ``[n]``.
    :ivar source: the document's path as cited.
    :ivar title: the document's or record's title.
    :ivar heading: the heading path of the passage.
    :ivar page: its page, for formats with pages.
    :ivar snippet: the passage's text, shortened to 300 characters.
    :ivar score: the retrieval score.
    :ivar url: the record's link (its loader's ``metadata["url"]``), when it has one.
    :ivar metadata: the record's other metadata (dates, authors, …).
    """

    n: int
    source: str
    title: str
    heading: str
    page: int | None
    snippet: str
    score: float
    url: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class Answer:
    """A finished answer, as the API and CLI return it.

    :ivar text: the answer, citing passages as ``[n]``.
    :ivar citations: the passages cited, by ``n``.
    :ivar domain: the domain that answered.
    :ivar index_version: the index version searched (None when nothing was searched).
    :ivar timings: milliseconds per step (``retrieve_ms``, ``generate_ms``, …).
    :ivar flags: what the checks found, e.g. ``contradiction-removed:1``, ``not-in-documents``.
    :ivar sentences: each sentence as shown, with its verdict (``supported``,
        ``replaced``, ``quoted``, ``neutral``, ``unsupported`` when kept marked,
        ``refusal``) and the passage span that backs it; removed sentences appear with
        empty text and the reason.
    :ivar related: with a refusal, the closest passages as related reading (not support).
    :ivar answerability: the decision made before generating (score, threshold,
        coverage, missing words); None when answerability is off.
    :ivar usage: what the generator read and produced: ``prompt_tokens``,
        ``completion_tokens``, ``total_tokens``, ``unit`` (``tokens`` or ``words``) and
        ``finish_reason`` (``length`` when the generator stopped at its token limit,
        else ``stop``); zeros when nothing was generated (a refusal). Added in 1.2.
    :ivar refused: whether the answer is a refusal (flag ``not-in-documents``).
    """

    text: str
    citations: list[Citation]
    domain: str
    index_version: str | None
    timings: dict[str, float] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)
    sentences: list[dict[str, Any]] = field(default_factory=list)
    related: list[Citation] = field(default_factory=list)
    answerability: dict[str, Any] | None = None
    usage: dict[str, Any] | None = None

    @property
    def refused(self) -> bool:
        """Whether the answer is a refusal."""
        return "not-in-documents" in self.flags or "no-passages" in self.flags

    def to_dict(self) -> dict[str, Any]:
        """The answer as JSON-serialisable data."""
        return asdict(self)


@dataclass
class TrainingResult:
    """What a trainer or fine-tuner returns: where its model is and what it measured.

    :ivar output_dir: the folder holding the saved model.
    :ivar metrics: what the run measured (``before``/``after`` evaluation, loss curve, …).
    :ivar kind: what the model is: ``"causal-lm"`` or ``"embedder"``.
    """

    output_dir: Path
    metrics: dict[str, Any] = field(default_factory=dict)
    kind: Literal["causal-lm", "embedder"] = "causal-lm"
