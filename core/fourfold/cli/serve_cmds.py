"""``fourfold serve`` (the HTTP API alone) and ``fourfold up`` (everything on one machine)."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from enum import Enum
from pathlib import Path
from typing import Any, Callable

import typer
from rich.markup import escape

from fourfold.cli.common import app, console, err_console, exit_with, handle_errors, manifest_paths

_MANIFESTS = typer.Argument(..., help="Manifest files (or recorded domain names) of the domains to serve.", show_default=False)


class LogFormatOption(str, Enum):
    text = "text"
    json = "json"


_LOG_FORMAT = typer.Option(LogFormatOption.text, "--log-format", help="text, or json: one JSON object per line (time, level, logger, message and a request's fields).")
_HOST = typer.Option("127.0.0.1", "--host", help="Interface to listen on (0.0.0.0: every interface).")
_PORT = typer.Option(8000, "--port", "-p", min=1, max=65535, help="Port to listen on.")
_MAX_BODY = typer.Option(256, "--max-body-kb", min=1, max=1024 * 1024, help="Larger request bodies get 413.")
_HEADER_TIMEOUT = typer.Option(
    10.0, "--header-timeout", min=0.1, max=3600, help="Seconds a request's headers may take to arrive; a slower client gets 408 and is disconnected."
)
_BODY_TIMEOUT = typer.Option(
    30.0, "--body-timeout", min=0.1, max=3600, help="Seconds a request's body may take after its headers; a slower client gets 408 and is disconnected."
)

_STOP_GRACE_S = 15.0


def _check_port_free(host: str, port: int) -> None:
    """Fail early, before anything starts, when the port is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            exit_with(f"cannot listen on {host}:{port}: {exc.strerror or exc}; pick another with --port")


def _url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else ("[::1]" if host == "::" else host)
    return f"http://{shown}:{port}"


def _print_access(assistants: Any, url: str) -> None:

    def say(text: str) -> None:
        console.print(text, soft_wrap=True)  # URLs and tokens stay on one line, to be copied

    say(f"\n[bold green]fourfold is serving[/bold green] on [bold]{url}[/bold]  (API docs: {url}/docs)")
    for name, domain in sorted(assistants.domains.items()):
        tokens = assistants.tokens[name]
        say(f"\n  [bold]{escape(name)}[/bold] — {escape(domain.title)}")
        if tokens.origin == "env":
            say(f"    token: from ${escape(tokens.env or '')} ({len(tokens.tokens)} token(s))")
        else:
            token = tokens.tokens[0]
            kept = "generated now" if tokens.origin == "generated" else "kept from an earlier run"
            say(f"    token: [bold]{escape(token)}[/bold]  [dim]({kept}; set ${escape(tokens.env or 'serve.tokens_env')} to choose your own)[/dim]")
            say(f"    chat:  {url}/?domain={name}#token={token}")
        writes = assistants.write_tokens.get(name)
        if writes is not None and writes.origin == "env":
            say(f"    write token: from ${escape(writes.env or '')} ({len(writes.tokens)} token(s)) — uploads documents")
        elif writes is not None and writes.tokens:
            kept = "generated now" if writes.origin == "generated" else "kept from an earlier run"
            say(
                f"    write token: [bold]{escape(writes.tokens[0])}[/bold]  [dim](uploads documents: PUT {url}/v1/domains/{name}/documents/PATH; "
                f"{kept}; set ${escape(writes.env or 'serve.write_tokens_env')} to choose your own)[/dim]"
            )
    example = sorted(assistants.domains)[0]
    say(
        f"\n  [dim]curl -H 'Authorization: Bearer TOKEN' -H 'Content-Type: application/json' "
        f"-d '{{\"question\": \"…\"}}' {url}/v1/domains/{example}/ask[/dim]"
    )


