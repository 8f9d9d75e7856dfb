"""Pydantic models of a domain manifest. These models are the manifest's definition;
``docs/manifest.md`` describes them and ``fourfold schema`` exports them."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationInfo, field_validator, model_validator

__all__ = [
    "Manifest",
    "Knowledge",
    "Source",
    "Chunking",
    "Refresh",
    "Gate",
    "Limits",
    "Serve",
    "Trust",
    "UseBlock",
    "EmbeddingBlock",
    "TrainingBlock",
    "FineTuningBlock",
    "PromptBlock",
    "RetrievalBlock",
    "GenerationBlock",
    "parse_duration",
    "format_path",
    "DEFAULT_INCLUDE",
]

DEFAULT_INCLUDE = ["**/*.md", "**/*.markdown", "**/*.txt", "**/*.html", "**/*.htm", "**/*.pdf"]
DOMAIN_PATTERN = r"^[a-z][a-z0-9-]{0,62}$"
_DURATION = re.compile(r"^\s*(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m)?\s*(?:(\d+)\s*s)?\s*$")


def parse_duration(text: str) -> timedelta:
    """``"30m"``, ``"1h30m"``, ``"2d"``, ``"45s"`` → timedelta."""
    m = _DURATION.match(text or "")
    if not m or not any(m.groups()):
        raise ValueError(f"'{text}' is not a duration like '30m', '1h', '1h30m', '2d' or '45s'")
    d, h, mi, s = (int(g or 0) for g in m.groups())
    return timedelta(days=d, hours=h, minutes=mi, seconds=s)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class UseBlock(_Strict):
    """Picks a registered component by name and configures it."""

    kind: ClassVar[str] = ""
    use: str = Field(description="Name of a registered component of this kind.")
    with_: dict[str, Any] = Field(default_factory=dict, alias="with", description="The component's configuration.")
    _config: Any = PrivateAttr(default=None)

    @property
    def config(self) -> Any:
        """The ``with:`` block validated against the component's ``Config``."""
        return self._config


class EmbeddingBlock(UseBlock):
    kind: ClassVar[str] = "embedder"
    use: str = "minilm"


ARTIFACT_NAME_PATTERN = r"^[a-z][a-z0-9-]{0,62}$"


class TrainingBlock(UseBlock):
    kind: ClassVar[str] = "trainer"
    artifact: str | None = Field(
        None,
        pattern=ARTIFACT_NAME_PATTERN,
        description="Name of the artifact this run produces (default: '<domain>-<use>'); "
        "other blocks refer to it as 'artifact:<name>'.",
    )


class FineTuningBlock(UseBlock):
    kind: ClassVar[str] = "fine_tuner"
    artifact: str | None = Field(
        None,
        pattern=ARTIFACT_NAME_PATTERN,
        description="Name of the artifact this run produces (default: '<domain>-<use>'); "
        "other blocks refer to it as 'artifact:<name>'.",
    )


class PromptBlock(UseBlock):
    kind: ClassVar[str] = "prompt_strategy"
    use: str = "grounded-citations"


class RetrievalBlock(UseBlock):
    kind: ClassVar[str] = "retriever"
    use: str = "hybrid"


class GenerationBlock(UseBlock):
    kind: ClassVar[str] = "generator"
    use: str = "extractive"


