"""The component contract: one abstract base class per kind.

A component is a class with a unique kebab-case ``name`` and a pydantic ``Config``
model. A manifest refers to it by ``name`` and its ``with:`` block is validated against
``Config``; the host then builds it as ``Component(config, context)``. Components
validate anything further in ``__init__`` and fail early with a
:class:`fourfold.ComponentError`-friendly message.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Callable, ClassVar, Iterable, Iterator, Mapping, Protocol, Sequence

from pydantic import BaseModel, ConfigDict, Field

from fourfold.sizing import EmbeddingWork, GenerationWork, TrainingWork
from fourfold.types import (
    Chunk,
    GenerationLimits,
    LoadedDocument,
    Message,
    Passage,
    Prompt,
    SearchFilters,
    SourceDocument,
    SourceFile,
    TrainingResult,
)

if TYPE_CHECKING:
    import numpy as np

    from fourfold.settings import Settings

__all__ = [
    "Component",
    "ComponentConfig",
    "ComponentContext",
    "ComponentRef",
    "Progress",
    "NullProgress",
    "Loader",
    "Source",
    "Embedder",
    "Retriever",
    "RetrieverConfig",
    "IndexRecords",
    "IndexStore",
    "VersionWriter",
    "VersionReader",
    "PromptStrategy",
    "Generator",
    "Trainer",
    "FineTuner",
    "KINDS",
    "KIND_HOOKS",
    "NAME_PATTERN",
]

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


class ComponentConfig(BaseModel):
    """Base for component ``Config`` models: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ComponentRef(BaseModel):
    """Another registered component that a component builds on, as a ``Config`` field.

    In a manifest it is written like a top-level block, ``{use: NAME, with: {...}}``;
    its ``with:`` is validated against that component's own ``Config`` (errors name the
    manifest's file, line and path, e.g. ``retrieval.with.base.with.top_k``). Build it
    with :meth:`ComponentContext.component`::

        class Config(fourfold.RetrieverConfig):
            base: fourfold.ComponentRef = fourfold.ComponentRef(use="hybrid")

        def __init__(self, config, context):
            super().__init__(config, context)
            self.base = context.component(self.config.base)

    :cvar kind: the kind of the component referred to; ``""`` (the default) means the
        kind of the component whose ``Config`` holds the reference. Subclass to refer to
        another kind: ``class GeneratorRef(fourfold.ComponentRef): kind = "generator"``.

    .. versionadded:: 1.1
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    kind: ClassVar[str] = ""
    use: str = Field(description="Name of a registered component.")
    with_: dict[str, Any] = Field(default_factory=dict, alias="with", description="That component's configuration.")


class Progress(Protocol):
    """Where long work reports how far it got (a rich bar, a Celery task state, …)."""

    def start(self, stage: str, total: int | None = None) -> None:
        """Begin ``stage`` with ``total`` units of work (None: unknown)."""

    def advance(self, n: int = 1) -> None:
        """``n`` more units of the current stage are done."""


class NullProgress:
    """A :class:`Progress` that reports nowhere."""

    def start(self, stage: str, total: int | None = None) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass


@dataclass
class ComponentContext:
    """What a component may know about the domain it serves.

    :ivar domain: the domain's name (from the manifest).
    :ivar base_dir: folder of the manifest file; relative paths resolve against it.
    :ivar state_dir: this domain's private folder in the state dir, for caches and
        models; created on first use.
    :ivar settings: process settings (state dir, broker, Qdrant URL, …).
    :ivar plugin: the plugin that registered the component.
    :ivar kind: the component's kind (``"retriever"``, …).
    :ivar where: where the component is configured, e.g. ``"domain.yaml: retrieval"``
        (for messages).
    """

    domain: str
    base_dir: Path
    state_dir: Path
    settings: "Settings"
    plugin: str | None = None
    kind: str | None = None
    where: str | None = None
    _services: dict[str, Callable[[], Any]] = field(default_factory=dict, repr=False)

    def path(self, value: str | Path) -> Path:
        """Resolve a path from the manifest against the manifest's folder."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else (self.base_dir / p).resolve()

    def embedder(self) -> "Embedder":
        """The domain's embedder (shared, built on first use)."""
        return self._service("embedder")

    def resolve_model(self, ref: str) -> Path:
        """Turn ``artifact:NAME`` or a path into a model directory."""
        return self._service("resolve_model")(ref)

    def component(self, ref: "ComponentRef", *, kind: str | None = None) -> "Component":
        """Build (or share) the registered component ``ref`` names, configured by its
        ``with:``, validated against that component's own ``Config``.

        Components of the domain with the same kind, name and configuration are one
        instance: a reference to ``{use: hybrid}`` gets the domain's own retriever when
        ``retrieval`` is ``{use: hybrid}``. Nothing of the referring component's own
        configuration reaches the component built.

        :param kind: the kind to look up; default ``ref.kind``, else this component's kind.
        :raises fourfold.ManifestError: no such component, or its ``with:`` is invalid.

        .. versionadded:: 1.1
        """
        return self._service("component")(ref, kind or ref.kind or self.kind, self.where)

    def knowledge_documents(self) -> list[LoadedDocument]:
        """The domain's knowledge, loaded (one entry per readable file, in path order)."""
        return self._service("knowledge_documents")()

    def _service(self, key: str) -> Any:
        try:
            factory = self._services[key]
        except KeyError:
            raise RuntimeError(f"no '{key}' is available to components of domain '{self.domain}'") from None
        return factory()


