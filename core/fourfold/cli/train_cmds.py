"""``fourfold train, fine-tune, artifacts``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from fourfold.cli.common import MANIFEST_OR_DOMAIN, app, console, err_console, handle_errors, load_domain

# Nothing heavy at import: torch and transformers load only when a stage runs.


def _progress(quiet: bool):
    """Bars on stderr, or nothing when asked for quiet or JSON output."""
    from contextlib import nullcontext

    from fourfold.cli.progress import RichProgress
    from fourfold.components import NullProgress

    return nullcontext(NullProgress()) if quiet else RichProgress()


HEADLINE_METRICS = {"heldout_perplexity": "held-out perplexity", "ndcg@10": "held-out nDCG@10"}


def headline(metrics: dict[str, Any]) -> str:
    """The before → after change of the metric that says whether the run helped."""
    before, after = metrics.get("before") or {}, metrics.get("after") or {}
    return "; ".join(
        f"{label} {before[key]:g} → {after[key]:g}" for key, label in HEADLINE_METRICS.items() if key in before and key in after
    )


def _summary(run) -> str:
    artifact = run.artifact
    metrics = artifact.metrics
    parts = [headline(metrics)] if headline(metrics) else []
    if metrics.get("tokens_per_s"):
        parts.append(f"{metrics['tokens_per_s']:,.0f} tokens/s")
    if metrics.get("final_step") is not None:
        parts.append(f"{metrics['final_step']} steps")
    how = "reused (inputs unchanged)" if run.reused else f"made in {artifact.info.get('duration_s', 0):.1f} s"
    return f"{run.stage}: artifact [bold]{escape(artifact.name)}[/bold] {how}" + (f"; {'; '.join(parts)}" if parts else "")


def _report(runs: list, as_json: bool) -> None:
    if as_json:
        print(json.dumps([{"stage": r.stage, "reused": r.reused, **r.artifact.summary()} for r in runs], indent=2))
        return
    for run in runs:
        console.print(_summary(run), soft_wrap=True)


@app.command()
@handle_errors
def train(
    manifest: Path = typer.Argument(..., help=MANIFEST_OR_DOMAIN, show_default=False),
    force: bool = typer.Option(False, "--force", help="Train again even when the artifact's inputs are unchanged."),
    as_json: bool = typer.Option(False, "--json", help="Print the artifact as JSON."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Train the manifest's model from scratch ([bold]training:[/bold] block) into an artifact.

    An unchanged manifest, knowledge base and config reuse the existing artifact; an
    interrupted run resumes from its last checkpoint when started again.
    """
    from fourfold.training import run_training

    domain = load_domain(manifest)
    if domain.manifest.training is None:
        err_console.print(f"{escape(str(manifest))}: no 'training:' block; nothing to train")
        if as_json:
            print("[]")
        return
    with _progress(quiet or as_json) as progress:
        run = run_training(domain, progress, force=force)
    _report([run], as_json)


@app.command("fine-tune")
@handle_errors
def fine_tune(
    manifest: Path = typer.Argument(..., help=MANIFEST_OR_DOMAIN, show_default=False),
    force: bool = typer.Option(False, "--force", help="Fine-tune again even when the artifacts' inputs are unchanged."),
    only: str = typer.Option(None, "--only", help="Run only the fine_tuning block that produces this artifact."),
    as_json: bool = typer.Option(False, "--json", help="Print the artifacts as JSON."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Run the manifest's [bold]fine_tuning:[/bold] blocks, in order, each into an artifact.

    The [bold]training:[/bold] stage runs first when the manifest has one (reused when
    unchanged), since a fine-tuning block may adapt the model it trains.
    """
    from fourfold.training import run_fine_tuning, run_training

    domain = load_domain(manifest)
    if not domain.manifest.fine_tuning:
        err_console.print(f"{escape(str(manifest))}: no 'fine_tuning:' block; nothing to fine-tune")
        if as_json:
            print("[]")
        return
    runs = []
    with _progress(quiet or as_json) as progress:
        if domain.manifest.training is not None:
            runs.append(run_training(domain, progress, force=False))
        runs.extend(run_fine_tuning(domain, progress, force=force, only=only))
    _report(runs, as_json)


@app.command()
@handle_errors
def artifacts(
    name: str = typer.Argument(None, help="Show this artifact's full record (artifact.json)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List the trained and fine-tuned models in the state dir, with their lineage and
    before/after metrics. Name one in a manifest as [bold]artifact:NAME[/bold]."""
    from fourfold.artifacts import ArtifactStore

    store = ArtifactStore()
    if name is not None:
        artifact = store.get(name)
        print(json.dumps(artifact.info, indent=2, sort_keys=True))
        return
    found = store.list()
    if as_json:
        print(json.dumps([a.summary() for a in found], indent=2))
        return
    if not found:
        console.print(f"No artifacts in {escape(str(store.root))} yet: run 'fourfold train' or 'fourfold fine-tune'.")
        return
    table = Table()
    for col in ("name", "kind", "made by", "base", "before → after", "finished"):
        table.add_column(col, overflow="fold")
    for a in found:
        s = a.summary()
        table.add_row(
            escape(a.name),
            s["kind"],
            s["component"] or "-",
            escape(str(s["base"] or "-")),
            headline(s["metrics"]) or "-",
            (s["finished_at"] or "-").replace("T", " ")[:16],
        )
    console.print(table)