class Source(_Strict):
    """Where documents come from: a folder (``path``), or a registered source component
    (``use``/``with``, e.g. ``{use: s3, with: {bucket: docs}}``)."""

    kind: ClassVar[str] = "source"

    path: str | None = Field(None, description="Folder, relative to the manifest file (the builtin 'folder' source).")
    use: str | None = Field(None, description="Name of a registered source component (s3, web, …) instead of a folder.")
    with_: dict[str, Any] = Field(default_factory=dict, alias="with", description="The source component's configuration.")
    include: list[str] = Field(
        default_factory=lambda: list(DEFAULT_INCLUDE), description="Glob patterns to read (folders; other sources take theirs in with:)."
    )
    exclude: list[str] = Field(default_factory=list, description="Glob patterns to skip (folders; other sources take theirs in with:).")
    tags: list[str] = Field(default_factory=list, description="Tags stored on every chunk, usable as search filters.")
    prefix: str | None = Field(None, description="Prefix of this source's paths in citations (default: none).")
    loaders: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Settings of loaders for this source's files: loader name → its with: block, "
        "validated against that loader's Config.",
    )
    _config: Any = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _folder_by_name(cls, data: Any) -> Any:
        """``{use: folder, with: {path, include, exclude}}`` is the ``{path: …}`` form."""
        if not isinstance(data, dict) or data.get("use") != "folder":
            return data
        options = data.get("with") or {}
        if not isinstance(options, dict):
            return data
        unknown = sorted(set(options) - {"path", "include", "exclude"})
        if unknown:
            raise ValueError(f"the folder source takes path, include and exclude in with:, not {', '.join(unknown)}")
        out = {k: v for k, v in data.items() if k not in ("use", "with")}
        for key in ("path", "include", "exclude"):
            if key in options:
                if key in out:
                    raise ValueError(f"'{key}' is given both beside use: folder and in its with:; give it once")
                out[key] = options[key]
        return out

    @model_validator(mode="after")
    def _folder_or_component(self) -> "Source":
        if (self.path is None) == (self.use is None):
            raise ValueError(
                "give either 'path' (a folder) or 'use' (a source component such as s3 or web, configured by 'with'), not "
                + ("both" if self.path is not None else "neither")
            )
        if self.use is not None:
            misplaced = sorted({"include", "exclude"} & self.model_fields_set)
            if misplaced:
                raise ValueError(
                    f"{' and '.join(misplaced)} beside 'use: {self.use}' apply to folders only; give the source's own "
                    f"options in its with: block (e.g. with: {{{misplaced[0]}: [...]}})"
                )
        elif self.with_:
            raise ValueError("'with' configures a source component; a folder source ('path') takes include/exclude beside it")
        return self

    @property
    def is_folder(self) -> bool:
        """Whether this is a folder (``path``) rather than a source component."""
        return self.use is None

    @property
    def config(self) -> Any:
        """A source component's ``with:`` validated against its ``Config`` (None for folders)."""
        return self._config

    def identity(self) -> dict[str, Any]:
        """What of the source decides the documents (its loader settings do not: each
        document records the loader that read it)."""
        if self.is_folder:
            return self.model_dump(exclude={"loaders", "use", "with_"})
        return self.model_dump(exclude={"loaders", "path", "include", "exclude"}, by_alias=True)

    @field_validator("prefix")
    @classmethod
    def _plain_relative_prefix(cls, value: str | None) -> str | None:
        """A prefix is a plain relative path; ``./a//b/`` is ``a/b``."""
        if value is None:
            return None
        cleaned = value.strip().strip("/")
        parts = PurePosixPath(cleaned).parts if cleaned else ()
        if "\\" in cleaned or ".." in parts:
            raise ValueError("should be a plain relative path like 'handbook' or 'legal/contracts'")
        return "/".join(p for p in parts if p != ".") or None

    def folder(self, base_dir: Path) -> Path:
        """The source's folder: ``path`` resolved against ``base_dir``."""
        assert self.path is not None, "a source component has no folder"
        path = Path(self.path).expanduser()
        return (path if path.is_absolute() else base_dir / path).resolve()

    def folder_problem(self, base_dir: Path) -> str | None:
        """What is wrong with the source's folder (None when it is a folder, or when the
        source is a component)."""
        if self.path is None:
            return None
        folder = self.folder(base_dir)
        if folder.is_dir():
            return None
        return f"'{self.path}' should be a folder; {folder} {'is not a folder' if folder.exists() else 'does not exist'}"