class Component(ABC):
    """Base of every component kind.

    An abstract base class: the host refuses to register a subclass that leaves one of
    its kind's abstract methods unimplemented, has no kebab-case ``name``, or whose
    ``Config`` is not a pydantic model. The host builds a component as
    ``cls(cls.Config.model_validate(with_block), context)``.

    :cvar kind: the component kind (set by the kind's base class).
    :cvar name: unique kebab-case name the manifest uses.
    :cvar Config: pydantic model for the manifest's ``with:`` block.
    :cvar version: the version of what the component produces; bump it when its output
        for the same input changes (a loader reads differently, an embedder's vectors
        change). Index fingerprints include it, with the plugin's distribution version,
        so a refresh re-reads or re-embeds what it affects (added in 1.1).
    """

    kind: ClassVar[str] = ""
    name: ClassVar[str] = ""
    Config: ClassVar[type[BaseModel]] = ComponentConfig
    description: ClassVar[str] = ""
    version: ClassVar[str] = ""

    def __init__(self, config: BaseModel | None = None, context: ComponentContext | None = None):
        self.config = config if config is not None else self.Config()
        self.context = context

    def __repr__(self) -> str:
        return f"<{self.kind} {self.name!r}>"


# -------------------------------------------------------------------------
# loader
# -------------------------------------------------------------------------


class Loader(Component):
    """Reads one file format into sections.

    A manifest configures loaders per source (``knowledge.sources[].loaders``); the
    ``with:`` given there is validated against ``Config``.

    :cvar extensions: lower-case extensions without the dot (``("md", "markdown")``).
    """

    kind = "loader"
    extensions: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def load(self, file: SourceFile) -> LoadedDocument | list[LoadedDocument]:
        """Read ``file``: one document, or a list of *records* (rows, messages, entries),
        each with its own title, sections and metadata, each cited on its own.

        ``metadata["url"]`` becomes the citation's link; other JSON-serialisable values
        (dates, authors, …) are stored on every chunk of the record, returned in
        citations and usable as search filters. ``metadata["warnings"]`` lists partial
        problems (a row skipped, a page not read) as strings, each starting with where
        (``"line 4: …"``); they reach the refresh report and the user.

        Raise any exception for a broken file: the refresh records it as a warning
        naming the file and carries on."""


# -------------------------------------------------------------------------
# source
# -------------------------------------------------------------------------


