"""Request and response bodies of the HTTP API (what ``/openapi.json`` documents)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator, model_validator
from pydantic_core import PydanticCustomError

__all__ = [
    "sse_schema",
    "ErrorDetail",
    "ErrorResponse",
    "CitationOut",
    "AnswerOut",
    "HistoryMessage",
    "Filters",
    "AskRequest",
    "ChatMessage",
    "ChatCompletionRequest",
    "ChatCompletion",
    "ModelCard",
    "ModelList",
    "ResponseFormat",
    "Usage",
    "TaskOut",
    "RefreshRequest",
    "RefreshResponse",
    "RollbackRequest",
    "RollbackResponse",
    "DomainStatus",
    "PluginsResponse",
    "Health",
    "MAX_QUESTION_CHARS",
]

def _integer(value: Any) -> Any:
    # JSON's true and "20" are not numbers; 20.0 is the integer 20 (as JSON Schema says).
    if isinstance(value, (bool, str, bytes)):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


def _number(value: Any) -> Any:
    if isinstance(value, (bool, str, bytes)):
        raise PydanticCustomError("float_type", "Input should be a valid number")
    return value


# Request fields take JSON's types as they are: pydantic's default conversion would read
# "top_k": true as 1 and "stream": "yes" as true, hiding a client's mistake. Booleans
# are StrictBool; numbers are checked by a "before" validator on each model (an
# annotated type would hide their minimum and maximum from the OpenAPI schema).
Boolean = StrictBool

MAX_QUESTION_CHARS = 32_000
"""Hard ceiling on any question; each domain's ``serve.max_question_chars`` is lower."""


def sse_schema(events: list[str] | None, description: str) -> dict[str, Any]:
    """OpenAPI description of a server-sent event stream: each event is an object with
    its ``event`` name (when named) and its ``data`` (a JSON document, or ``[DONE]``)."""
    event: dict[str, Any] = {"type": "string"}
    if events:
        event["enum"] = events
    return {
        "schema": {
            "type": "object",
            "description": description,
            "properties": {"event": event, "data": {"type": "string"}, "id": {"type": "string"}, "retry": {"type": "integer"}},
            "required": ["data"],
        }
    }


class ErrorDetail(BaseModel):
    message: str = Field(description="What went wrong, for people.")
    type: str = Field(description="Error class, e.g. authentication_error, invalid_request_error, not_found_error.")
    code: str | None = Field(None, description="Machine-readable code, e.g. invalid_token, model_not_found.")
    param: str | None = Field(None, description="The request field at fault, when one is.")


class ErrorResponse(BaseModel):
    """Every error: the same shape as OpenAI's, so OpenAI clients show the message."""

    error: ErrorDetail


class CitationOut(BaseModel):
    n: int = Field(description="The number the answer text cites as [n].")
    source: str = Field(description="Path of the document, relative to its knowledge folder.")
    title: str
    heading: str
    page: int | None = Field(None, description="PDF page, when the document has pages.")
    snippet: str = Field(description="The cited passage (up to 300 characters).")
    score: float = Field(description="Retrieval score of the passage (higher is better).")
    url: str | None = Field(None, description="Link to the cited record, when its loader gave one.")
    metadata: dict[str, Any] = Field(default_factory=dict, description="The cited record's metadata (dates, authors, …).")


class SpanOut(BaseModel):
    n: int = Field(description="The passage (citation number) the span is in.")
    start: int | None = Field(None, description="Character offset of the span in the passage's text.")
    end: int | None = Field(None, description="End offset (exclusive).")
    text: str = Field(description="The passage's words that back the sentence.")


class SentenceOut(BaseModel):
    text: str = Field(description="The sentence as shown (empty when it was removed).")
    verdict: str = Field(
        description="supported, replaced (contradicted by a passage, replaced by its sentence), contradicted "
        "(removed), unsupported (removed, or kept marked), quoted (taken from a passage), neutral (too short to "
        "check, e.g. 'Yes.') or refusal."
    )
    citations: list[int] = Field(default_factory=list)
    span: SpanOut | None = None
    note: str | None = Field(None, description="Why a sentence was replaced or removed.")


class AnswerabilityOut(BaseModel):
    answerable: bool
    score: float = Field(description="Calibrated score in [0, 1]; below the threshold the question is refused.")
    threshold: float
    coverage: float = Field(description="Share of the question's topic words (weighted by rarity) found in the top passages.")
    dense: float = Field(description="Cosine of the question and the closest passage (0 when the retriever does not report it).")
    missing: list[str] = Field(description="Topic words of the question no top passage contains (stemmed).")