class Chunking(_Strict):
    max_tokens: int = Field(256, ge=16, le=512, description="Chunk size in embedder tokens.")
    overlap: int = Field(32, ge=0, description="Tokens shared by consecutive chunks.")

    @model_validator(mode="after")
    def _overlap_below_size(self) -> "Chunking":
        if self.overlap >= self.max_tokens:
            raise ValueError(f"overlap ({self.overlap}) must be smaller than max_tokens ({self.max_tokens})")
        return self


class Refresh(_Strict):
    """When the knowledge base is refreshed in the background: ``every`` or ``cron``."""

    every: str | None = Field(None, description="Interval like '30m', '1h', '1d'.")
    cron: str | None = Field(None, description="Five-field cron expression, e.g. '0 3 * * *'.")

    @field_validator("every")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None and parse_duration(value).total_seconds() < 10:
            raise ValueError("refresh intervals shorter than 10s are not supported")
        return value

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is None:
            return value
        fields = value.split()
        if len(fields) != 5:
            raise ValueError(f"'{value}' has {len(fields)} fields; cron needs 5 (minute hour day month weekday)")
        from celery.schedules import crontab

        try:
            # crontab's positional order is minute, hour, day_of_week, …: name each field.
            minute, hour, day_of_month, month_of_year, day_of_week = fields
            crontab(minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month_of_year, day_of_week=day_of_week)
        except Exception as exc:  # celery raises ValueError subclasses with a useful text
            raise ValueError(f"'{value}' is not a valid cron expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> "Refresh":
        if (self.every is None) == (self.cron is None):
            raise ValueError("give exactly one of 'every' or 'cron'")
        return self


class Gate(_Strict):
    """Checks a new index version must pass before it is published."""

    min_chunks: int = Field(1, ge=0, description="Refuse to publish a version with fewer chunks.")
    max_removed_fraction: float | None = Field(
        None, ge=0, le=1, description="Refuse to publish when more than this share of documents disappeared at once."
    )
    min_ndcg_at_10: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Keep a new version unpublished when its nDCG@10 on the knowledge.eval questions is below this.",
    )
    max_drop: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Keep a new version unpublished when its nDCG@10 on the knowledge.eval questions is more than "
        "this below the published version's.",
    )

    min_gain: float | None = Field(
        None,
        ge=-1,
        le=1,
        description="Publish a new version only when its nDCG@10 on the knowledge.eval questions beats the published "
        "version's by at least this (used when adopting a tuned embedder).",
    )

    @property
    def measures_quality(self) -> bool:
        """Whether publishing waits for a measurement on the evaluation questions."""
        return self.min_ndcg_at_10 is not None or self.max_drop is not None or self.min_gain is not None


class Limits(_Strict):
    max_file_mb: float = Field(50, gt=0, description="Files larger than this are skipped with a warning.")
    max_pdf_pages: int = Field(2000, ge=1, description="PDF pages beyond this are not read.")
    allow_hard_links: bool = Field(
        False,
        description="Read files that have more than one name (hard links). Off: such files are skipped with a "
        "warning, since a hard link cannot be told from the file elsewhere whose contents it shares.",
    )


class Knowledge(_Strict):
    sources: list[Source] = Field(min_length=1)
    chunking: Chunking = Field(default_factory=Chunking)
    refresh: Refresh | None = None
    keep_versions: int = Field(3, ge=1, le=100, description="Published versions kept for rollback.")
    gate: Gate = Field(default_factory=Gate)
    limits: Limits = Field(default_factory=Limits)
    eval: str | None = Field(
        None,
        description="JSONL file (relative to the manifest) of evaluation questions, one {\"question\": …, \"source\": …} "
        "a line naming the document that answers it (\"sources\": a list; \"passage\": text the answering chunk "
        "holds). Scored by 'fourfold eval retrieval MANIFEST' and by the gate's min_ndcg_at_10 / max_drop.",
    )

    @model_validator(mode="after")
    def _gate_has_questions(self) -> "Knowledge":
        if self.gate.measures_quality and not self.eval:
            raise ValueError("gate.min_ndcg_at_10, gate.max_drop and gate.min_gain score each new version on evaluation questions: "
                             "name their file in knowledge.eval")
        return self


