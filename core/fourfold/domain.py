"""A manifest brought to life: the domain's components, built on first use.

:class:`Domain` is the layer that joins the others (``docs/architecture.md``): a
manifest bound to the plugin host, the settings, and the knowledge, index, answering,
trust and training machinery that work on it. Nothing below it imports it.
"""

from __future__ import annotations

import json
import threading
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from fourfold.answering import answer
from fourfold.artifacts import ArtifactStore
from fourfold.calling import call_component
from fourfold.components import (
    Component,
    ComponentContext,
    Embedder,
    Generator,
    Loader,
    PromptStrategy,
    Retriever,
)
from fourfold.domains import remember_domain
from fourfold.errors import ComponentError, FourfoldError, ManifestError
from fourfold.index import PublishedIndex
from fourfold.knowledge import DomainLoaders, knowledge_documents, loaders_for
from fourfold.manifest import Manifest, UseBlock, bind, load_manifest
from fourfold.manifest.binding import validation_problems
from fourfold.plugins import PluginHost, get_host
from fourfold.settings import Settings
from fourfold.trust.service import DomainTrust
from fourfold.types import LoadedDocument, Passage, SearchFilters

__all__ = ["Domain", "call_component"]  # call_component lives in fourfold.calling; importable here as before


def _config_key(config: Any) -> str:
    """A component configuration as canonical JSON (equal configs, equal keys)."""
    if isinstance(config, BaseModel):
        data: Any = config.model_dump(mode="json", by_alias=True)
    else:
        data = config
    return json.dumps(data, sort_keys=True, default=str)


