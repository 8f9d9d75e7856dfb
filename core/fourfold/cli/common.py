"""What every command module shares: the Typer app, consoles and error exits."""

from __future__ import annotations

import functools
import logging
from typing import Any, Callable, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

import fourfold
from fourfold.errors import FourfoldError, ManifestError

__all__ = ["app", "console", "err_console", "exit_with", "handle_errors", "is_verbose"]

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
