"""A manifest brought to life: the domain's components, built on first use."""

from __future__ import annotations

import logging
import threading
import time
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fourfold.components import (
    Component,
    ComponentContext,
    Embedder,
    Generator,
    Loader,
    PromptStrategy,
    Retriever,
)
from fourfold.errors import ComponentError, FourfoldError, ManifestError
from fourfold.manifest import Manifest, UseBlock, load_manifest
from fourfold.settings import Settings
from fourfold.types import Passage, SearchFilters

if TYPE_CHECKING:
    from fourfold.index import PublishedIndex
    from fourfold.plugins import PluginHost
    from fourfold.trust.service import DomainTrust

__all__ = ["Domain", "call_component"]

log = logging.getLogger("fourfold.plugins")


def call_component(component: Component, method: str, *args: Any, **kwargs: Any) -> Any:
    """Call ``component.method`` and turn any exception into a :class:`ComponentError`
    naming the component, its plugin and its domain.

    With ``FOURFOLD_TRACE_PLUGINS=1`` each call is logged (logger ``fourfold.plugins``)
    with the component, its plugin, its domain and how long it took.
    """
    ctx = component.context
    if not (ctx is not None and ctx.settings.trace_plugins):
        try:
            return getattr(component, method)(*args, **kwargs)
        except FourfoldError:
            raise
        except Exception as exc:
            raise _component_error(component, f"{method}() raised {type(exc).__name__}: {exc}") from exc
    started = time.perf_counter()
    outcome = ""
    try:
        return getattr(component, method)(*args, **kwargs)
    except FourfoldError as exc:
        outcome = f" raised {type(exc).__name__}"
        raise
    except Exception as exc:
        outcome = f" raised {type(exc).__name__}"
        raise _component_error(component, f"{method}() raised {type(exc).__name__}: {exc}") from exc
    finally:
        took = (time.perf_counter() - started) * 1000
        log.info(
            "component %s %s.%s plugin=%s domain=%s took=%.2fms%s",
            component.kind, component.name, method, ctx.plugin or "-", ctx.domain, took, outcome,
        )


def _component_error(component: Component, message: str) -> ComponentError:
    ctx = component.context
    return ComponentError(
        message,
        kind=component.kind,
        name=component.name,
        plugin=ctx.plugin if ctx else None,
        domain=ctx.domain if ctx else None,
    )


