"""What every command module shares: the Typer app, consoles and error exits."""

from __future__ import annotations

import functools
import logging
import re
from pathlib import Path
from typing import Any, Callable, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

import fourfold
from fourfold.domain import Domain
from fourfold.domains import manifest_path_for
from fourfold.errors import FourfoldError, ManifestError
from fourfold.manifest.models import DOMAIN_PATTERN

__all__ = [
    "app", "console", "err_console", "exit_with", "handle_errors", "is_verbose", "load_domain", "manifest_path", "manifest_paths",
    "MANIFEST_OR_DOMAIN",
]

MANIFEST_OR_DOMAIN = "A manifest file, or the name of a domain recorded in the state dir."
"""Help text of every argument :func:`manifest_path` resolves."""

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

app = typer.Typer(
    name="fourfold",
    help="Turn a YAML domain manifest into a deployed assistant: train, fine-tune, prompt, retrieve.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)

F = TypeVar("F", bound=Callable[..., Any])

_options = {"verbose": False}


def is_verbose() -> bool:
    """Whether ``fourfold -v`` was given (commands then show tracebacks they hold)."""
    return _options["verbose"]


def exit_with(message: str, code: int = 1) -> NoReturn:
    """Print ``message`` on stderr (one line per problem) and exit with ``code``."""
    for line in message.splitlines() or [message]:
        err_console.print(f"[red]error:[/red] {escape(line)}")
    raise typer.Exit(code)


def handle_errors(fn: F) -> F:
    """Turn fourfold's errors into one clear line on stderr and exit status 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ManifestError as exc:
            exit_with("\n".join(exc.issues))
        except FourfoldError as exc:
            exit_with(str(exc))

    return wrapper  # type: ignore[return-value]


def manifest_path(target: str | Path) -> Path:
    """The manifest file ``target`` names: a path to one, or a domain's name recorded in
    the state dir's registry (where every command that loads a manifest records it).

    :raises FourfoldError: no such file, or no such domain (naming the known ones).
    """
    text = str(target)
    path = Path(target)
    if path.suffix.lower() in {".yaml", ".yml"} or path.is_file() or "/" in text:
        if not path.is_file():
            raise FourfoldError(f"{text}: no such manifest file")
        return path
    if not re.match(DOMAIN_PATTERN, text):
        raise FourfoldError(f"'{text}' is neither a manifest file nor a domain name")
    return manifest_path_for(text)  # names the registry and the known domains when unknown


def manifest_paths(targets: list[Any]) -> list[Path]:
    """:func:`manifest_path` of each."""
    return [manifest_path(t) for t in targets]


def load_domain(target: str | Path) -> "Domain":
    """The :class:`fourfold.Domain` of ``target`` (a manifest file, or a domain's name as
    :func:`manifest_path` resolves it), recorded in the domain registry so that later
    commands, workers and the API find it by name.

    :raises ManifestError: the manifest is invalid (one line per problem).
    """
    return Domain.from_file(manifest_path(target), remember=True)


def _version_callback(value: bool) -> None:
    if value:
        console.print(f"fourfold {fourfold.__version__} (plugin API {fourfold.PLUGIN_API_VERSION})")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version_callback, is_eager=True, help="Show the version and exit."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log what happens (plugin loading, hook calls)."),
) -> None:
    """fourfold: domain assistants from one manifest."""
    _options["verbose"] = verbose
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if fourfold.get_settings().trace_plugins:
        logging.getLogger("fourfold.plugins").setLevel(logging.INFO)