class AnswerOut(BaseModel):
    text: str
    citations: list[CitationOut]
    sentences: list[SentenceOut] = Field(default_factory=list, description="Each sentence with its verdict and the span that backs it.")
    related: list[CitationOut] = Field(default_factory=list, description="With a refusal: the closest passages, as related reading.")
    answerability: AnswerabilityOut | None = Field(None, description="The answerability decision (before generating).")
    domain: str
    index_version: str | None = Field(description="The index version the passages came from.")
    timings: dict[str, float] = Field(description="Milliseconds per stage: retrieve_ms, prompt_ms, generate_ms, total_ms, …")
    flags: list[str] = Field(
        description="What the checks did, e.g. not-in-documents (refused), contradiction-removed:N, "
        "unsupported-removed:N, extracted, invalid-citation:[7], redacted-instructions:N."
    )
    usage: AnswerUsage | None = Field(None, description="What the generator read and produced, and why it stopped.")


class HistoryMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["user", "assistant"]
    content: str = Field(max_length=MAX_QUESTION_CHARS)


class Filters(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source_prefix: str | None = Field(None, max_length=500, description="Only documents whose path starts with this.")
    file_types: list[str] = Field(default_factory=list, max_length=20, description="Only these extensions, e.g. [\"pdf\"].")
    tags: list[str] = Field(default_factory=list, max_length=20, description="Only chunks carrying all these tags.")


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(
        min_length=1,
        max_length=MAX_QUESTION_CHARS,
        description="The question (the domain may allow less); white space alone is an empty question (422).",
        json_schema_extra={"pattern": r"\S"},
    )
    history: list[HistoryMessage] = Field(default_factory=list, max_length=50, description="Earlier turns, oldest first.")
    max_tokens: int | None = Field(None, ge=1, le=8192, description="Most tokens to generate (capped by the generator's config).")
    top_k: int | None = Field(None, ge=1, le=50, description="Passages to retrieve (default: the manifest's).")
    filters: Filters | None = None
    stream: Boolean = Field(False, description="Answer as server-sent events: 'delta' events, then one 'answer' event.")

    _numbers = field_validator("max_tokens", "top_k", mode="before")(_integer)


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str = Field(max_length=100)
    text: str | None = Field(None, max_length=MAX_QUESTION_CHARS)


class ChatMessage(BaseModel):
    """One message; like ``/ask``'s history, each holds at most 32,000 characters (the
    question, the last user message, is further limited by the domain)."""

    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: Annotated[str, Field(max_length=MAX_QUESTION_CHARS)] | Annotated[list[ContentPart], Field(max_length=100)] | None = None

    @model_validator(mode="after")
    def _size(self) -> "ChatMessage":
        if len(self.text()) > MAX_QUESTION_CHARS:
            raise ValueError(f"a message may hold at most {MAX_QUESTION_CHARS} characters; this one has {len(self.text())}")
        return self

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text or "" for p in self.content or [] if p.type in ("text", "input_text"))


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: Boolean | None = None


class ResponseFormat(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str = Field(max_length=100, description="Only 'text' is served: a checked answer cannot be guaranteed to be JSON.")


class ChatCompletionRequest(BaseModel):
    """OpenAI's chat-completions request. ``model`` is the domain. Sampling parameters are
    accepted for compatibility; each domain's manifest decides how it generates.
    ``response_format`` other than ``{"type": "text"}`` is refused with 400."""

    model_config = ConfigDict(extra="allow")
    model: str = Field(min_length=1, max_length=100, description="The domain to ask.")
    messages: list[ChatMessage] = Field(min_length=1, max_length=100)
    stream: Boolean | None = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(None, ge=1, le=8192)
    max_completion_tokens: int | None = Field(None, ge=1, le=8192)
    n: int | None = Field(1, ge=1, le=1, description="Only 1 is supported.")
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    user: str | None = Field(None, max_length=256)
    response_format: ResponseFormat | None = None

    _integers = field_validator("max_tokens", "max_completion_tokens", "n", mode="before")(_integer)
    _numbers = field_validator("temperature", "top_p", mode="before")(_number)


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop", "length"] = Field(
        "stop", description="'length' when the generator stopped at max_tokens (the checked answer may be shorter still)."
    )


class Usage(BaseModel):
    prompt_tokens: int = Field(description="What the generator read: its tokenizer's tokens (words for extractive).")
    completion_tokens: int = Field(description="What it produced, before the checks.")
    total_tokens: int