class Domain:
    """One domain assistant: its manifest, state folder and components.

    Components are built lazily and shared by all requests of this domain; a component
    that fails to build raises a :class:`ComponentError` for this domain only.
    """

    def __init__(self, manifest: Manifest, host: "PluginHost", settings: Settings | None = None):
        self.manifest = manifest
        self.host = host
        self.settings = settings or host.settings
        self._lock = threading.RLock()
        self._instances: dict[int, Component] = {}

    @classmethod
    def from_file(cls, path: str | Path, host: "PluginHost | None" = None, settings: Settings | None = None) -> "Domain":
        from fourfold.plugins import get_host

        host = host or get_host()
        return cls(load_manifest(path, host), host, settings)

    # -- identity ----------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.manifest.domain

    @property
    def title(self) -> str:
        return self.manifest.title

    @property
    def state_dir(self) -> Path:
        return self.settings.domain_dir(self.name)

    def __repr__(self) -> str:
        return f"<Domain {self.name!r}>"

    # -- components -------------------------------------------------------------------

    def context(self, plugin: str | None = None) -> ComponentContext:
        return ComponentContext(
            domain=self.name,
            base_dir=self.manifest.base_dir,
            state_dir=self.state_dir,
            settings=self.settings,
            plugin=plugin,
            _services={
                "embedder": lambda: self.embedder,
                "resolve_model": lambda: self.resolve_model,
                "knowledge_documents": lambda: self.knowledge_documents,
            },
        )

    def build(self, kind: str, name: str, config: Any = None) -> Component:
        """Build a component of this domain by kind and name (not cached)."""
        spec = self.host.get(kind, name)
        if spec is None:
            raise ManifestError([f"{self.manifest.path}: {self.host.missing_component_message(kind, name)}"])
        if config is None:
            config = spec.cls.Config()
        try:
            return spec.cls(config, self.context(spec.plugin))
        except FourfoldError:
            raise
        except Exception as exc:
            raise ComponentError(
                f"could not be set up: {type(exc).__name__}: {exc}", kind=kind, name=name, plugin=spec.plugin, domain=self.name
            ) from exc

    def component(self, block: UseBlock) -> Component:
        """The shared instance for a manifest block."""
        with self._lock:
            key = id(block)
            if key not in self._instances:
                config = block.config
                if config is None:  # manifest built in code, not loaded from a file
                    spec = self.host.get(block.kind, block.use)
                    config = spec.cls.Config.model_validate(block.with_) if spec else None
                self._instances[key] = self.build(block.kind, block.use, config)
            return self._instances[key]

    @cached_property
    def embedder(self) -> Embedder:
        return self.component(self.manifest.embedding)  # type: ignore[return-value]

    @cached_property
    def retriever(self) -> Retriever:
        return self.component(self.manifest.retrieval)  # type: ignore[return-value]

    @cached_property
    def prompt_strategy(self) -> PromptStrategy:
        return self.component(self.manifest.prompt)  # type: ignore[return-value]

    @cached_property
    def generator(self) -> Generator:
        return self.component(self.manifest.generation)  # type: ignore[return-value]

    @property
    def loaders(self) -> dict[str, Loader]:
        """Loader instances by file extension (builtins win an extension, then names in
        order), configured from the manifest's ``knowledge.limits``."""
        from fourfold.knowledge import loaders_for

        return loaders_for(self)

    def resolve_model(self, ref: str) -> Path:
        """``artifact:NAME`` → the artifact's model folder; the name of a generator that
        ships its own model (``smollm2``) → that model's folder, converted on first use;
        anything else → a path relative to the manifest."""
        if ref.startswith("artifact:"):
            from fourfold.artifacts import ArtifactStore

            return ArtifactStore(self.settings).model_dir(ref.split(":", 1)[1])
        path = self.context().path(ref)
        if not path.exists():
            shipped = self._shipped_model(ref)
            if shipped is not None:
                return shipped
        return path

    def _shipped_model(self, ref: str) -> Path | None:
        """The model folder of generator ``ref`` when it needs no configuration and
        exposes ``model_path()`` (e.g. ``smollm2``), so fine-tuners can use it as a base."""
        spec = self.host.get("generator", ref)
        if spec is None:
            return None
        try:
            config = spec.cls.Config()
        except ValueError:  # needs settings (a model folder, a URL): not a shipped model
            return None
        model_path = getattr(self.build("generator", ref, config), "model_path", None)
        return Path(model_path()) if callable(model_path) else None

    def knowledge_documents(self) -> list:
        """The domain's knowledge files, loaded (for trainers and fine-tuners)."""
        from fourfold.training import knowledge_documents

        return knowledge_documents(self)

    # -- work ------------------------------------------------------------------------

    def answer(self, question: str, history: list | None = None) -> Any:
        """Answer ``question`` through the ``answer_question`` hook (and its wrappers); see
        :func:`fourfold.runtime.answer` for the errors raised."""
        from fourfold.runtime import answer

        return answer(self, question, history=history)

    def sample_chunks(self, limit: int = 4000) -> tuple[str, list, int]:
        """Up to ``limit`` chunks of the version searched now, its name and chunk count."""
        return self.index.sample_chunks(limit)

    @cached_property
    def trust(self) -> "DomainTrust":
        """The answerability decision of this domain's index versions."""
        from fourfold.trust.service import DomainTrust

        return DomainTrust(self)

    @cached_property
    def index(self) -> "PublishedIndex":
        """The published index version of this domain, followed across publishes."""
        from fourfold.index import PublishedIndex

        return PublishedIndex(self)

    def search(
        self,
        query: str,
        *,
        top_k: int | None = None,
        filters: SearchFilters | None = None,
        retriever: Retriever | None = None,
    ) -> tuple[list[Passage], str | None]:
        """Passages for ``query`` from the published version, and that version's name."""
        return self.index.search(query, top_k=top_k, filters=filters, retriever=retriever)