class Source(Component):
    """Where a domain's documents come from: a folder, an S3 bucket, a website.

    Each entry of ``knowledge.sources`` selects one (``{use: s3, with: {...}}``; the
    ``{path: …}`` form is the builtin ``folder``). A refresh lists the source, compares
    each document's marker with the one recorded at the last refresh and opens only the
    documents that are new or changed; fourfold saves their bytes under the domain's
    state dir and hands loaders a :class:`fourfold.SourceFile` for that local copy.

    .. versionadded:: 1.3
    """

    kind = "source"

    @property
    def location(self) -> str:
        """Where the source is, for messages (``"s3://bucket/prefix/"``); its name unless
        overridden."""
        return self.name

    @abstractmethod
    def documents(self, previous: Mapping[str, str], warn: Callable[[str], None]) -> Iterable[SourceDocument]:
        """Every document the source holds now, each with its change marker, without
        downloading what is unchanged.

        :param previous: key → marker recorded at the last refresh; a source that asks
            conditionally (HTTP validators) finds what it stored there, and gives the
            same marker back for a document that did not change.
        :param warn: call with one line per document skipped (too large, not allowed,
            …), naming it and saying why; the line reaches the refresh report.
        :returns: the documents; one missing from it is removed from the index.

        Raise (any exception) when the source cannot be listed at all (unreachable,
        access denied): the refresh fails, naming the source, and the published index
        stays as it is."""

    @abstractmethod
    def open(self, document: SourceDocument) -> BinaryIO:
        """A binary file object with ``document``'s bytes (fourfold closes it). Called
        only for documents that must be read. Raise when they cannot be had: the refresh
        warns, naming the document, and keeps what the index had of it."""


# -------------------------------------------------------------------------
# embedder
# -------------------------------------------------------------------------


class Embedder(Component):
    """Turns text into L2-normalised float32 vectors."""

    kind = "embedder"

    @property
    @abstractmethod
    def model_id(self) -> str:
        """Identity of the weights; it changes whenever vectors would change."""

    @property
    @abstractmethod
    def dimension(self) -> int:
        """Length of each vector."""

    @property
    def max_tokens(self) -> int:
        """Longest input (in tokens) the model reads; chunks are cut below it."""
        return 256

    @abstractmethod
    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """Character ``(start, end)`` of each token of ``text`` (no special tokens).
        Chunking cuts text only at these boundaries."""

    @abstractmethod
    def embed_documents(self, texts: Sequence[str], progress: Progress | None = None) -> "np.ndarray":
        """Vectors for passages, shape ``(len(texts), dimension)``, in input order."""

    def embed_query(self, text: str) -> "np.ndarray":
        """Vector for a search query, shape ``(dimension,)``."""
        return self.embed_documents([text])[0]

    def cost_profile(self) -> EmbeddingWork | None:
        """What embedding costs, for ``fourfold advise``: the batch size and the
        encoder's :class:`fourfold.ModelShape`. None (the default): the embedder cannot
        be sized; the advice says so and leaves its FLOPs unknown.

        .. versionadded:: 1.4
        """
        return None


# -------------------------------------------------------------------------
# retriever and the index stores it owns
# -------------------------------------------------------------------------


class RetrieverConfig(ComponentConfig):
    """Settings every retriever accepts."""

    top_k: int = Field(5, ge=1, le=100, description="Passages returned per question.")


class VersionWriter(ABC):
    """Writes one new index version. Used by exactly one process."""

    @abstractmethod
    def upsert(self, chunks: Sequence[Chunk], vectors: "np.ndarray | None") -> None:
        """Add or replace chunks (``vectors`` row i belongs to ``chunks[i]``)."""

    @abstractmethod
    def delete(self, chunk_ids: Sequence[str]) -> None:
        """Remove chunks by id; unknown ids are ignored."""

    @abstractmethod
    def count(self) -> int:
        """Chunks in the version so far."""

    @abstractmethod
    def commit(self) -> None:
        """Finish the version (build indexes, flush, close). After this it is immutable."""

    @abstractmethod
    def abort(self) -> None:
        """Close and throw the unfinished version away."""


class VersionReader(ABC):
    """Reads one published index version."""

    version: str

    @abstractmethod
    def count(self) -> int:
        """Chunks in this version."""

    @abstractmethod
    def chunks(self) -> Iterator[Chunk]:
        """Every chunk, in no particular order."""

    @abstractmethod
    def close(self) -> None:
        """Release files and locks."""