class AnswerUsage(Usage):
    unit: Literal["tokens", "words"] = Field(description="What was counted.")
    finish_reason: Literal["stop", "length"] = Field(description="'length': the generator stopped at its token limit.")


class FourfoldExtra(BaseModel):
    domain: str
    index_version: str | None
    timings: dict[str, float]
    flags: list[str]
    sentences: list[SentenceOut] = Field(default_factory=list)
    related: list[CitationOut] = Field(default_factory=list)
    answerability: AnswerabilityOut | None = None
    usage: AnswerUsage | None = None


class ChatCompletion(BaseModel):
    """OpenAI's chat completion, plus ``citations`` (the passages the answer cites, by
    their [n]) and ``fourfold`` (index version, timings, check flags)."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage = Field(description="The generator's counts (words for the extractive generator; zeros for a refusal).")
    citations: list[CitationOut] = Field(description="fourfold extra field: the sources cited as [n] in the answer.")
    fourfold: FourfoldExtra = Field(description="fourfold extra field: index version, timings and check flags.")


class ModelCard(BaseModel):
    id: str = Field(description="The domain's name; use it as 'model'.")
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "fourfold"
    title: str = Field(description="The domain's title from its manifest.")
    description: str = ""


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class TaskOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    name: str
    domain: str
    state: str = Field(
        description="queued, running, requeued, retrying, succeeded, failed, skipped (covered_by: the follow-up run "
        "that does its work), released (requeued_as: the task that does its work) or dead."
    )
    existing: bool = Field(False, description="True: this task was already queued (or recorded as the follow-up); the request joined it.")
    follows: str | None = Field(None, description="A follow-up run: it starts when this running task ends, so that what changed meanwhile is indexed.")
    stuck: str | None = Field(None, description="Why nothing runs this unfinished task (its worker died).")
    progress: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    error: str | None = None


class RefreshRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    full: Boolean = Field(False, description="Rebuild from scratch instead of applying only what changed.")


class RefreshResponse(BaseModel):
    task: TaskOut


class RollbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: str | None = Field(
        None, pattern=r"^v\d{1,9}$", description="Version to publish again, e.g. v000003 (default: the one before)."
    )


class RollbackResponse(BaseModel):
    domain: str
    published: str = Field(description="The version now served.")


class IndexSummary(BaseModel):
    model_config = ConfigDict(extra="allow")
    published: str | None = Field(description="The version served (null: nothing built yet).")
    documents: int
    chunks: int
    created: str | None = None
    versions: list[dict[str, Any]] = Field(default_factory=list, description="Versions kept for rollback.")
    last_refresh: dict[str, Any] | None = Field(None, description="The latest refresh: event, version, time, counts.")


class DomainStatus(BaseModel):
    domain: str
    title: str
    index: IndexSummary
    task: dict[str, Any] | None = Field(None, description="The refresh running now, with stage and done/total.")
    components: dict[str, str] = Field(description="Component used per block: prompt, retrieval, generation, embedding.")


class PluginsResponse(BaseModel):
    plugins: list[dict[str, Any]]


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    version: str
    domains: int = Field(description="Domains this server answers for.")


class DocumentOut(BaseModel):
    path: str = Field(description="The document's path among the domain's uploads, e.g. guides/cats.md.")
    size: int = Field(description="Bytes.")
    sha256: str = Field(description="SHA-256 of its bytes (hex).")
    uploaded: str = Field(description="When it was uploaded, ISO 8601 in UTC.")


class DocumentList(BaseModel):
    domain: str
    store: str = Field(description="Where the uploads are kept (a folder of the state dir, or s3://bucket/prefix/domain/).")
    documents: list[DocumentOut]


class RefreshQueued(BaseModel):
    queued: bool = Field(description="True: a refresh was queued (or one already queued covers this change).")
    task: TaskOut | None = Field(None, description="The refresh that will index the change.")
    reason: str | None = Field(None, description="Why no refresh could be queued (the change is kept all the same).")


class DocumentChange(BaseModel):
    domain: str
    path: str
    action: Literal["created", "replaced", "unchanged", "deleted"] = Field(
        description="created, replaced, unchanged (the same bytes were already there; no refresh queued) or deleted."
    )
    document: DocumentOut | None = Field(None, description="The document now kept (none after a delete).")
    refresh: RefreshQueued | None = Field(None, description="The refresh queued to index the change (none when unchanged).")
