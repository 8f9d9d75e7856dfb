"""``fourfold worker, beat, refresh, tasks``."""

from __future__ import annotations

import json
import os
import time
from enum import Enum
from pathlib import Path

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from fourfold.cli.common import (
    MANIFEST_OR_DOMAIN, app, console, err_console, exit_with, handle_errors, load_domain, manifest_path, manifest_paths,
)
from fourfold.errors import FourfoldError

# Nothing heavy at import: the CLI starts for every command, and these only need
# Celery and the shared worker state.


class Pool(str, Enum):
    prefork = "prefork"
    solo = "solo"
    threads = "threads"


def _load_manifests(paths: list[Path]):
    """Load and record manifests given on the command line."""
    return [load_domain(path).manifest for path in paths]


def _registered_manifests():
    """Every manifest the domain registry knows; broken ones are reported and left out."""
    from fourfold.domains import known_domains
    from fourfold.manifest import load_manifest
    from fourfold.plugins import get_host

    host = get_host()
    out = []
    for name, path in sorted(known_domains().items()):
        try:
            out.append(load_manifest(path, host))
        except FourfoldError as exc:
            err_console.print(f"[yellow]warning:[/yellow] domain '{escape(name)}' left out: {escape(str(exc).splitlines()[0])}")
    return out


def _domains(manifests, settings):
    """:class:`fourfold.Domain` objects of ``manifests`` (components are built lazily)."""
    from fourfold.domain import Domain
    from fourfold.plugins import get_host

    host = get_host()
    return [Domain(manifest, host, settings) for manifest in manifests]


def _ago(ts: float | None) -> str:
    if not ts:
        return "-"
    s = max(0.0, time.time() - ts)
    if s < 90:
        return f"{s:.0f}s ago"
    if s < 5400:
        return f"{s / 60:.0f}m ago"
    if s < 129600:
        return f"{s / 3600:.1f}h ago"
    return f"{s / 86400:.1f}d ago"


def _took(info) -> str:
    if info.started_at and info.finished_at:
        return f"{info.finished_at - info.started_at:.1f}s"
    if info.started_at and not getattr(info, "stuck", None):  # a stuck task is not running "so far"
        return f"{time.time() - info.started_at:.0f}s so far"
    return "-"


def _progress_text(progress: dict | None) -> str:
    if not progress or not progress.get("stage"):
        return "-"
    done, total = progress.get("done", 0), progress.get("total")
    return f"{progress['stage']} {done}/{total}" if total else f"{progress['stage']} {done}"


def _summary(result: dict | None) -> str:
    """A task's outcome in a few words: for a refresh, what it published and how much
    it changed; for other tasks their first few numbers."""
    if not result:
        return ""
    if "published" in result and "version" in result:
        version = result.get("version") or "-"
        if not result.get("published"):
            return f"no change ({version})"
        changes = [
            f"{result[f'{key}_count']} {word}"
            for key, word in (("added", "added"), ("changed", "changed"), ("removed", "removed"))
            if result.get(f"{key}_count")
        ]
        text = f"published {version}" + (f": {', '.join(changes)}" if changes else "")
        embedded = result.get("chunks_embedded")
        return text + (f"; {embedded} chunks embedded" if embedded else "")
    parts = [f"{k}={v}" for k, v in result.items() if k not in {"status", "domain"} and not isinstance(v, dict)]
    return ", ".join(parts[:3]) + (", …" if len(parts) > 3 else "")


def _short_id(task_id: str) -> str:
    # Unique enough to tell tasks apart on a screen; --json has the whole id.
    return task_id[:8]


# -------------------------------------------------------------------------
# fourfold worker
# -------------------------------------------------------------------------