def _run_uvicorn(
    fastapi_app: Any, host: str, port: int, log_level: str, limits: Any = None, log_format: str = "text",
    on_start: Callable[[], None] | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM, then return (so callers can stop what they started).

    Connections are held to ``limits`` (a :class:`fourfold.api.protocol.ConnectionLimits`;
    default: its defaults), so a stalled client is cut off. ``on_start`` is called once
    logging is set up, before the server starts."""
    import contextlib

    import uvicorn

    from fourfold.api.protocol import ConnectionLimits, guarded_protocol

    from fourfold.logs import configure_logging
    from fourfold.tracing import setup_tracing

    limits = limits or ConnectionLimits()
    # One format for uvicorn's records and ours; request logs come from fourfold.access.
    configure_logging(log_level, log_format)  # type: ignore[arg-type]
    setup_tracing()  # only when OTEL_* variables ask for it
    if on_start is not None:
        on_start()

    class Server(uvicorn.Server):
        # uvicorn re-raises the stop signal after shutting down, which would kill this
        # process before `fourfold up` stops its worker and scheduler in order.
        @contextlib.contextmanager
        def capture_signals(self):
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            original = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in original.items():
                    signal.signal(sig, handler)

    config = uvicorn.Config(
        fastapi_app,
        host=host,
        port=port,
        log_level=log_level,
        log_config=None,
        access_log=False,  # fourfold.access logs each request (route, domain, status, ms)
        timeout_graceful_shutdown=10,
        server_header=False,
        http=guarded_protocol(limits),
        timeout_keep_alive=limits.keep_alive_timeout,
        h11_max_incomplete_event_size=limits.max_header_bytes,
    )
    server = Server(config)
    server.run()
    if not server.started and not server.should_exit:
        raise typer.Exit(1)  # uvicorn could not start (it logged why)


# -------------------------------------------------------------------------
# fourfold serve
# -------------------------------------------------------------------------


@app.command()
@handle_errors
def serve(
    manifests: list[Path] = typer.Argument(
        None, help="Manifest files (or recorded domain names) of the domains to serve. Without any: every domain in the state dir's registry.", show_default=False
    ),
    host: str = _HOST,
    port: int = _PORT,
    max_body_kb: int = _MAX_BODY,
    header_timeout: float = _HEADER_TIMEOUT,
    body_timeout: float = _BODY_TIMEOUT,
    log_level: str = typer.Option("info", "--log-level", help="Log level: debug, info (a line per request), warning, error."),
    log_format: LogFormatOption = _LOG_FORMAT,
) -> None:
    """Run the HTTP API (OpenAI-compatible chat, ask, status, refresh, rollback) and the chat page.

    Only the API: refreshes are queued for `fourfold worker` processes, so run as many API replicas as you need behind a load balancer. Each replica serves the published index version and follows new publishes without a restart.

    With a broker set up ([bold]FOURFOLD_BROKER_URL[/bold]) it queues a first build of each domain that has no published index (one per domain for the whole deployment, whichever processes start); without one, `fourfold worker` does when it starts.
    """
    from fourfold.api import ApiOptions, create_app
    from fourfold.api.assistants import Assistants
    from fourfold.api.protocol import ConnectionLimits
    from fourfold.settings import get_settings

    _check_port_free(host, port)
    settings = get_settings()
    assistants = Assistants.from_manifests(manifest_paths(list(manifests or [])), settings=settings)
    _warm_up(assistants)
    fastapi_app = create_app(assistants=assistants, options=ApiOptions(max_body_bytes=max_body_kb * 1024))
    _print_access(assistants, _url(host, port))
    _run_uvicorn(
        fastapi_app, host, port, log_level, ConnectionLimits(header_timeout=header_timeout, body_timeout=body_timeout), log_format.value,
        on_start=_first_builds(list(assistants.domains.values()), settings),
    )


def _first_builds(domains: list[Any], settings: Any) -> Callable[[], None] | None:
    """What queues the first build of domains without a published index, when a broker
    is set up: with the embedded broker (none set) a worker may never run, and
    `fourfold worker` queues them itself when it starts."""
    if not settings.broker_url:
        return None
    from fourfold.worker.bootstrap import queue_missing_indexes_in_background

    return lambda: queue_missing_indexes_in_background(domains, settings)


# -------------------------------------------------------------------------
# fourfold up
# -------------------------------------------------------------------------


def _die_with_parent() -> None:
    """In a child: receive SIGTERM when the parent dies, even by SIGKILL (Linux)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass
    os.setpgrp()  # Ctrl-C reaches us only through the parent, which stops us in order


class _Children:
    """The worker and beat processes ``up`` starts, with logs in the state dir."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen] = {}
        self.stopping = False

    def start(self, name: str, argv: list[str]) -> Path:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        log = open(log_path, "ab")
        log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(argv)}\n".encode())
        log.flush()
        self.procs[name] = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent, close_fds=True
        )
        log.close()
        threading.Thread(target=self._watch, args=(name,), daemon=True).start()
        return log_path

    def _watch(self, name: str) -> None:
        proc = self.procs[name]
        code = proc.wait()
        if not self.stopping:
            err_console.print(
                f"[yellow]warning:[/yellow] the {name} process stopped (exit status {code}); "
                f"see {self.log_dir / (name + '.log')}. Answers still work; background refreshes do not."
            )

    def stop(self) -> None:
        """SIGTERM to each (Celery's warm shutdown), then SIGKILL after a grace period."""
        self.stopping = True
        for proc in self.procs.values():
            if proc.poll() is None:
                try:
                    proc.send_signal(signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + _STOP_GRACE_S
        for name, proc in self.procs.items():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                err_console.print(f"[yellow]warning:[/yellow] the {name} process did not stop in {_STOP_GRACE_S:g}s; killing it")
                proc.kill()
                proc.wait()


def _build_missing_indexes(domains: list[Any]) -> list[Any]:
    """Build the indexes that do not exist yet; returns the domains that had one."""
    from fourfold.cli.progress import RichProgress
    from fourfold.index import index_status, refresh

    existing = []
    for domain in domains:
        if domain.manifest.knowledge is None or not domain.prompt_strategy.uses_retrieval:
            continue
        status = index_status(domain)
        if status.published:
            console.print(f"{escape(domain.name)}: index {status.published} ({status.documents} documents, {status.chunks} chunks)")
            existing.append(domain)
            continue
        console.print(f"{escape(domain.name)}: building the index (first run)…")
        with RichProgress(transient=True, label=domain.name) as progress:
            report = refresh(domain, progress, wait=True)
        console.print(f"[green]{escape(report.summary())}[/green]")
        for warning in report.warnings:
            err_console.print(f"[yellow]warning:[/yellow] {escape(warning)}")
    return existing


def _prepare_generators(domains: list[Any]) -> None:
    from fourfold.cli.progress import RichProgress
    from fourfold.domain import call_component

    for domain in domains:
        started = time.perf_counter()
        with RichProgress(transient=True, label=f"{domain.name}: {domain.generator.name}") as progress:
            call_component(domain.generator, "prepare", progress)
        took = time.perf_counter() - started
        if took > 1:
            console.print(f"{escape(domain.name)}: generator '{domain.generator.name}' ready ({took:.0f}s)")


def _warm_up(assistants: Any) -> None:
    """Load every domain's models and open its index before listening, saying so: the
    first start can take a while (models load, the embedder compiles)."""
    started = time.perf_counter()
    console.print(f"loading {len(assistants.domains)} domain{'s' if len(assistants.domains) != 1 else ''}: components, models and indexes…")

    def done(name: str, seconds: float) -> None:
        console.print(f"  {escape(name)}: ready ({seconds:.1f}s)")

    with err_console.status("loading…", spinner="dots"):
        assistants.warm_up(report=done).join()
    console.print(f"ready in {time.perf_counter() - started:.1f}s")


def _catch_up(domains: list[Any], settings: Any) -> None:
    """Queue a refresh of indexes built in an earlier run whose documents changed while
    nothing was running (checked first by hashing the files: cheap, nothing is loaded).
    Only what changed is re-read."""
    from fourfold.index import changed_documents
    from fourfold.worker import client

    for domain in domains:
        try:
            changed = changed_documents(domain)
        except Exception as exc:  # e.g. a source folder gone: the refresh will say so
            changed = None
            err_console.print(f"[yellow]warning:[/yellow] {escape(domain.name)}: cannot compare its documents: {escape(str(exc))}")
        if changed == []:
            console.print(f"{escape(domain.name)}: documents unchanged since the published index")
            continue
        try:
            info = client.request_refresh(domain.name, settings=settings)
        except Exception as exc:  # the API still serves the published version
            err_console.print(f"[yellow]warning:[/yellow] {escape(domain.name)}: could not queue a refresh: {escape(str(exc))}")
            continue
        what = f"{len(changed)} document{'s' if len(changed) != 1 else ''} changed" if changed else "documents may have changed"
        console.print(f"{escape(domain.name)}: {what} since the published index; refresh queued (task {info.id[:8]})")


@app.command()
@handle_errors
def up(
    manifests: list[Path] = _MANIFESTS,
    host: str = _HOST,
    port: int = _PORT,
    max_body_kb: int = _MAX_BODY,
    worker: bool = typer.Option(True, "--worker/--no-worker", help="Start a background worker for refreshes."),
    beat: bool = typer.Option(True, "--beat/--no-beat", help="Start the scheduler of knowledge.refresh."),
    log_level: str = typer.Option("warning", "--log-level", help="Log level: debug, info (a line per request), warning, error."),
    log_format: LogFormatOption = _LOG_FORMAT,
) -> None:
    """Deploy domain assistants on this machine: build missing indexes, then run the API, a worker and the scheduler.

    Embedded defaults, nothing else to install: an SQLite broker and the qdrant-edge engine in the state dir ([bold]FOURFOLD_HOME[/bold], default ./.fourfold). Prints the URL and a token per domain (generated once and kept, unless the manifest's serve.tokens_env variable is set), and a write token for each domain with an upload source. Ctrl-C stops everything.
    """
    from fourfold.api import ApiOptions, create_app
    from fourfold.api.assistants import Assistants
    from fourfold.settings import get_settings

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    _check_port_free(host, port)
    settings = get_settings()
    manifests = manifest_paths(list(manifests))
    assistants = Assistants.from_manifests(list(manifests), settings=settings)
    domains = list(assistants.domains.values())
    already_built = _build_missing_indexes(domains)
    _prepare_generators(domains)
    _warm_up(assistants)
    fastapi_app = create_app(assistants=assistants, options=ApiOptions(max_body_bytes=max_body_kb * 1024, warm_up=True))

    children = _Children(settings.state_dir / "logs")
    paths = [str(Path(m).resolve()) for m in manifests]
    if worker or beat:
        from fourfold.worker.launch import beat_argv, worker_argv

        if worker:
            log = children.start("worker", worker_argv(paths, concurrency=1))
            console.print(f"worker started (log: {log})")
            _catch_up(already_built, settings)
        if beat:
            log = children.start("beat", beat_argv(paths))
            console.print(f"scheduler started (log: {log})")

    # uvicorn handles SIGINT and SIGTERM itself (graceful shutdown); children stop after.
    _print_access(assistants, _url(host, port))
    console.print("\n[dim]Ctrl-C to stop.[/dim]")
    try:
        _run_uvicorn(fastapi_app, host, port, log_level, log_format=log_format.value)
    finally:
        console.print("stopping…")
        children.stop()
        console.print("stopped.")