class IndexStore(ABC):
    """Where a retriever keeps index versions (a folder per version, or a server).

    ``location`` arguments are the folders fourfold gives each version; a store that
    keeps its data elsewhere (a Qdrant server) still uses the folder name as key.
    """

    @property
    @abstractmethod
    def store_id(self) -> str:
        """Identifies the on-disk layout (engine, vector size, sparse settings). A
        version built under another id cannot be reused as a base."""

    @property
    def needs_vectors(self) -> bool:
        """Whether ``upsert`` needs dense vectors (False for purely lexical stores)."""
        return True

    @abstractmethod
    def create_version(self, location: Path, base: Path | None) -> VersionWriter:
        """Start a new version at ``location``, starting as a copy of ``base`` when given
        (an earlier committed version of the same ``store_id``)."""

    @abstractmethod
    def open_version(self, location: Path) -> VersionReader:
        """Open a committed version for reading."""

    def publish(self, location: Path) -> None:
        """Make ``location`` the version that readers of a shared engine see (e.g. an
        alias swap on a Qdrant server). fourfold records the published version itself."""

    def delete_version(self, location: Path) -> None:
        """Remove whatever the store keeps for ``location`` beyond the folder itself."""

    def retain(self, locations: Sequence[Path]) -> None:
        """Drop what the store keeps for versions other than ``locations`` (the versions
        fourfold keeps: published, kept for rollback, held by the quality gate). Called
        after a publish and when leftovers are cleared; stores that keep one folder per
        version have nothing to do here (``delete_version`` did it)."""

    def shared_records(self) -> "IndexRecords | None":
        """Where the index's records (published pointer, catalogs, history) live when the
        store is shared by several hosts, e.g. a Qdrant server. None (the default): the
        records live in the state dir beside the version folders, for one host."""
        return None


class IndexRecords(ABC):
    """Small JSON records of one domain's index, kept where every host sees them.

    A store shared by several hosts (:meth:`IndexStore.shared_records`) keeps fourfold's
    index records here: the published pointer, version catalogs and reports, the
    history. Keys are short strings such as ``"catalog/v000004"``; values are JSON
    objects. Each operation on one record is atomic.
    """

    location: str = ""
    """Where the records live, for messages (e.g. a server URL and collection)."""

    @abstractmethod
    def get(self, key: str) -> dict[str, Any] | None:
        """The record ``key`` (None when absent)."""

    @abstractmethod
    def put(self, key: str, value: dict[str, Any]) -> None:
        """Create or replace the record ``key``."""

    @abstractmethod
    def put_new(self, key: str, value: dict[str, Any]) -> bool:
        """Create ``key`` only if it does not exist yet, atomically; whether it was created."""

    @abstractmethod
    def put_fenced(self, key: str, value: dict[str, Any], token: int) -> bool:
        """Create or replace ``key`` with ``value`` and ``{"fence": token}``, atomically,
        only when the record is absent or holds a fence no higher than ``token``;
        whether it now holds this value."""

    @abstractmethod
    def raise_fence(self, key: str, token: int) -> int:
        """Raise the record's ``fence`` field to ``token`` if it is lower (atomically,
        creating ``{"fence": token}`` when absent); the fence it holds afterwards."""

    @abstractmethod
    def keys(self, prefix: str) -> list[str]:
        """The keys that start with ``prefix``, sorted (values are not read)."""

    @abstractmethod
    def items(self, prefix: str) -> list[tuple[str, dict[str, Any]]]:
        """Every record whose key starts with ``prefix``, sorted by key."""

    @abstractmethod
    def delete(self, keys: Sequence[str]) -> None:
        """Remove these records; missing ones are ignored."""


class Retriever(Component):
    """Finds the passages of a domain's knowledge that answer a question."""

    kind = "retriever"
    Config: ClassVar[type[BaseModel]] = RetrieverConfig

    @abstractmethod
    def open_store(self) -> IndexStore:
        """The index store this retriever reads (and the lifecycle writes)."""

    @abstractmethod
    def search(
        self,
        reader: VersionReader,
        query: str,
        *,
        top_k: int | None = None,
        filters: SearchFilters | None = None,
    ) -> list[Passage]:
        """At most ``top_k`` (default ``config.top_k``) passages matching ``filters``,
        best first, scores descending."""


# -------------------------------------------------------------------------
# prompt strategy and generator
# -------------------------------------------------------------------------


