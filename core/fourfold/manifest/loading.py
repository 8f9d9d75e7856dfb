"""Reading a manifest file into a validated :class:`Manifest`, with errors for people."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from fourfold.errors import ManifestError
from fourfold.manifest.binding import binding_problems, check_component_refs, component_refs, validation_problems
from fourfold.manifest.models import Manifest, format_path
from fourfold.manifest.yamlfile import YamlProblem, read_yaml
from fourfold.plugins import get_host

if TYPE_CHECKING:
    from fourfold.plugins import PluginHost

__all__ = ["load_manifest", "validate_manifest_file", "format_path", "check_component_refs", "component_refs"]


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
        return None, validation_problems(exc, file, Manifest, doc=doc)
    manifest._path = path.resolve()
    manifest._file = file
    manifest._doc = doc
    return manifest, []


def validate_manifest_file(path: str | Path, host: "PluginHost | None" = None) -> tuple[Manifest | None, list[str]]:
    """Read ``path``, bind it to ``host`` (:func:`fourfold.manifest.bind`; default: the
    process's host) and check its source folders.

    :returns: the manifest (None when invalid) and one line per problem, each
        ``file:line: field.path: what was expected / found``.
    """
    path = Path(path)
    manifest, issues = _read(path)
    if manifest is None:
        return None, issues
    issues = binding_problems(manifest, host or get_host()) + _check_paths(manifest)
    return (None if issues else manifest), issues


def load_manifest(path: str | Path, host: "PluginHost | None" = None) -> Manifest:
    """Read and validate a manifest, bound to ``host`` (default: the process's host).

    :raises ManifestError: listing every problem found, one line each.
    """
    manifest, issues = validate_manifest_file(path, host)
    if issues:
        raise ManifestError(issues)
    assert manifest is not None
    return manifest
