"""Reading a manifest file into a validated :class:`Manifest`, with errors for people."""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from fourfold.components import ComponentRef
from fourfold.errors import ManifestError
from fourfold.manifest.models import Manifest, format_path
from fourfold.manifest.yamlfile import YamlDocument, YamlProblem, read_yaml

if TYPE_CHECKING:
    from fourfold.plugins import PluginHost

__all__ = ["load_manifest", "validate_manifest_file", "format_path"]


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _model_at(model: type[BaseModel], loc: tuple[str | int, ...]) -> type[BaseModel] | None:
    """The model class found by walking ``loc`` from ``model`` (None when not a model)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = next(
            (f for name, f in current.model_fields.items() if part in (name, f.alias)),
            None,
        )
        if field is None:
            return None
        current = _unwrap(field.annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    """First BaseModel inside Optional[...] / list[...] / unions, else the annotation."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, list, tuple, set):
        for arg in typing.get_args(annotation):
            inner = _unwrap(arg)
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                return inner
    return annotation


def _describe(error: dict[str, Any], root_model: type[BaseModel], loc: tuple[str | int, ...], prefix_len: int) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        owner = _model_at(root_model, loc[prefix_len:-1])
        allowed = ""
        if owner is not None:
            names = [f.alias or n for n, f in owner.model_fields.items()]
            allowed = f" (expected one of: {', '.join(names)})" if names else " (this block takes no keys)"
        return f"unknown key '{loc[-1]}'{allowed}"
    if kind == "missing":
        return "is required but missing"
    message = error["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    if "input" in error and kind not in ("model_type", "dict_type") and not message.startswith("'"):
        message += f" (found {_short(error['input'])})"
    return message


def _issues_from(
    exc: ValidationError, doc: YamlDocument, file: str, root_model: type[BaseModel], prefix: tuple[str | int, ...] = ()
) -> list[str]:
    issues = []
    for error in exc.errors():
        loc = prefix + tuple(error["loc"])
        where = format_path(loc) or "(top level)"
        line = doc.line_of(loc)
        issues.append(f"{file}:{line}: {where}: {_describe(error, root_model, loc, len(prefix))}")
    return issues


def _check_components(manifest: Manifest, doc: YamlDocument, file: str, host: "PluginHost") -> list[str]:
    issues: list[str] = []
    for path, block in manifest.blocks():
        spec = host.get(block.kind, block.use)
        where = format_path((*path, "use"))
        if spec is None:
            line = doc.line_of((*path, "use"))
            issues.append(f"{file}:{line}: {where}: {host.missing_component_message(block.kind, block.use)}")
            continue
        try:
            block._config = spec.cls.Config.model_validate(block.with_)
        except ValidationError as exc:
            issues.extend(_issues_from(exc, doc, file, spec.cls.Config, (*path, "with")))
            continue
        issues.extend(check_component_refs(block._config, (block.kind, block.use), (*path, "with"), doc, file, host))
    return issues


def component_refs(config: BaseModel) -> list[tuple[tuple[str | int, ...], ComponentRef]]:
    """Every :class:`fourfold.ComponentRef` among ``config``'s fields (also inside lists
    and dicts), with its path below the config (field aliases, as a manifest spells them)."""
    out: list[tuple[tuple[str | int, ...], ComponentRef]] = []
    for name, info in type(config).model_fields.items():
        value = getattr(config, name, None)
        key = info.alias or name
        if isinstance(value, ComponentRef):
            out.append(((key,), value))
        elif isinstance(value, (list, tuple)):
            out.extend(((key, i), v) for i, v in enumerate(value) if isinstance(v, ComponentRef))
        elif isinstance(value, dict):
            out.extend(((key, k), v) for k, v in value.items() if isinstance(v, ComponentRef))
    return out


def check_component_refs(
    config: BaseModel,
    holder: tuple[str, str],
    loc: tuple[str | int, ...],
    doc: YamlDocument,
    file: str,
    host: "PluginHost",
    _seen: tuple[tuple[str, str], ...] = (),
) -> list[str]:
    """Check the components ``config`` refers to (``{use:, with:}`` fields): each is
    registered and its ``with:`` is valid for its own ``Config``, recursively."""
    issues: list[str] = []
    seen = _seen + (holder,)
    for at, ref in component_refs(config):
        where = (*loc, *at)
        kind = ref.kind or holder[0]
        spec = host.get(kind, ref.use)
        if spec is None:
            use = (*where, "use")
            issues.append(f"{file}:{doc.line_of(use)}: {format_path(use)}: {host.missing_component_message(kind, ref.use)}")
            continue
        if (kind, ref.use) in seen:
            chain = " → ".join(name for _, name in (*seen, (kind, ref.use)))
            issues.append(f"{file}:{doc.line_of(where)}: {format_path(where)}: components refer to each other in a loop ({chain})")
            continue
        try:
            nested = spec.cls.Config.model_validate(ref.with_)
        except ValidationError as exc:
            issues.extend(_issues_from(exc, doc, file, spec.cls.Config, (*where, "with")))
            continue
        issues.extend(check_component_refs(nested, (kind, ref.use), (*where, "with"), doc, file, host, seen))
    return issues


def _check_loader_settings(manifest: Manifest, doc: YamlDocument, file: str, host: "PluginHost") -> list[str]:
    """Each source's ``loaders:`` names registered loaders, with settings their Config accepts."""
    issues: list[str] = []
    if not manifest.knowledge:
        return issues
    for i, source in enumerate(manifest.knowledge.sources):
        for name, settings in source.loaders.items():
            loc = ("knowledge", "sources", i, "loaders", name)
            spec = host.get("loader", name)
            if spec is None:
                issues.append(f"{file}:{doc.line_of(loc)}: {format_path(loc)}: {host.missing_component_message('loader', name)}")
                continue
            try:
                spec.cls.Config.model_validate(settings)
            except ValidationError as exc:
                issues.extend(_issues_from(exc, doc, file, spec.cls.Config, loc))
    return issues


def _check_sources(manifest: Manifest, doc: YamlDocument, file: str, host: "PluginHost") -> list[str]:
    """Each ``{use: …}`` source names a registered source whose Config accepts its ``with:``."""
    issues: list[str] = []
    if not manifest.knowledge:
        return issues
    for i, source in enumerate(manifest.knowledge.sources):
        if source.is_folder:
            continue
        loc = ("knowledge", "sources", i)
        spec = host.get("source", source.use)
        if spec is None:
            use = (*loc, "use")
            issues.append(f"{file}:{doc.line_of(use)}: {format_path(use)}: {host.missing_component_message('source', source.use)}")
            continue
        try:
            source._config = spec.cls.Config.model_validate(source.with_)
        except ValidationError as exc:
            issues.extend(_issues_from(exc, doc, file, spec.cls.Config, (*loc, "with")))
            continue
        issues.extend(check_component_refs(source._config, ("source", source.use), (*loc, "with"), doc, file, host))
    return issues


def _check_paths(manifest: Manifest) -> list[str]:
    issues = []
    if manifest.knowledge:
        for i, source in enumerate(manifest.knowledge.sources):
            problem = source.folder_problem(manifest.base_dir)
            if problem:
                issues.append(manifest.located(("knowledge", "sources", i, "path"), problem))
    return issues


def _read(path: Path) -> tuple[Manifest | None, list[str]]:
    file = str(path)
    try:
        doc = read_yaml(path)
    except YamlProblem as exc:
        return None, [f"{file}:{exc.line}: {exc.message}"]
    except FileNotFoundError:
        return None, [f"{file}: no such file"]
    except OSError as exc:
        return None, [f"{file}: cannot read: {exc.strerror or exc}"]
    if not isinstance(doc.data, dict):
        return None, [f"{file}:1: a manifest is a mapping of keys (fourfold, domain, title, …), found {type(doc.data).__name__}"]
    try:
        manifest = Manifest.model_validate(doc.data)
    except ValidationError as exc:
        return None, _issues_from(exc, doc, file, Manifest)
    manifest._path = path.resolve()
    manifest._file = file
    manifest._doc = doc
    return manifest, []


def validate_manifest_file(path: str | Path, host: "PluginHost | None" = None) -> tuple[Manifest | None, list[str]]:
    """Read and fully validate ``path``.

    :returns: the manifest (None when invalid) and one line per problem, each
        ``file:line: field.path: what was expected / found``.
    """
    from fourfold.plugins import get_host

    path = Path(path)
    host = host or get_host()
    manifest, issues = _read(path)
    if manifest is None:
        return None, issues
    doc: YamlDocument = manifest._doc
    issues = (
        _check_components(manifest, doc, str(path), host)
        + _check_loader_settings(manifest, doc, str(path), host)
        + _check_sources(manifest, doc, str(path), host)
        + _check_paths(manifest)
    )
    return (None if issues else manifest), issues


def load_manifest(path: str | Path, host: "PluginHost | None" = None) -> Manifest:
    """Read and validate a manifest.

    :raises ManifestError: listing every problem found, one line each.
    """
    manifest, issues = validate_manifest_file(path, host)
    if issues:
        raise ManifestError(issues)
    assert manifest is not None
    return manifest
