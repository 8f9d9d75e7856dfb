"""JSON Schema of the manifest, including every installed component's ``Config``.

Editors' YAML language servers use it for completion and checking, e.g. with a
``# yaml-language-server: $schema=fourfold.schema.json`` first line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fourfold.manifest.models import Manifest, Source, UseBlock

if TYPE_CHECKING:
    from fourfold.plugins import PluginHost

__all__ = ["manifest_json_schema"]


def _component_variants(
    host: "PluginHost", block_cls: type[UseBlock], block_def: dict[str, Any], defs: dict[str, Any]
) -> list[dict[str, Any]]:
    """One variant per installed component of the block's kind: ``use`` fixed to its
    name, ``with`` its ``Config``, and the block's own keys (a training block's
    ``artifact``) as the block model declares them."""
    own_keys = {key: value for key, value in block_def.get("properties", {}).items() if key not in ("use", "with")}
    use_field = block_cls.model_fields["use"]
    default_use = None if use_field.is_required() else use_field.default
    variants = []
    for name, spec in sorted(host.components(block_cls.kind).items()):
        config_schema = spec.cls.Config.model_json_schema(ref_template="#/$defs/{model}")
        for def_name, definition in config_schema.pop("$defs", {}).items():
            defs.setdefault(def_name, definition)
        config_schema.setdefault("type", "object")
        description = spec.cls.description or (spec.cls.__doc__ or "").strip().split("\n")[0]
        variants.append(
            {
                "type": "object",
                "title": f"{block_cls.kind} '{name}'",
                "description": f"{description} (plugin '{spec.plugin}')".strip(),
                "properties": {"use": {"const": name}, "with": config_schema, **own_keys},
                # A block may leave out 'use' only where the model has a default for it.
                "required": [] if name == default_use else ["use"],
                "additionalProperties": False,
            }
        )
    return variants


def manifest_json_schema(host: "PluginHost") -> dict[str, Any]:
    """The manifest's JSON Schema (draft 2020-12) for the components installed in ``host``."""
    schema = Manifest.model_json_schema(by_alias=True, ref_template="#/$defs/{model}")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "fourfold domain manifest"
    defs = schema.setdefault("$defs", {})
    for block_cls in UseBlock.__subclasses__():
        name = block_cls.__name__
        if name not in defs:
            continue
        variants = _component_variants(host, block_cls, defs[name], defs)
        # An unknown component name must not validate: anyOf over installed ones only.
        defs[name] = {"anyOf": variants} if variants else {"not": {}}
        defs[name]["description"] = f"A {block_cls.kind.replace('_', ' ')}: 'use' names it, 'with' configures it."
    if "Source" in defs:
        defs["Source"] = _source_schema(host, defs)
    return schema


def _source_schema(host: "PluginHost", defs: dict[str, Any]) -> dict[str, Any]:
    """A knowledge source: a folder (``path``) or an installed source component, each
    with the keys every source takes (tags, prefix, loaders)."""
    model = defs["Source"]
    shared = {k: v for k, v in model["properties"].items() if k in ("tags", "prefix", "loaders")}
    folder = {
        **model,
        "title": "folder",
        "properties": {k: v for k, v in model["properties"].items() if k not in ("use", "with")},
        "required": ["path"],
    }
    # The keys every source takes are added below; a source block has no others.
    variants = _component_variants(host, Source, {"properties": {}}, defs)  # type: ignore[arg-type]
    for variant in variants:
        variant["properties"].update(shared)
    return {"anyOf": [folder, *variants], "description": model.get("description", "")}
