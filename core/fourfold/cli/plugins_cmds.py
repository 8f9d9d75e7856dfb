"""``fourfold plugins``."""

from __future__ import annotations

import json

import typer
from rich.markup import escape
from rich.table import Table

from fourfold.cli.common import app, console, handle_errors, is_verbose
from fourfold.plugins import get_host


@app.command()
@handle_errors
def plugins(
    all_: bool = typer.Option(False, "--all", help="Include the builtin plugins."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List installed plugins: components they provide, hooks, status and load errors.

    Third-party plugins that failed to load are always listed, with the reason; with
    [bold]fourfold -v plugins[/bold] also the traceback of a plugin that raised.
    """
    host = get_host()
    records = [r for r in host.plugin_records() if all_ or not r.builtin or r.status != "loaded"]
    if as_json:
        print(json.dumps([r.to_dict() for r in records], indent=2))
        return
    if not records:
        console.print("No third-party plugins installed. Use --all to list the builtin ones.")
        return
    table = Table(show_lines=False)
    for col in ("plugin", "distribution", "api", "status", "components", "hooks"):
        table.add_column(col)
    for r in records:
        comps = "\n".join(f"{kind}: {', '.join(names)}" for kind, names in sorted(r.components.items()))
        lifecycle = [h for h in r.hooks if not h.startswith("register_")]
        status = {"loaded": "[green]loaded[/green]", "failed": "[red]failed[/red]"}.get(r.status, f"[yellow]{r.status}[/yellow]")
        dist = f"{r.distribution or '-'} {r.version or ''}".strip() + (" (builtin)" if r.builtin else "")
        table.add_row(r.name, dist, r.api_version or "-", status, comps or "-", ", ".join(lifecycle) or "-")
    console.print(table)
    for r in records:
        if r.error and r.status == "failed":
            console.print(f"[red]{r.name}[/red]: {escape(r.error)}", soft_wrap=True)
            if r.traceback and is_verbose():
                console.print(escape(r.traceback.rstrip()), soft_wrap=True, markup=True)
            elif r.traceback:
                console.print("  [dim](run 'fourfold -v plugins' for the traceback)[/dim]")