class PromptStrategy(Component):
    """Turns a question and passages into a prompt, and checks the model's output.

    :cvar uses_retrieval: False for strategies that answer without passages.
    """

    kind = "prompt_strategy"
    uses_retrieval: ClassVar[bool] = True

    @abstractmethod
    def build(self, question: str, passages: list[Passage], history: list[Message]) -> Prompt:
        """The prompt for ``question``."""

    def finish(self, text: str, prompt: Prompt) -> tuple[str, list[int], list[str]]:
        """Post-process generated ``text``.

        :returns: the final text, the passage numbers (1-based, into
            ``prompt.passages``) it cites, and flags (e.g. ``"invalid-citation:[7]"``).
        """
        return text, [], []

    def visible_text(self, partial: str, prompt: Prompt) -> str:
        """While an answer streams: the part of the output so far that may be shown
        (e.g. without hidden reasoning or a half-written citation). It must grow
        monotonically as ``partial`` grows; :meth:`finish` still decides the final text."""
        return partial


class Generator(Component):
    """Produces answer text from a prompt."""

    kind = "generator"

    @abstractmethod
    def generate(self, prompt: Prompt, limits: GenerationLimits) -> str:
        """The whole answer text."""

    def stream(self, prompt: Prompt, limits: GenerationLimits) -> Iterable[str]:
        """The answer in pieces, as the backend produces them."""
        yield self.generate(prompt, limits)

    def prepare(self, progress: Progress) -> None:
        """Get ready to answer (download, convert or load a model) so that the first
        question is not slow. ``fourfold up`` calls it before serving; optional."""

    def cost_profile(self) -> GenerationWork | None:
        """What answering costs, for ``fourfold advise``: the language model it runs
        (a :class:`fourfold.ModelShape`, its tokenizer folder, ``max_tokens``), or that
        it runs elsewhere, or neither (then the time per question ``fourfold calibrate``
        measured for it is used). Must not load or download the model. None (the
        default): the generator cannot be sized, and the advice says so.

        .. versionadded:: 1.4
        """
        return None

    @classmethod
    def calibration_configs(cls, model: str | None, *, quick: bool = False) -> list[dict[str, Any]]:
        """``with:`` blocks that ``fourfold calibrate`` builds this generator with to time
        it on this machine (load, time to first text, decoding rate; for a generator
        without a model, time per question). [] (the default): it is not timed.

        :param model: folder of a small causal LM the calibration just trained (None when
            none was), for generators that read a model folder.
        :param quick: the calibration was asked to be quick: offer nothing that takes long
            the first time (a download, a conversion).

        .. versionadded:: 1.4
        """
        return []


# -------------------------------------------------------------------------
# trainer and fine-tuner
# -------------------------------------------------------------------------


class Trainer(Component):
    """Trains a model from scratch on domain text.

    fourfold runs a trainer for a manifest's ``training:`` block and keeps what it
    saves as an artifact (see :class:`fourfold.ArtifactStore`). A run is skipped and
    the artifact reused while the config, :meth:`inputs` and the text are unchanged.

    :cvar produces: what the saved model is: ``"causal-lm"``, ``"embedder"`` or
        ``"claim-verifier"`` (see :meth:`claim_verifier`).
    """

    kind = "trainer"
    produces: ClassVar[str] = "causal-lm"

    def inputs(self) -> dict[str, Any]:
        """Identity of what the run reads besides its config and the domain text (data
        file hashes, base models), as JSON-serialisable values. Any change retrains."""
        return {}

    def cost_profile(self) -> TrainingWork | None:
        """What one run computes, for ``fourfold advise``: the model, sequences per step
        and their tokens, the steps or time budget (:class:`fourfold.TrainingWork`).
        Must be quick: no training, no model loading. None (the default): the trainer
        cannot be sized, and the advice says so.

        .. versionadded:: 1.4
        """
        return None

    @classmethod
    def calibration_configs(cls, *, quick: bool = False) -> list[dict[str, Any]]:
        """``with:`` blocks of small runs that ``fourfold calibrate`` times on this machine,
        smallest model first: two sizes or more separate a step's fixed overhead from its
        compute. The calibration reads the step times from ``progress`` (one ``advance``
        per optimiser step), the FLOPs from :meth:`cost_profile` and the parameters from
        the saved model. [] (the default): not timed; the rates of the trainer that is
        are used.

        :param quick: fewer steps; the figures may be rougher.

        .. versionadded:: 1.4
        """
        return []

    @abstractmethod
    def train(
        self, texts: Sequence[str], output_dir: Path, progress: Progress, *, work_dir: Path | None = None
    ) -> TrainingResult:
        """Train on ``texts`` (the domain's knowledge, one string per document).

        :param output_dir: where to save the finished model, transformers-loadable,
            tokenizer included.
        :param progress: where to report how far the run got.
        :param work_dir: a folder that survives an interrupted run with the same inputs:
            keep checkpoints there and resume from the newest one; fourfold removes it
            after success. None: keep them in a ``.work`` folder inside ``output_dir``
            and remove it when done.
        :returns: the output folder and metrics (``before``/``after`` evaluation,
            throughput, loss curve, …), recorded in the artifact.
        """


