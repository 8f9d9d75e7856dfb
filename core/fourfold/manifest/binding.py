"""Binding a manifest to the plugin host: the one step that checks every ``with:``
block against the component it names and keeps the validated configuration.

A :class:`~fourfold.manifest.Manifest` on its own is only the YAML's shape. Before a
:class:`fourfold.Domain` can build anything from it, :func:`bind` looks up each
component a block names (``embedding``, ``training``, ``fine_tuning``, ``prompt``,
``retrieval``, ``generation``, each source component and the loaders a source
configures) on the plugin host, validates its ``with:`` against that component's
``Config`` — and the ``with:`` of every component those configurations refer to
(``{use:, with:}`` fields), recursively — and keeps each validated ``Config`` on its
block (``block.config``). Reading a file (:func:`fourfold.manifest.load_manifest`)
binds; so does a :class:`fourfold.Domain` given a manifest built in code.
"""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from fourfold.components import ComponentRef
from fourfold.errors import ManifestError
from fourfold.manifest.models import Manifest, format_path
from fourfold.manifest.yamlfile import YamlDocument

if TYPE_CHECKING:
    from fourfold.plugins import PluginHost

__all__ = ["bind", "binding_problems", "check_component_refs", "component_refs", "validation_problems"]

Loc = tuple[str | int, ...]


def bind(
    manifest: Manifest,
    host: "PluginHost",
    *,
    path: str | Path | None = None,
    file: str | None = None,
    doc: YamlDocument | None = None,
) -> Manifest:
    """Bind ``manifest`` to the components registered on ``host`` and return it (the
    same object, now :attr:`~fourfold.manifest.Manifest.is_bound`).

    :param path: the file the manifest stands for: relative paths in it resolve against
        its folder, and messages name it. Default: where it already stands (the file it
        was read from, or none — then relative paths resolve against the working folder).
    :param file: the path as the user wrote it, for messages (default: ``path``).
    :param doc: the parsed YAML the manifest was read from, so that each problem carries
        its line.
    :raises ManifestError: listing every problem, one line each: ``file:line: field: what
        was expected / found`` when the YAML is known, else ``file: field: …`` (or
        ``manifest: field: …`` for a manifest that stands for no file).

    .. versionadded:: 1.3
    """
    if path is not None:
        manifest._path = Path(path).resolve()
        manifest._file = file or str(path)
    elif file is not None:
        manifest._file = file
    if doc is not None:
        manifest._doc = doc
    problems = binding_problems(manifest, host)
    if problems:
        raise ManifestError(problems)
    return manifest


def binding_problems(manifest: Manifest, host: "PluginHost") -> list[str]:
    """What :func:`bind` does, returning the problems (one line each) instead of raising;
    the blocks that are valid keep their configuration, and the manifest is bound only
    when there is no problem."""
    problems = _components(manifest, host) + _loader_settings(manifest, host) + _sources(manifest, host)
    manifest._bound = not problems
    return problems


# -- messages ---------------------------------------------------------------------------


def _where(manifest: Manifest) -> str:
    return manifest._file or (str(manifest._path) if manifest._path else "manifest")


def _at(manifest: Manifest, loc: Loc) -> str:
    """``file:line: field`` (``file: field`` when the manifest was not read from YAML)."""
    doc = manifest._doc
    line = f":{doc.line_of(loc)}" if doc is not None else ""
    return f"{_where(manifest)}{line}: {format_path(loc)}"


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _unwrap(annotation: Any) -> Any:
    """First BaseModel inside Optional[...] / list[...] / unions, else the annotation."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, list, tuple, set):
        for arg in typing.get_args(annotation):
            inner = _unwrap(arg)
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                return inner
    return annotation


def _model_at(model: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The model class found by walking ``loc`` from ``model`` (None when not a model)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = next((f for name, f in current.model_fields.items() if part in (name, f.alias)), None)
        if field is None:
            return None
        current = _unwrap(field.annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _describe(error: dict[str, Any], root_model: type[BaseModel], loc: Loc, prefix_len: int) -> str:
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


def validation_problems(
    exc: ValidationError, file: str, root_model: type[BaseModel], prefix: Loc = (), doc: YamlDocument | None = None
) -> list[str]:
    """One line per error of ``exc`` (validating ``root_model`` at ``prefix`` of the
    manifest): ``file:line: field.path: what`` (no line without ``doc``)."""
    out = []
    for error in exc.errors():
        loc = prefix + tuple(error["loc"])
        line = f":{doc.line_of(loc)}" if doc is not None else ""
        out.append(f"{file}{line}: {format_path(loc) or '(top level)'}: {_describe(error, root_model, loc, len(prefix))}")
    return out


# -- the checks --------------------------------------------------------------------------


def _validate(manifest: Manifest, host: "PluginHost", kind: str, use: str, settings: Any, loc: Loc) -> tuple[Any, list[str]]:
    """``settings`` validated against component ``use``'s Config (and what it refers to)."""
    spec = host.get(kind, use)
    if spec is None:
        return None, [f"{_at(manifest, (*loc, 'use'))}: {host.missing_component_message(kind, use)}"]
    try:
        config = spec.cls.Config.model_validate(settings)
    except ValidationError as exc:
        return None, validation_problems(exc, _where(manifest), spec.cls.Config, (*loc, "with"), manifest._doc)
    return config, check_component_refs(config, (kind, use), (*loc, "with"), manifest._doc, _where(manifest), host)