@app.command()
@handle_errors
def worker(
    manifests: list[Path] = typer.Argument(
        None, help="Manifests (or recorded domain names) of the domains to serve (recorded in the state dir's registry). "
        "Without any, the domains already recorded there.", show_default=False,
    ),
    concurrency: int = typer.Option(0, "--concurrency", "-c", min=0, help="Tasks run at once (child processes). 0: one per 2 CPU cores, at least 1."),
    pool: Pool = typer.Option(Pool.prefork, "--pool", "-P", help="prefork: each task in a child process, so a crash or a memory leak cannot take the worker down; solo: in the worker process itself (debugging)."),
    queues: str = typer.Option("refresh,training", "--queues", "-Q", help="Comma-separated queues to take tasks from: refresh, training."),
    loglevel: str = typer.Option("info", "--loglevel", "-l", help="debug, info, warning or error."),
    hostname: str | None = typer.Option(None, "--hostname", "-n", help="Node name (default fourfold-<pid>@<host>)."),
    metrics_port: int = typer.Option(0, "--metrics-port", min=0, max=65535, help="Serve Prometheus metrics (refreshes, chunks embedded, lease waits, queued tasks) at http://HOST:PORT/metrics; 0: off."),
    metrics_host: str = typer.Option("127.0.0.1", "--metrics-host", help="Interface of --metrics-port (0.0.0.0: every interface)."),
) -> None:
    """Run a Celery worker that refreshes knowledge bases (and trains models) in the background.

    Takes the broker from [bold]FOURFOLD_BROKER_URL[/bold] (Redis), or uses the SQLite broker in the state dir when it is unset — then `fourfold refresh`, `fourfold beat` and the API on this machine reach it with no further setup. Start as many workers, on as many machines, as you like: each domain is written by one task at a time.

    Once it takes tasks, it queues a first build of each of its domains that has no published index (one per domain for the whole deployment, whichever processes start).
    """
    import fourfold

    if metrics_port:
        # Before prometheus-client is first imported: the pool's children inherit it.
        _multiprocess_metrics(fourfold.get_settings().state_dir)
    from celery.signals import worker_ready

    from fourfold.worker import names
    from fourfold.worker.app import make_app, prepare_broker, uses_redis
    from fourfold.worker.heartbeat import announce_worker

    loaded = _load_manifests(manifest_paths(manifests)) if manifests else _registered_manifests()
    if concurrency <= 0:
        concurrency = max(1, (os.cpu_count() or 2) // 2)
    settings = fourfold.get_settings()
    if settings.torch_threads is None:
        # Children share the cores: more torch threads than cores each only thrash.
        os.environ["FOURFOLD_TORCH_THREADS"] = str(max(1, (os.cpu_count() or 1) // concurrency))
        settings = fourfold.get_settings(fresh=True)
    wanted = [q.strip() for q in queues.split(",") if q.strip()]
    unknown = sorted(set(wanted) - {names.REFRESH_QUEUE, names.TRAINING_QUEUE})
    if unknown or not wanted:
        exit_with(f"--queues: expected refresh and/or training, found '{queues}'")
    celery_app = make_app(settings, include_tasks=True)
    celery_app.set_current()
    celery_app.set_default()
    prepare_broker(celery_app, settings)
    broker_queues = [names.queue_name(settings.namespace, q) for q in wanted]
    announce_worker(celery_app, settings, queues=wanted, concurrency=concurrency, pool=pool.value)
    _queue_first_builds_when(worker_ready, loaded, settings)
    argv = [
        "worker",
        f"--pool={pool.value}",
        f"--concurrency={concurrency}",
        f"--queues={','.join(broker_queues)}",
        f"--loglevel={loglevel.upper()}",
        f"--hostname={hostname or f'fourfold-{os.getpid()}@%h'}",
        "--without-gossip",
        "--without-mingle",
    ]
    if not uses_redis(settings):
        argv.append("--without-heartbeat")  # the SQLite broker has no broadcast
    if metrics_port:
        from fourfold.metrics import serve_worker_metrics

        serve_worker_metrics(metrics_host, metrics_port, settings)
        console.print(f"metrics: http://{metrics_host}:{metrics_port}/metrics")
    celery_app.worker_main(argv)


def _queue_first_builds_when(signal, manifests, settings) -> None:
    """Once ``signal`` (a Celery signal: the worker or beat is up, its logging set up)
    fires, queue the first build of every domain of ``manifests`` that has no published
    index (:mod:`fourfold.worker.bootstrap`)."""
    from fourfold.worker.bootstrap import queue_missing_indexes_in_background

    domains = _domains(manifests, settings)

    @signal.connect(weak=False)
    def _queue(sender=None, **_):
        queue_missing_indexes_in_background(domains, settings)


def _multiprocess_metrics(state_dir: Path) -> None:
    """Turn on prometheus-client's multiprocess mode: samples of every pool process go to
    files in PROMETHEUS_MULTIPROC_DIR (a folder of this worker's when unset), emptied
    at start so a previous run's counts are not added again."""
    import shutil
    import sys

    if "prometheus_client" in sys.modules and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        raise FourfoldError("--metrics-port: prometheus_client was imported before multiprocess mode could be set up")
    folder = Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or state_dir / "metrics" / f"worker-{os.getpid()}")
    if folder.exists() and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)


# -------------------------------------------------------------------------
# fourfold beat
# -------------------------------------------------------------------------


@app.command()
@handle_errors
def beat(
    manifests: list[Path] = typer.Argument(
        None, help="Manifests (or recorded domain names) whose knowledge.refresh to schedule. Without any, every domain recorded "
        "in the state dir's registry.", show_default=False,
    ),
    loglevel: str = typer.Option("info", "--loglevel", "-l", help="debug, info, warning or error."),
) -> None:
    """Queue scheduled refreshes: [bold]knowledge.refresh[/bold] ('every: 30m' or 'cron: "0 3 * * *"', UTC) of each manifest.

    Run exactly one beat per deployment (two would queue every refresh twice; the domain lease keeps that harmless but wasteful). The schedule's last run times are kept in the state dir (beat-schedule), so a restart does not re-run everything at once. Restart beat after changing a manifest's schedule.

    At start it queues a first build of each of its domains that has no published index, rather than leaving them empty until their first scheduled refresh.
    """
    from celery.signals import beat_init

    import fourfold
    from fourfold.worker.app import make_app, prepare_broker
    from fourfold.worker.schedule import beat_schedule

    loaded = _load_manifests(manifest_paths(manifests)) if manifests else _registered_manifests()
    settings = fourfold.get_settings()
    schedule = beat_schedule(loaded, settings.namespace)
    if not schedule:
        err_console.print(
            "[yellow]warning:[/yellow] no manifest has a knowledge.refresh schedule; beat runs but has nothing to queue"
        )
    for name, entry in schedule.items():
        console.print(f"scheduled: {name} ({entry['schedule']})")
    celery_app = make_app(settings)
    celery_app.conf.beat_schedule = schedule
    prepare_broker(celery_app, settings)
    _queue_first_builds_when(beat_init, loaded, settings)
    celery_app.Beat(
        loglevel=loglevel.upper(),
        schedule=celery_app.conf.beat_schedule_filename,
        max_interval=30,
    ).run()


# -------------------------------------------------------------------------
# fourfold refresh
# -------------------------------------------------------------------------


def _domain_name(target: str) -> str:
    path = manifest_path(target)
    if path == Path(target):  # a manifest file: its domain (and record it)
        return _load_manifests([path])[0].domain
    return target


@app.command()
@handle_errors
def refresh(
    target: str = typer.Argument(..., help=MANIFEST_OR_DOMAIN, show_default=False),
    wait: bool = typer.Option(False, "--wait", "-w", help="Wait for the refresh to finish, showing its progress; the exit status says whether it succeeded."),
    full: bool = typer.Option(False, "--full", help="Rebuild the index from scratch instead of applying only what changed."),
    timeout: float = typer.Option(0, "--timeout", min=0, help="With --wait: give up waiting after this many seconds (0: no limit); exit status 2."),
) -> None:
    """Ask the workers to refresh a domain's knowledge base now.

    If a refresh of the domain is already queued, that one is reported (and waited for) instead of starting another. If one is running, one more run is recorded to follow it, so that what changed since it started is indexed too (requests made meanwhile share that follow-up); --wait waits for the follow-up. A queued or running task whose worker died does not stand in the way: it is released and the refresh queued again. Exit status with --wait: 0 when it succeeded, 1 when it failed or was given up as dead, 2 when --timeout ran out.
    """
    from fourfold.worker import client

    domain = _domain_name(target)
    info = client.request_refresh(domain, full=full)
    released = info.extra.get("requeued_from")
    if released:
        console.print(f"[yellow]task {released} stood for '{domain}' but its worker died; released it[/yellow]")
    if info.follows:
        running = client.task_info(info.follows)
        progress = f" ({_progress_text(running.progress)})" if running and running.progress else ""
        console.print(
            f"a refresh of '{domain}' is running: task {info.follows}{progress}; "
            + ("this request joins the follow-up run" if info.existing else "a follow-up run is recorded")
            + f" that starts when it ends: task {info.id}"
        )
    elif info.existing:
        console.print(
            f"a refresh of '{domain}' is already {info.state}: task {info.id}"
            + (f" ({_progress_text(info.progress)})" if info.progress else "")
        )
    else:
        console.print(f"queued a {'full ' if full else ''}refresh of '{domain}': task {info.id}")
    if not wait:
        return
    final = _wait_with_progress(info, timeout or None)
    if final.state == "succeeded":
        summary = _summary(final.result)
        console.print(f"[green]succeeded[/green] in {_took(final)}" + (f": {escape(summary)}" if summary else ""))
        return
    exit_with(f"refresh of '{domain}' {final.state} (task {final.id}): {final.error or 'no reason recorded'}")


def _wait_with_progress(info, timeout: float | None):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from fourfold.worker import client

    started = time.monotonic()
    warned = False
    bars = Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err_console, transient=True,
    )
    bar_id = None
    stage = None

    def update(current) -> None:
        nonlocal bar_id, stage, warned
        if current.state in ("queued", "requeued"):
            description = f"waiting for task {current.follows} to end" if current.follows and not current.extra.get("dispatched_at") else "queued, waiting for a worker"
            if current.stuck:
                description = f"stuck: {current.stuck}"
            if not warned and time.monotonic() - started > 10 and not client.live_workers():
                err_console.print("[yellow]warning:[/yellow] no worker is running; start one with 'fourfold worker'")
                warned = True
            total, done = None, 0
        else:
            p = current.progress or {}
            description = p.get("stage") or current.state
            total, done = p.get("total"), p.get("done", 0)
        if bar_id is None:
            bar_id = bars.add_task(description, total=total)
        if description != stage:
            stage = description
            bars.reset(bar_id, total=total, description=description)
            if not err_console.is_terminal:  # a log or a pipe: one line per stage instead of a bar
                err_console.print(f"{escape(description)}" + (f" ({total})" if total else "") + f" after {time.monotonic() - started:.0f}s")
        bars.update(bar_id, completed=done, total=total)

    with bars:
        try:
            return client.wait(info.id, timeout=timeout, on_update=update)
        except client.WaitTimeout as exc:
            bars.stop()
            last = client.task_info(info.id)
            if last is not None and last.stuck:
                exit_with(f"{exc}: nothing runs it, {last.stuck} (see 'fourfold tasks')", code=2)
            exit_with(f"{exc}; it goes on in the background (see 'fourfold tasks')", code=2)