class Serve(_Strict):
    tokens_env: str | None = Field(
        None, description="Environment variable holding comma-separated bearer tokens for this domain."
    )
    write_tokens_env: str | None = Field(
        None,
        description="Environment variable holding comma-separated write tokens: the only tokens that may upload or delete "
        "the domain's documents (the 'upload' source). Unset: one is generated, kept in the state dir and printed by "
        "'fourfold serve' and 'fourfold up'.",
    )
    max_question_chars: int = Field(
        4000, ge=1, le=32000, description="Longer questions are refused with 422 before anything runs."
    )


class Trust(_Strict):
    """How answers are checked before anyone sees them (every generator, every strategy
    that retrieves)."""

    answerability: Literal["calibrated", "off"] | float = Field(
        "calibrated",
        description="'calibrated': refuse questions the passages do not answer, with a threshold fitted per index "
        "version; a number in [0, 1]: that threshold on the calibrated score; 'off': never refuse before generating.",
    )
    unsupported: Literal["remove", "mark"] | None = Field(
        None,
        description="Sentences no passage states: 'remove' them, or 'mark' them (kept uncited, verdict 'unsupported'). "
        "Default: the prompt strategy's choice (remove, for the builtin strategies).",
    )
    min_support: float | None = Field(
        None, ge=0, le=1, description="Share of a sentence's content words one passage must hold to state it (default: the strategy's)."
    )
    eval_questions: str | None = Field(
        None,
        description="JSONL file (relative to the manifest) of questions the documents answer, one {\"question\": …} a "
        "line: used beside generated questions to calibrate answerability (default: knowledge.eval).",
    )
    verifier: str | None = Field(
        None,
        description="A trained claim verifier: 'artifact:NAME' or a folder relative to the manifest, saved by fine-tuner "
        "'verifier-cross-encoder'. Loaded (once per domain) only when verifier_mode is not 'rules'.",
    )
    verifier_mode: Literal["rules", "verifier", "both"] = Field(
        "rules",
        description="Who decides that a passage contradicts an answer sentence: 'rules' (negation, opposites, numbers), "
        "'verifier' (the trained verifier; the rules still decide support) or 'both' (contradicted when either says so).",
    )
    refusal: str = Field(
        "The documents of this assistant do not cover this question.",
        min_length=1,
        max_length=500,
        description="What the assistant says when its documents do not answer.",
    )

    @field_validator("answerability", mode="before")
    @classmethod
    def _yes_and_no(cls, value: Any) -> Any:
        # YAML reads a bare `off` (and no/false) as False, which would otherwise become
        # the threshold 0.0: said `off`, meant off.
        if isinstance(value, bool):
            return "calibrated" if value else "off"
        return value

    @field_validator("verifier_mode")
    @classmethod
    def _verifier_named(cls, value: str, info: ValidationInfo) -> str:
        if value != "rules" and not info.data.get("verifier"):
            raise ValueError(f"verifier_mode '{value}' needs trust.verifier (an 'artifact:NAME' or a folder); with none, use 'rules'")
        return value

    @field_validator("answerability")
    @classmethod
    def _threshold_range(cls, value: Any) -> Any:
        if isinstance(value, float) and not 0 <= value <= 1:
            raise ValueError("a fixed answerability threshold must be between 0 and 1")
        return value


def _one_or_list_schema(schema: dict[str, Any]) -> None:
    """A list field whose validator also takes one item (``fine_tuning``): the JSON
    Schema says so too, or editors would flag a manifest that validates."""
    item = schema.pop("items")
    schema.pop("type", None)
    schema["anyOf"] = [{"type": "array", "items": item}, item]