class Domain:
    """One domain assistant: its manifest, state folder and components.

    Components are built lazily and shared by all requests of this domain; a component
    that fails to build raises a :class:`ComponentError` for this domain only.

    :param manifest: a manifest read from a file (bound by
        :func:`fourfold.manifest.load_manifest`) or built in code (then bound here, with
        :func:`fourfold.manifest.bind`).
    :raises ManifestError: a manifest built in code names a component ``host`` lacks, or
        a ``with:`` its component's ``Config`` refuses.
    """

    def __init__(self, manifest: Manifest, host: PluginHost, settings: Settings | None = None):
        self.manifest = manifest if manifest.is_bound else bind(manifest, host)
        self.host = host
        self.settings = settings or host.settings
        self.knowledge_loaders = DomainLoaders(self)
        self._lock = threading.RLock()
        self._instances: dict[int, Component] = {}
        self._shared: dict[tuple[str, str, str], Component] = {}
        self._building: set[tuple[str, str, str]] = set()

    @classmethod
    def from_file(
        cls,
        path: str | Path,
        host: PluginHost | None = None,
        settings: Settings | None = None,
        *,
        remember: bool = False,
        expect: str | None = None,
    ) -> "Domain":
        """The domain of the manifest file ``path``, read and bound to ``host`` (default:
        the process's host). Every command, the worker and the API open domains here.

        :param remember: record the manifest in the domain registry
            (:mod:`fourfold.domains`), so that later commands, workers and the API find
            the domain by its name.
        :param expect: the domain name the file must define (a manifest the registry
            recorded for that name).
        :raises ManifestError: the manifest is invalid (one line per problem).
        :raises FourfoldError: the file defines another domain than ``expect``.
        """
        host = host or get_host()
        manifest = load_manifest(path, host)
        if expect is not None and manifest.domain != expect:
            raise FourfoldError(f"{path}: expected the manifest of domain '{expect}', found domain '{manifest.domain}'")
        domain = cls(manifest, host, settings)
        if remember:
            remember_domain(manifest, domain.settings)
        return domain

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

    def context(self, plugin: str | None = None, *, kind: str | None = None, where: str | None = None) -> ComponentContext:
        return ComponentContext(
            domain=self.name,
            base_dir=self.manifest.base_dir,
            state_dir=self.state_dir,
            settings=self.settings,
            plugin=plugin,
            kind=kind,
            where=where,
            _services={
                "embedder": lambda: self.embedder,
                "resolve_model": lambda: self.resolve_model,
                "knowledge_documents": lambda: self.knowledge_documents,
                "component": lambda: self._component_for_ref,
            },
        )

    def build(self, kind: str, name: str, config: Any = None, *, where: str | None = None) -> Component:
        """Build a component of this domain by kind and name (not cached)."""
        spec = self.host.get(kind, name)
        if spec is None:
            raise ManifestError([f"{where or self.manifest.path}: {self.host.missing_component_message(kind, name)}"])
        if config is None:
            config = spec.cls.Config()
        try:
            return spec.cls(config, self.context(spec.plugin, kind=kind, where=where))
        except FourfoldError:
            raise
        except Exception as exc:
            raise ComponentError(
                f"could not be set up: {type(exc).__name__}: {exc}", kind=kind, name=name, plugin=spec.plugin, domain=self.name
            ) from exc

    def shared(self, kind: str, name: str, config: Any, *, where: str | None = None) -> Component:
        """The domain's one instance of component ``name`` with ``config`` (built on first
        use): equal kind, name and configuration share an instance."""
        key = (kind, name, _config_key(config))
        with self._lock:
            if key in self._building:
                raise ManifestError([f"{where or self.manifest.path}: {kind.replace('_', ' ')} '{name}' refers to itself"])
            found = self._shared.get(key)
            if found is None:
                self._building.add(key)
                try:
                    found = self._shared[key] = self.build(kind, name, config, where=where)
                finally:
                    self._building.discard(key)
            return found

    def component(self, block: UseBlock) -> Component:
        """The shared instance for a manifest block."""
        with self._lock:
            key = id(block)
            if key not in self._instances:
                # block.config: its with: as bound (fourfold.manifest.bind) to this host
                self._instances[key] = self.shared(block.kind, block.use, block.config, where=self._where(block))
            return self._instances[key]

    def identity(self, component: Component) -> dict[str, Any]:
        """What identifies the code behind ``component``: its kind, name and ``version``,
        its plugin and, for a third-party plugin, that plugin's distribution version
        (a builtin's code changes with fourfold's version, which index signatures hold)."""
        plugin = component.context.plugin if component.context else None
        record = self.host.plugins.get(plugin) if plugin else None
        return {
            "kind": component.kind,
            "name": component.name,
            "version": type(component).version,
            "plugin": plugin,
            "plugin_version": None if (record is None or record.builtin) else record.version,
        }

    def _where(self, block: UseBlock) -> str:
        path = next((p for p, b in self.manifest.blocks() if b is block), (block.kind,))
        return self.manifest.where(path)

    def _component_for_ref(self, ref: Any, kind: str | None, where: str | None) -> Component:
        if not kind:
            raise ComponentError(
                "context.component(ref) needs the kind of the component referred to; pass kind='retriever' (or another kind)",
                kind="component", name=str(getattr(ref, "use", ref)), plugin=None, domain=self.name,
            )
        use = getattr(ref, "use", None)
        if not isinstance(use, str):
            raise ManifestError([f"{where or self.manifest.path}: expected a component reference {{use: NAME, with: {{...}}}}, found {ref!r}"])
        nested_where = f"{where}.with(use: {use})" if where else f"use: {use}"
        spec = self.host.get(kind, use)
        if spec is None:
            raise ManifestError([f"{where or self.manifest.path}: {self.host.missing_component_message(kind, use)}"])
        try:
            config = spec.cls.Config.model_validate(ref.with_)
        except ValidationError as exc:
            problems = "; ".join(line.split(": ", 1)[1] for line in validation_problems(exc, "", spec.cls.Config))
            raise ManifestError([f"{nested_where}: with: is not valid for {kind.replace('_', ' ')} '{use}': {problems}"]) from None
        return self.shared(kind, use, config, where=nested_where)

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
        return loaders_for(self)

    def resolve_model(self, ref: str) -> Path:
        """``artifact:NAME`` → the artifact's model folder; the name of a generator that
        ships its own model (``smollm2``) → that model's folder, converted on first use;
        anything else → a path relative to the manifest."""
        if ref.startswith("artifact:"):
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

    def knowledge_documents(self) -> list[LoadedDocument]:
        """The domain's knowledge files, loaded (for trainers and fine-tuners)."""
        return knowledge_documents(self)

    # -- work ------------------------------------------------------------------------

    def answer(self, question: str, history: list | None = None) -> Any:
        """Answer ``question`` through the ``answer_question`` hook (and its wrappers); see
        :func:`fourfold.answering.answer` for the errors raised."""
        return answer(self, question, history=history)

    def sample_chunks(self, limit: int = 4000) -> tuple[str, list, int]:
        """Up to ``limit`` chunks of the version searched now, its name and chunk count."""
        return self.index.sample_chunks(limit)

    @cached_property
    def trust(self) -> DomainTrust:
        """The answerability decision of this domain's index versions."""
        return DomainTrust(self)

    @cached_property
    def index(self) -> PublishedIndex:
        """The published index version of this domain, followed across publishes."""
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
