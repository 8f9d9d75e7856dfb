"""Domain manifests: read, bind to the installed components, export a schema."""

from fourfold.manifest.binding import bind
from fourfold.manifest.loading import load_manifest, validate_manifest_file
from fourfold.manifest.models import (
    Chunking,
    Gate,
    Knowledge,
    Limits,
    Manifest,
    Refresh,
    Serve,
    Trust,
    Source,
    UseBlock,
    parse_duration,
)
from fourfold.manifest.schema import manifest_json_schema

__all__ = [
    "Chunking",
    "Gate",
    "Knowledge",
    "Limits",
    "Manifest",
    "Refresh",
    "Serve",
    "Trust",
    "Source",
    "UseBlock",
    "bind",
    "load_manifest",
    "manifest_json_schema",
    "parse_duration",
    "validate_manifest_file",
]
