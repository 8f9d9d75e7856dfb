"""What the advisor asks of a domain's components: their cost descriptions
(``cost_profile()``, part of the plugin API), and the model a reference names with its
shape — also for models that the manifest's own stages have yet to produce."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fourfold.errors import FourfoldError
from fourfold.sizing import EmbeddingWork, ModelShape

if TYPE_CHECKING:
    from fourfold.components import Component
    from fourfold.domain import Domain

__all__ = ["NotSized", "ResolvedModel", "cost_profile", "describe", "embedder_work", "resolve_model", "block_config"]


class NotSized(FourfoldError):
    """A component cannot be sized: it does not describe its cost, or describing it failed."""


def describe(component: "Component") -> str:
    """``trainer 'causal-lm' (fourfold_training)``: the component and its plugin, for messages."""
    plugin = component.context.plugin if component.context is not None else None
    return f"{component.kind.replace('_', ' ')} '{component.name}' ({plugin or 'no plugin'})"


def cost_profile(component: "Component") -> Any:
    """``component.cost_profile()``.

    :raises NotSized: it returned None, or raised (the message names the component, its
        plugin and the error).
    """
    try:
        work = component.cost_profile()  # type: ignore[attr-defined]
    except Exception as exc:  # a plugin's bug must not lose the rest of the advice
        raise NotSized(f"cannot be sized: {describe(component)}: its cost_profile() raised {type(exc).__name__}: {exc}") from exc
    if work is None:
        raise NotSized(f"cannot be sized: {describe(component)} does not describe its cost")
    return work


def embedder_work(domain: "Domain", notes: list[str] | None = None) -> EmbeddingWork | None:
    """The domain embedder's cost description, or None (with the reason added to ``notes``)."""
    try:
        return cost_profile(domain.embedder)
    except NotSized as exc:
        if notes is not None:
            notes.append(f"{exc}; its FLOPs are unknown and its batches assumed to hold 32 texts")
        return None


@dataclass
class ResolvedModel:
    """A model reference made concrete.

    :ivar folder: the saved model when it exists (tokenizer and weights), else None.
    :ivar exists: whether the weights exist now (an artifact not trained yet does not).
    """

    ref: str
    shape: ModelShape
    folder: Path | None
    exists: bool
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"ref": self.ref, "shape": self.shape.to_dict(), "folder": str(self.folder) if self.folder else None, "exists": self.exists, "note": self.note}


def block_config(domain: "Domain", block) -> Any:
    """A manifest block's validated ``with:`` (validated here when the manifest was
    built in code rather than loaded from a file)."""
    if block.config is not None:
        return block.config
    spec = domain.host.get(block.kind, block.use)
    if spec is None:
        raise FourfoldError(f"{block.kind} '{block.use}' is not registered")
    return spec.cls.Config.model_validate(block.with_)


def _planned(domain: "Domain", name: str, seen: set[str]) -> ResolvedModel | None:
    """The model a stage of this manifest will write as artifact ``name``, sized from
    that stage's own cost description."""
    from fourfold.training import planned_artifacts

    if name in seen:
        return None
    seen.add(name)
    stage = dict((artifact, stage) for stage, artifact in planned_artifacts(domain)).get(name)
    manifest = domain.manifest
    if stage == "training" and manifest.training is not None:
        work = cost_profile(domain.component(manifest.training))
        if work.model is not None:
            shape = ModelShape(**{**work.model.to_dict(), "source": f"{manifest.path}: training ({work.model.source}; not trained yet)"})
            return ResolvedModel(f"artifact:{name}", shape, None, False, note="to be trained by this manifest's training stage")
        if work.base_model:
            inner = _resolve(domain, work.base_model, seen)
            return ResolvedModel(f"artifact:{name}", inner.shape, None, False, note=f"to be trained by this manifest's training stage from {work.base_model}")
    if stage and stage.startswith("fine_tuning"):
        block = manifest.fine_tuning[int(stage.split("[")[1].rstrip("]"))]
        base = cost_profile(domain.component(block)).base_model
        if base:
            inner = _resolve(domain, base, seen)
            return ResolvedModel(f"artifact:{name}", inner.shape, None, False, note=f"to be fine-tuned by this manifest's {stage} from {base}")
    return None


def _shipped(domain: "Domain", ref: str) -> ResolvedModel | None:
    """The model of generator ``ref`` when it needs no configuration and describes its
    model (as :meth:`fourfold.Domain.resolve_model` takes such a name, without
    downloading or converting anything)."""
    spec = domain.host.get("generator", ref)
    if spec is None:
        return None
    try:
        config = spec.cls.Config()
    except ValueError:  # needs settings (a model folder, a URL): not a shipped model
        return None
    work = cost_profile(domain.build("generator", ref, config))
    if work.model is None:
        return None
    note = "" if work.model_folder else f"not prepared yet: the first use of '{ref}' gets its model ready"
    return ResolvedModel(ref, work.model, work.model_folder, True, note=note)


def _resolve(domain: "Domain", ref: str, seen: set[str]) -> ResolvedModel:
    from fourfold.artifacts import ArtifactStore

    if ref.startswith("artifact:"):
        name = ref.split(":", 1)[1]
        found = ArtifactStore(domain.settings).find(name)
        if found is not None and (found.model_dir / "config.json").is_file():
            return ResolvedModel(ref, ModelShape.from_folder(found.model_dir), found.model_dir, True)
        planned = _planned(domain, name, seen)
        if planned is not None:
            return planned
        raise FourfoldError(f"'{ref}' is neither an existing artifact nor made by a stage of {domain.manifest.path}")
    folder = domain.context().path(ref)
    if (folder / "config.json").is_file():
        return ResolvedModel(ref, ModelShape.from_folder(folder), folder, True)
    if not folder.exists():
        shipped = _shipped(domain, ref)
        if shipped is not None:
            return shipped
    raise FourfoldError(f"model '{ref}' resolved to {folder}, which holds no config.json")


def resolve_model(domain: "Domain", ref: str) -> ResolvedModel:
    """``artifact:NAME`` (existing, or planned by this manifest's stages), a model folder
    relative to the manifest, or the name of a generator that ships its model.

    :raises FourfoldError: the reference leads nowhere (:class:`NotSized` when a
        component on the way does not describe its cost).
    """
    return _resolve(domain, ref, set())