class FineTuner(Component):
    """Adapts an existing model (a generator or the embedder) to domain data.

    A fine-tuner finds its base model with ``self.context.resolve_model(ref)``
    (``artifact:NAME``, a folder, or a builtin name such as ``smollm2``), its data
    with ``self.context.path(...)`` (relative to the manifest) and, when it derives
    examples from the knowledge base, ``self.context.knowledge_documents()``.

    :cvar produces: what the saved model is: ``"causal-lm"``, ``"embedder"`` or
        ``"claim-verifier"`` (see :meth:`claim_verifier`).
    """

    kind = "fine_tuner"
    produces: ClassVar[str] = "causal-lm"

    @property
    def base_model(self) -> str | None:
        """The base model reference (``artifact:NAME``, folder, builtin name), recorded
        in the artifact's lineage; None when the fine-tuner picks its own default."""
        return None

    @property
    def uses_knowledge(self) -> bool:
        """Whether the run reads the knowledge base (its text then joins the inputs
        that decide whether an artifact can be reused)."""
        return False

    def inputs(self) -> dict[str, Any]:
        """Identity of what the run reads besides its config and base model (data file
        hashes), as JSON-serialisable values. Any change re-runs the fine-tuning."""
        return {}

    def cost_profile(self) -> TrainingWork | None:
        """What one run computes, for ``fourfold advise``: the model, sequences per step
        and their tokens, the steps or time budget (:class:`fourfold.TrainingWork`).
        Must be quick: no training, no model loading. None (the default): the fine-tuner
        cannot be sized, and the advice says so.

        .. versionadded:: 1.4
        """
        return None

    @classmethod
    def calibration_configs(cls, base_model: str, *, quick: bool = False) -> list[dict[str, Any]]:
        """``with:`` blocks of a small run that ``fourfold calibrate`` times on this
        machine, as for :meth:`Trainer.calibration_configs`.

        :param base_model: folder of a small causal LM the calibration just trained, to
            start from.
        :param quick: fewer steps; the figures may be rougher.

        .. versionadded:: 1.4
        """
        return []

    def claim_verifier(self, model_dir: Path) -> Callable[[Sequence[tuple[str, str]]], list[tuple[str, float]]] | None:
        """For a fine-tuner whose models check answer claims (``produces =
        "claim-verifier"``): load the model it saved in ``model_dir`` as a function of
        (evidence sentence, claim) pairs that returns each pair's label
        (``supported``, ``contradicted`` or ``unsupported``) and its probability, all
        pairs in one call. fourfold loads it once per domain when the manifest names it
        in ``trust.verifier``. None (the default): the fine-tuner makes no verifier.

        .. versionadded:: 1.4
        """
        return None

    @abstractmethod
    def fine_tune(self, output_dir: Path, progress: Progress, *, work_dir: Path | None = None) -> TrainingResult:
        """Fine-tune as configured and save the result in ``output_dir``
        (transformers-loadable, tokenizer included).

        :param work_dir: as for :meth:`Trainer.train`: checkpoints that let an
            interrupted run resume.
        :returns: the output folder and metrics, with ``before``/``after`` evaluation.
        """


KINDS: dict[str, type[Component]] = {
    "trainer": Trainer,
    "fine_tuner": FineTuner,
    "prompt_strategy": PromptStrategy,
    "retriever": Retriever,
    "loader": Loader,
    "embedder": Embedder,
    "generator": Generator,
    "source": Source,
}
"""Component kinds by name."""

KIND_HOOKS: dict[str, str] = {
    "trainer": "register_trainers",
    "fine_tuner": "register_fine_tuners",
    "prompt_strategy": "register_prompt_strategies",
    "retriever": "register_retrievers",
    "loader": "register_loaders",
    "embedder": "register_embedders",
    "generator": "register_generators",
    "source": "register_sources",
}
"""The registration hook of each kind."""