def format_path(loc: tuple[str | int, ...]) -> str:
    """``("knowledge", "sources", 0, "path")`` → ``knowledge.sources[0].path``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class Manifest(_Strict):
    """One domain assistant."""

    fourfold: Literal[1] = Field(description="Manifest format version.")
    domain: str = Field(pattern=DOMAIN_PATTERN, description="Short lower-case name; also the model name in the API.")
    title: str = Field(min_length=1)
    description: str = ""
    knowledge: Knowledge | None = None
    embedding: EmbeddingBlock = Field(default_factory=lambda: EmbeddingBlock(use="minilm"))
    training: TrainingBlock | None = None
    fine_tuning: list[FineTuningBlock] = Field(default_factory=list, json_schema_extra=_one_or_list_schema)
    prompt: PromptBlock = Field(default_factory=lambda: PromptBlock(use="grounded-citations"))
    retrieval: RetrievalBlock = Field(default_factory=lambda: RetrievalBlock(use="hybrid"))
    generation: GenerationBlock = Field(default_factory=lambda: GenerationBlock(use="extractive"))
    serve: Serve = Field(default_factory=Serve)
    trust: Trust = Field(default_factory=Trust)
    _path: Path | None = PrivateAttr(default=None)
    _doc: Any = PrivateAttr(default=None)  # the parsed YAML with line numbers
    _file: str | None = PrivateAttr(default=None)  # the path as the user gave it, for messages
    _bound: bool = PrivateAttr(default=False)  # every with: validated (fourfold.manifest.bind)

    @property
    def path(self) -> Path | None:
        """The file this manifest was read from (or stands for: :meth:`with_path`)."""
        return self._path

    @property
    def is_bound(self) -> bool:
        """Whether :func:`fourfold.manifest.bind` validated every ``with:`` block, so that
        each block's ``config`` holds its component's configuration."""
        return self._bound

    def with_path(self, path: str | Path | None, *, file: str | None = None) -> "Manifest":
        """A copy of this manifest that stands for the file ``path``: relative paths in
        it resolve against that file's folder, and messages name it (``file`` as the
        user wrote it, default ``path``). For manifests built in code from another one
        (a variant with another embedder, an evaluation configuration). The copy is not
        bound; a :class:`fourfold.Domain` binds it.

        .. versionadded:: 1.3
        """
        copy = self.model_copy(deep=True)
        copy._path = Path(path).resolve() if path is not None else None
        copy._file = file or (str(path) if path is not None else None)
        copy._doc = None
        copy._bound = False
        return copy

    def where(self, loc: tuple[str | int, ...]) -> str:
        """``file:line: field.path`` of ``loc`` (no line for a manifest not read from a file)."""
        where = self._file or self._path or "manifest"
        line = f":{self._doc.line_of(loc)}" if self._doc is not None else ""
        return f"{where}{line}: {format_path(loc)}"

    @property
    def base_dir(self) -> Path:
        """Folder that relative paths in the manifest resolve against."""
        return self._path.parent if self._path else Path.cwd()

    @field_validator("fine_tuning", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, dict) else value

    def located(self, loc: tuple[str | int, ...], message: str) -> str:
        """``file:line: field.path: message``, the form of every problem found in a
        manifest (the line is that of ``loc``, or of its closest parent written out)."""
        where = self._file or self._path or "manifest"
        line = self._doc.line_of(loc) if self._doc is not None else 1
        return f"{where}:{line}: {format_path(loc)}: {message}"

    def blocks(self) -> list[tuple[tuple[str | int, ...], UseBlock]]:
        """Every component block with its path in the manifest."""
        out: list[tuple[tuple[str | int, ...], UseBlock]] = [(("embedding",), self.embedding)]
        if self.training:
            out.append((("training",), self.training))
        out.extend((("fine_tuning", i), b) for i, b in enumerate(self.fine_tuning))
        out += [(("prompt",), self.prompt), (("retrieval",), self.retrieval), (("generation",), self.generation)]
        return out
