"""fourfold: turn one YAML domain manifest into a deployed assistant.

This module is the public API. Plugins import from ``fourfold`` only, never from its
submodules: what is listed in ``__all__`` is what the plugin API version promises.

A plugin in five lines::

    import fourfold

    FOURFOLD_PLUGIN_API = "1.1"

    @fourfold.hookimpl
    def register_prompt_strategies(register):
        register(MyStrategy)

See ``docs/writing_plugins.md`` for the guide and ``docs/plugin_hooks.md`` for every hook.
"""

from fourfold.components import (
    Component,
    ComponentConfig,
    ComponentContext,
    ComponentRef,
    Embedder,
    FineTuner,
    Generator,
    IndexRecords,
    IndexStore,
    Loader,
    NullProgress,
    Progress,
    PromptStrategy,
    Retriever,
    RetrieverConfig,
    Source,
    Trainer,
    VersionReader,
    VersionWriter,
)
from fourfold._version import __version__
from fourfold.artifacts import Artifact, ArtifactStore
from fourfold.deprecation import FourfoldDeprecationWarning
from fourfold.domain import Domain
from fourfold.evaluation.metrics import evaluate_run
from fourfold.errors import (
    ArtifactNotFound,
    ComponentError,
    ConfigError,
    DocumentPathError,
    FourfoldError,
    IndexVersionError,
    KnowledgeError,
    ManifestError,
    PluginError,
    TrainingError,
)
from fourfold.filestore import FileIndexStore
from fourfold.files import atomic_file, write_atomic, write_json_atomic
from fourfold.files import copy_tree
from fourfold.knowledge.sources import FolderSource
from fourfold.instructions import INSTRUCTION_REMOVED, looks_like_instruction, remove_instructions
from fourfold.manifest import Manifest, load_manifest
from fourfold.plugins import PLUGIN_API_VERSION, PluginHost, hookimpl
from fourfold.answering import AnswerRequest, citations_for
from fourfold.settings import Settings, get_settings
from fourfold.sizing import EmbeddingWork, GenerationWork, ModelShape, TrainingWork
from fourfold.uploads import UploadedDocument, UploadStore, check_document_path, upload_store
from fourfold.trust import AnswerChecker, CheckPolicy, check_answer
from fourfold.trust.checker import normalise_citation_forms
from fourfold.trust.text import answer_focus, answer_kind, content_words, sentence_spans, states_answer_kind
from fourfold.types import (
    Answer,
    Chunk,
    Citation,
    GeneratedText,
    GenerationLimits,
    GenerationUsage,
    LoadedDocument,
    Message,
    Passage,
    Prompt,
    SearchFilters,
    Section,
    SourceDocument,
    SourceFile,
    TrainingResult,
    chunk_point_id,
    content_hash,
)

__all__ = [
    "PLUGIN_API_VERSION",
    "Answer",
    "AnswerChecker",
    "CheckPolicy",
    "AnswerRequest",
    "Artifact",
    "ArtifactNotFound",
    "ArtifactStore",
    "Chunk",
    "Citation",
    "Component",
    "ComponentConfig",
    "ComponentContext",
    "ComponentError",
    "ComponentRef",
    "ConfigError",
    "Domain",
    "DocumentPathError",
    "Embedder",
    "EmbeddingWork",
    "FileIndexStore",
    "FineTuner",
    "FolderSource",
    "FourfoldDeprecationWarning",
    "FourfoldError",
    "INSTRUCTION_REMOVED",
    "GeneratedText",
    "GenerationLimits",
    "GenerationUsage",
    "Generator",
    "GenerationWork",
    "IndexRecords",
    "IndexStore",
    "IndexVersionError",
    "KnowledgeError",
    "LoadedDocument",
    "Loader",
    "Manifest",
    "ManifestError",
    "Message",
    "ModelShape",
    "NullProgress",
    "Passage",
    "PluginError",
    "PluginHost",
    "Progress",
    "Prompt",
    "PromptStrategy",
    "Retriever",
    "RetrieverConfig",
    "SearchFilters",
    "Section",
    "Settings",
    "Source",
    "SourceDocument",
    "SourceFile",
    "Trainer",
    "TrainingError",
    "TrainingResult",
    "TrainingWork",
    "UploadStore",
    "UploadedDocument",
    "VersionReader",
    "VersionWriter",
    "__version__",
    "atomic_file",
    "check_answer",
    "check_document_path",
    "content_words",
    "sentence_spans",
    "answer_kind",
    "answer_focus",
    "states_answer_kind",
    "normalise_citation_forms",
    "chunk_point_id",
    "citations_for",
    "content_hash",
    "evaluate_run",
    "copy_tree",
    "get_settings",
    "hookimpl",
    "load_manifest",
    "looks_like_instruction",
    "remove_instructions",
    "upload_store",
    "write_atomic",
    "write_json_atomic",
]
