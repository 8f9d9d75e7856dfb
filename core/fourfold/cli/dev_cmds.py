"""``fourfold new-plugin``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from fourfold.cli.common import app, console, handle_errors
from fourfold.scaffold import KIND_OPTIONS, create_plugin


@app.command("new-plugin")
@handle_errors
def new_plugin(
    name: str = typer.Argument(..., help="Kebab-case plugin name, e.g. keyword-search; also the component's name.", show_default=False),
    kind: str = typer.Option(..., "--kind", "-k", help=f"Component kind: {', '.join(KIND_OPTIONS)}.", show_default=False),
    directory: Path = typer.Option(Path("."), "--dir", "-d", help="Folder to create the project folder fourfold-NAME in."),
) -> None:
    """Start a third-party plugin: a separate distribution fourfold-NAME with one working
    component of KIND, contract tests and a README.

    It installs with [bold]pip install -e[/bold] and passes its own tests as generated.
    """
    written = create_plugin(name, kind, directory)
    root = written[0]
    console.print(f"[green]created[/green] {escape(str(root))}")
    for path in written[1:]:
        console.print(f"  {escape(str(path.relative_to(root)))}")
    console.print(
        "\nNext:\n"
        f"  cd {escape(str(root))}\n"
        "  python -m pip install -e '.\\[test]'\n"
        "  python -m pytest\n"
        "  fourfold plugins"
    )