def _components(manifest: Manifest, host: "PluginHost") -> list[str]:
    problems: list[str] = []
    for loc, block in manifest.blocks():
        block._config, found = _validate(manifest, host, block.kind, block.use, block.with_, loc)
        problems += found
    return problems


def _sources(manifest: Manifest, host: "PluginHost") -> list[str]:
    """Each ``{use: …}`` source names a registered source whose Config accepts its ``with:``."""
    problems: list[str] = []
    if not manifest.knowledge:
        return problems
    for i, source in enumerate(manifest.knowledge.sources):
        if not source.is_folder:
            source._config, found = _validate(manifest, host, "source", source.use or "", source.with_, ("knowledge", "sources", i))
            problems += found
    return problems


def _loader_settings(manifest: Manifest, host: "PluginHost") -> list[str]:
    """Each source's ``loaders:`` names registered loaders, with settings their Config accepts."""
    problems: list[str] = []
    if not manifest.knowledge:
        return problems
    for i, source in enumerate(manifest.knowledge.sources):
        for name, settings in source.loaders.items():
            loc: Loc = ("knowledge", "sources", i, "loaders", name)
            spec = host.get("loader", name)
            if spec is None:
                problems.append(f"{_at(manifest, loc)}: {host.missing_component_message('loader', name)}")
                continue
            try:
                spec.cls.Config.model_validate(settings)
            except ValidationError as exc:
                problems += validation_problems(exc, _where(manifest), spec.cls.Config, loc, manifest._doc)
    return problems


def component_refs(config: BaseModel) -> list[tuple[Loc, ComponentRef]]:
    """Every :class:`fourfold.ComponentRef` among ``config``'s fields (also inside lists
    and dicts), with its path below the config (field aliases, as a manifest spells them)."""
    out: list[tuple[Loc, ComponentRef]] = []
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
    loc: Loc,
    doc: YamlDocument | None,
    file: str,
    host: "PluginHost",
    _seen: tuple[tuple[str, str], ...] = (),
) -> list[str]:
    """Check the components ``config`` refers to (``{use:, with:}`` fields): each is
    registered and its ``with:`` is valid for its own ``Config``, recursively."""
    problems: list[str] = []
    seen = _seen + (holder,)

    def at(where: Loc) -> str:
        return f"{file}:{doc.line_of(where)}: {format_path(where)}" if doc is not None else f"{file}: {format_path(where)}"

    for sub, ref in component_refs(config):
        where = (*loc, *sub)
        kind = ref.kind or holder[0]
        spec = host.get(kind, ref.use)
        if spec is None:
            problems.append(f"{at((*where, 'use'))}: {host.missing_component_message(kind, ref.use)}")
            continue
        if (kind, ref.use) in seen:
            chain = " → ".join(name for _, name in (*seen, (kind, ref.use)))
            problems.append(f"{at(where)}: components refer to each other in a loop ({chain})")
            continue
        try:
            nested = spec.cls.Config.model_validate(ref.with_)
        except ValidationError as exc:
            problems += validation_problems(exc, file, spec.cls.Config, (*where, "with"), doc)
            continue
        problems += check_component_refs(nested, (kind, ref.use), (*where, "with"), doc, file, host, seen)
    return problems