# -------------------------------------------------------------------------
# fourfold tasks
# -------------------------------------------------------------------------


@app.command()
@handle_errors
def tasks(
    as_json: bool = typer.Option(False, "--json", help="Print JSON: workers, running, queued, recent, dead."),
    limit: int = typer.Option(20, "--limit", "-n", min=1, help="Recent and dead tasks to list."),
) -> None:
    """Show background work: live workers, tasks running (with progress), queued, recent and dead.

    A [bold]dead[/bold] task killed its worker process on every delivery (out of memory, a crash in native code) and was given up after FOURFOLD_MAX_DELIVERIES tries; the domain's published index is unchanged. [bold]skipped[/bold] means another task was writing that domain; the follow-up run it names does this one's work. [bold]stuck[/bold]: its worker died and nothing runs it; the next request or worker start requeues it ([bold]requeued[/bold]) or, for a request, [bold]released[/bold] it in favour of a new task. [bold]retrying[/bold]: an infrastructure failure (Redis away, a locked database), tried again after a pause.
    """
    from fourfold.worker import client

    workers = client.live_workers()
    running = client.running_tasks()
    recent = client.recent_tasks(limit)
    dead = client.dead_tasks(limit)
    queued = [t for t in recent if t.state in ("queued", "requeued") and not t.stuck]
    stuck = [t for t in recent if t.stuck] + [t for t in running if t.stuck]
    if as_json:
        print(json.dumps(
            {
                "workers": workers,
                "running": [t.to_dict() for t in running],
                "queued": [t.to_dict() for t in queued],
                "stuck": [t.to_dict() for t in stuck],
                "recent": [t.to_dict() for t in recent],
                "dead": [t.to_dict() for t in dead],
            },
            indent=2,
        ))
        return
    if workers:
        console.print(
            "workers: " + ", ".join(f"{n} ({w.get('pool')} x{w.get('concurrency')}, {','.join(w.get('queues', []))})" for n, w in sorted(workers.items()))
        )
    else:
        console.print("[yellow]workers: none running[/yellow] (start one with 'fourfold worker')")
    if running:
        table = Table(title="running", title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0))
        for col in ("task", "kind", "domain", "progress", "for", "worker", "try"):
            table.add_column(col, overflow="fold")
        for t in running:
            progress = f"[red]stuck: {escape(t.stuck)}[/red]" if t.stuck else _progress_text(t.progress)
            if t.state == "retrying":
                progress = f"[yellow]retrying: {escape(t.error or '')}[/yellow]"
            table.add_row(_short_id(t.id), t.name, t.domain, progress, _took(t), t.worker or "-", str(t.deliveries or 1))
        console.print(table)
    else:
        console.print("running: none")
    for t in stuck:
        console.print(f"[red]stuck:[/red] {t.name} of '{escape(t.domain)}' (task {_short_id(t.id)}): {escape(t.stuck or '')}")
    table = Table(title="recent", title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0))
    for col in ("task", "kind", "domain", "state", "when", "took"):
        table.add_column(col, no_wrap=col != "domain", overflow="fold")
    table.add_column("outcome", overflow="fold")
    colours = {
        "succeeded": "green", "failed": "red", "dead": "red", "running": "cyan", "queued": "yellow", "skipped": "dim",
        "requeued": "yellow", "retrying": "yellow", "released": "dim", "stuck": "red",
    }
    for t in recent:
        when = t.finished_at or t.started_at or t.extra.get("requeued_at") or t.queued_at
        shown = "stuck" if t.stuck else t.state
        if t.stuck:
            outcome = t.stuck
        elif t.state == "skipped" and t.covered_by:
            outcome = (f"writer was {_short_id(t.running)}; covered by the follow-up {_short_id(t.covered_by)}" if t.running
                       else f"covered by {_short_id(t.covered_by)}")
        elif t.state in ("queued", "requeued") and t.follows and not t.extra.get("dispatched_at"):
            outcome = f"follow-up: starts when {_short_id(t.follows)} ends"
        elif t.state == "requeued":
            outcome = t.extra.get("note") or "its worker died; back in the queue"
        else:
            outcome = t.error or (f"writer was {_short_id(t.running)}" if t.running else _summary(t.result))
        colour = colours.get(shown, "white")
        table.add_row(_short_id(t.id), t.name, t.domain, f"[{colour}]{shown}[/{colour}]", _ago(when), _took(t), escape(outcome or ""))
    console.print(table if recent else "recent: none")
    if dead:
        table = Table(title="dead (given up)", title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0))
        for col in ("task", "kind", "domain", "tries", "when"):
            table.add_column(col, no_wrap=col != "domain", overflow="fold")
        table.add_column("reason", overflow="fold")
        for t in dead:
            table.add_row(_short_id(t.id), t.name, t.domain, str(t.deliveries), _ago(t.finished_at), escape(t.error or ""))
        console.print(table)
