"""``fourfold validate`` and ``fourfold schema``."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from fourfold.cli.common import app, console, err_console, handle_errors
from fourfold.errors import KnowledgeError
from fourfold.knowledge import scan_sources
from fourfold.manifest import manifest_json_schema, validate_manifest_file
from fourfold.plugins import get_host


@app.command()
@handle_errors
def validate(
    files: list[Path] = typer.Argument(..., help="Manifest files to check.", show_default=False),
) -> None:
    """Check domain manifests against the installed components.

    Prints one line per problem on stderr as [bold]file:line: field.path: message[/bold];
    exits 0 when every file is valid, 1 otherwise. The knowledge sources are checked as
    [bold]index build[/bold] checks them (folders, prefixes, include patterns that match
    no file), and what a build would skip is listed as warnings.
    """
    host = get_host()
    bad = 0
    for path in files:
        manifest, issues = validate_manifest_file(path, host)
        warnings: list[str] = []
        if manifest is not None and manifest.knowledge is not None:
            # What a refresh would refuse or warn about, said the same way: the scan
            # lists the source folders (it reads no file).
            try:
                warnings = scan_sources(manifest).warnings
            except KnowledgeError as exc:
                issues = [str(exc)]
        for line in warnings:
            err_console.print(f"[yellow]warning:[/yellow] {line}", markup=True, highlight=False)
        if issues:
            bad += 1
            for line in issues:
                err_console.print(f"[red]error:[/red] {line}", markup=True, highlight=False)
        else:
            assert manifest is not None
            uses = ", ".join(f"{b.kind.replace('_', ' ')}={b.use}" for _, b in manifest.blocks())
            console.print(f"[green]ok[/green] {path}: domain '{manifest.domain}' ({uses})")
    raise typer.Exit(1 if bad else 0)


@app.command()
@handle_errors
def schema(
    output: Path | None = typer.Option(None, "--output", "-o", help="Write to this file instead of stdout."),
) -> None:
    """Print the manifest's JSON Schema, including every installed component's config.

    Point your editor's YAML language server at it, e.g. start a manifest with
    [bold]# yaml-language-server: $schema=./fourfold.schema.json[/bold].
    """
    text = json.dumps(manifest_json_schema(get_host()), indent=2)
    if output:
        output.write_text(text + "\n", encoding="utf-8")
        err_console.print(f"wrote {output}")
    else:
        print(text)
