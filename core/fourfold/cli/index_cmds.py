"""``fourfold index build/status/rollback/publish, search, ask, eval``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from fourfold.cli.common import MANIFEST_OR_DOMAIN, app, console, err_console, handle_errors, load_domain

# Nothing heavy at import: the CLI starts for every command.

index_app = typer.Typer(help="Build, inspect and roll back a domain's knowledge index.", no_args_is_help=True)
eval_app = typer.Typer(help="Measure retrieval (and other) quality on evaluation datasets.", no_args_is_help=True)
app.add_typer(index_app, name="index")
app.add_typer(eval_app, name="eval")

_MANIFEST = typer.Argument(..., help=MANIFEST_OR_DOMAIN, show_default=False)
_LIST_LIMIT = 12


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def _names(title: str, items: list[str]) -> None:
    if not items:
        return
    shown = ", ".join(items[:_LIST_LIMIT])
    more = f" … and {len(items) - _LIST_LIMIT} more" if len(items) > _LIST_LIMIT else ""
    console.print(f"  [bold]{title}[/bold] ({len(items)}): {escape(shown)}{more}")


# -------------------------------------------------------------------------
# index build / status / rollback
# -------------------------------------------------------------------------


@index_app.command("build")
@handle_errors
def build(
    manifest: Path = _MANIFEST,
    full: bool = typer.Option(False, "--full", help="Re-read every document and build from scratch (cached vectors are still reused)."),
    wait: bool = typer.Option(False, "--wait", help="If another process is writing this index, wait for it instead of failing."),
    as_json: bool = typer.Option(False, "--json", help="Print the refresh report as JSON."),
) -> None:
    """Build or refresh the domain's knowledge index and publish it.

    Only what changed since the published version is read and embedded; the result is
    published atomically, and earlier versions are kept for [bold]fourfold index rollback[/bold].
    """
    from fourfold.cli.progress import RichProgress
    from fourfold.index import refresh

    domain = load_domain(manifest)
    with RichProgress(transient=True) as progress:
        report = refresh(domain, progress, full=full, wait=wait)
    if as_json:
        _print_json(report.to_dict())
        return
    colour = "green" if report.published else "yellow"
    console.print(f"[{colour}]{escape(report.summary())}[/{colour}]")
    _names("added", report.added)
    _names("changed", report.changed)
    _names("removed", report.removed)
    _names("renamed", [f"{r['from']} → {r['to']}" for r in report.renamed])
    _names("skipped", report.skipped)
    for why in sorted(set(report.reread.values())):
        _names(f"re-read ({why})", [p for p, w in report.reread.items() if w == why])
    if report.timings:
        stages = ", ".join(f"{k} {v:.2f}s" for k, v in report.timings.items() if k != "total")
        console.print(f"  [dim]timings: {escape(stages)}[/dim]")
    for warning in report.warnings:
        err_console.print(f"[yellow]warning:[/yellow] {escape(warning)}")


@index_app.command("status")
@handle_errors
def status(
    manifest: Path = _MANIFEST,
    as_json: bool = typer.Option(False, "--json", help="Print the status as JSON."),
) -> None:
    """Show the published index version, its counts, the versions kept and recent history."""
    from fourfold.index import index_status

    domain = load_domain(manifest)
    st = index_status(domain)
    background = _background_tasks(domain.name)
    if as_json:
        _print_json({**st.to_dict(), "tasks": {k: v.to_dict() for k, v in (background or {}).items()}})
        return
    if st.published is None:
        console.print(f"domain '{domain.name}': no published index; run 'fourfold index build {manifest}'")
    else:
        console.print(
            f"domain '{domain.name}': [bold]{st.published}[/bold] published {st.created}: "
            f"{st.documents} documents, {st.chunks} chunks ({escape(st.retriever or '')}, {escape(st.store_id or '')}, "
            f"embedder {escape(st.embedder or '-')})"
        )
    if st.writer:
        console.print(f"  [yellow]being refreshed by pid {st.writer.get('pid')} on {st.writer.get('host')} since {st.writer.get('since')}[/yellow]")
    for role, info in (background or {}).items():
        label = {"running": "background refresh", "queued": "queued refresh", "follow_up": "follow-up refresh"}[role]
        if info.stuck:
            console.print(f"  [red]{label} {info.id} is stuck: {escape(info.stuck)}[/red]")
        elif role == "follow_up":
            console.print(f"  [yellow]{label} {info.id} starts when {info.follows or 'the running one'} ends[/yellow]")
        else:
            detail = f" ({info.progress.get('stage')} {info.progress.get('done')}/{info.progress.get('total') or '?'})" if info.progress else ""
            console.print(f"  [yellow]{label} {info.id}: {info.state}{escape(detail)}[/yellow]")
    if st.versions:
        table = Table(title="versions kept", title_justify="left", show_edge=False)
        for col in ("version", "created", "documents", "chunks", ""):
            table.add_column(col)
        for v in reversed(st.versions):
            state = "published" if v.published else ("held" if v.held else "")
            score = f"nDCG@10 {v.ndcg_at_10:.3f}" if v.ndcg_at_10 is not None else ""
            table.add_row(v.version, v.created, str(v.documents), str(v.chunks), " ".join(x for x in (state, score) if x))
        console.print(table)
    for held in st.held:
        console.print(f"[red]held by the quality gate:[/red] {held['version']}: {escape(held['summary'])}", soft_wrap=True)
        for w in held.get("worse", [])[:10]:
            console.print(f"  {w['before']:.2f} → {w['after']:.2f}  {escape(w['question'])}", soft_wrap=True)
            for p in w.get("top", []):
                console.print(f"      [dim]{escape(p['source'])}: {escape(p['text'][:100])}[/dim]", soft_wrap=True)
        console.print(f"  publish it anyway: fourfold index publish {manifest} {held['version']} --force --reason \"…\"")
    last_warnings = (st.last_refresh or {}).get("warnings") or []
    if last_warnings:
        console.print(f"[yellow]warnings of the last refresh[/yellow] ({len(last_warnings)}):")
        for warning in last_warnings:
            console.print(f"  {escape(str(warning))}", soft_wrap=True)
    if st.history:
        console.print("[bold]history[/bold]")
        for event in reversed(st.history[-10:]):
            detail = event.get("summary") or event.get("error") or ""
            if event.get("event") == "rollback":
                detail = f"from {event.get('previous')}"
            console.print(f"  {event.get('time')}  {event.get('event'):<9} {event.get('version') or '':<8} {escape(str(detail))}")


def _background_tasks(domain: str) -> dict | None:
    """The background refreshes standing for ``domain`` (running, queued, follow-up),
    or None when the task state cannot be read (no worker set up, Redis away)."""
    from fourfold.settings import get_settings
    from fourfold.worker.app import uses_redis

    settings = get_settings()
    if not uses_redis(settings) and not (settings.state_dir / "tasks.sqlite").exists():
        return None  # no worker was ever used here
    try:
        from fourfold.worker import client

        return client.domain_tasks(domain)
    except Exception as exc:
        err_console.print(f"[dim]background tasks unknown: {type(exc).__name__}[/dim]")
        return None


@index_app.command("rollback")
@handle_errors
def rollback_cmd(
    manifest: Path = _MANIFEST,
    to: str | None = typer.Option(None, "--to", help="Version to publish, e.g. v000003 (default: the one before the published)."),
) -> None:
    """Publish an earlier index version again (readers switch at their next search)."""
    from fourfold.index import rollback

    domain = load_domain(manifest)
    version = rollback(domain, to)
    console.print(f"domain '{domain.name}': published {version}")


@index_app.command("publish")
@handle_errors
def publish_cmd(
    manifest: Path = _MANIFEST,
    version: str = typer.Argument(..., help="The held version to publish, e.g. v000004.", show_default=False),
    force: bool = typer.Option(False, "--force", help="Publish although the quality gate held it."),
    reason: str = typer.Option("", "--reason", help="Why; recorded in the index history."),
) -> None:
    """Publish a version the quality gate (knowledge.gate) held, with a recorded reason."""
    from fourfold.index.quality import publish_held

    domain = load_domain(manifest)
    verdict = publish_held(domain, version, force=force, reason=reason)
    console.print(f"domain '{domain.name}': published {verdict.version} over the quality gate ({escape(verdict.summary())})")


@index_app.command("adopt-embedder")
@handle_errors
def adopt_embedder_cmd(
    manifest: Path = _MANIFEST,
    margin: float = typer.Option(0.01, "--margin", help="nDCG@10 the tuned embedder must gain on the held-out questions to be published."),
    force: bool = typer.Option(False, "--force", help="Train again even if the artifact's inputs are unchanged."),
    as_json: bool = typer.Option(False, "--json", help="Print the outcome as JSON."),
) -> None:
    """Train the domain-tuned embedder its manifest asks for and publish an index built
    with it only if it beats the published version on held-out questions.

    The manifest names the artifact in [bold]embedding.with.model[/bold] (artifact:NAME) and an
    [bold]embedder-contrastive[/bold] fine_tuning block producing it. Re-running resumes: the
    fine-tuner checkpoints, and vectors already embedded are cached.
    For [bold]hybrid[/bold], it also tries other fusion weights, candidate depths
    and BM25 title weights on tune questions kept from training and prints
    the retrieval.with settings to write when they score better; the
    manifest's serve until then.
    """
    from fourfold.adoption import adopt_embedder
    from fourfold.cli.progress import RichProgress

    domain = load_domain(manifest)
    with RichProgress(transient=True) as progress:
        result = adopt_embedder(domain, progress, margin=margin, force=force)
    if as_json:
        _print_json(result.to_dict())
    else:
        colour = "green" if result.adopted else "yellow"
        console.print(f"[{colour}]{escape(result.summary())}[/{colour}]")
        if change := result.suggestion():
            console.print(f"set {escape(change)} in {escape(str(manifest))} to serve with the settings chosen on held-out tune questions")
    if not result.adopted:
        raise typer.Exit(1)


# -------------------------------------------------------------------------
# search / ask
# -------------------------------------------------------------------------


@app.command()
@handle_errors
def search(
    manifest: Path = _MANIFEST,
    query: str = typer.Argument(..., help="What to search for.", show_default=False),
    retriever: str | None = typer.Option(None, "--retriever", "-r", help="Retriever to use instead of the manifest's (e.g. dense, sparse, hybrid)."),
    top_k: int | None = typer.Option(None, "--top-k", "-k", min=1, max=100, help="Passages to return (default: the retriever's top_k)."),
    source_prefix: str | None = typer.Option(None, "--source-prefix", help="Only documents whose path starts with this."),
    file_type: list[str] = typer.Option([], "--file-type", help="Only these file types (md, html, pdf, txt); repeatable."),
    tag: list[str] = typer.Option([], "--tag", help="Only chunks carrying this tag; repeatable (all must match)."),
    meta: list[str] = typer.Option([], "--meta", help="Only records whose loader metadata has KEY=VALUE; repeatable (all must match)."),
    as_json: bool = typer.Option(False, "--json", help="Print the passages as JSON."),
) -> None:
    """Search the domain's published index and show the ranked passages."""
    import time

    from fourfold.types import SearchFilters

    from fourfold.index import retriever_for

    domain = load_domain(manifest)
    chosen = retriever_for(domain, retriever) if retriever else None
    pairs = []
    for item in meta:
        key, sep, value = item.partition("=")
        if not sep or not key:
            from fourfold.errors import FourfoldError

            raise FourfoldError(f"--meta {item!r}: write it as KEY=VALUE, e.g. --meta topic=cats")
        try:  # numbers and true/false compare as such; everything else as text
            parsed = json.loads(value)
        except ValueError:
            parsed = value
        pairs.append((key, parsed if isinstance(parsed, (int, float, bool)) else value))
    filters = SearchFilters(
        source_prefix=source_prefix,
        file_types=tuple(t.lower().lstrip(".") for t in file_type),
        tags=tuple(tag),
        metadata=tuple(pairs),
    )
    started = time.perf_counter()
    passages, version = domain.search(query, top_k=top_k, filters=filters or None, retriever=chosen)
    took_ms = (time.perf_counter() - started) * 1000
    if as_json:
        _print_json(
            {
                "domain": domain.name,
                "version": version,
                "retriever": retriever or domain.manifest.retrieval.use,
                "took_ms": round(took_ms, 2),
                "passages": [
                    {
                        "rank": i,
                        "score": round(p.score, 6),
                        "source": p.chunk.source,
                        "title": p.chunk.title,
                        "heading": p.chunk.heading,
                        "page": p.chunk.page,
                        "file_type": p.chunk.file_type,
                        "tags": list(p.chunk.tags),
                        "id": p.chunk.id,
                        "url": p.chunk.url,
                        "metadata": p.chunk.metadata,
                        "text": p.chunk.text,
                    }
                    for i, p in enumerate(passages, start=1)
                ],
            }
        )
        return
    console.print(
        f"[dim]{len(passages)} passages from {domain.name} {version} "
        f"({escape(retriever or domain.manifest.retrieval.use)}, {took_ms:.0f} ms)[/dim]"
    )
    for i, p in enumerate(passages, start=1):
        where = p.chunk.source + (f", page {p.chunk.page}" if p.chunk.page else "")
        heading = f" › {p.chunk.heading}" if p.chunk.heading else ""
        console.print(f"[bold]{i:>2}.[/bold] [cyan]{p.score:.4f}[/cyan]  {escape(where)}{escape(heading)}")
        if p.chunk.url:
            console.print(f"    [dim]{escape(p.chunk.title)} · {escape(p.chunk.url)}[/dim]", soft_wrap=True)
        snippet = " ".join(p.chunk.text.split())
        console.print(f"    {escape(snippet[:240])}{'…' if len(snippet) > 240 else ''}")


@app.command()
@handle_errors
def ask(
    manifest: Path = _MANIFEST,
    question: str = typer.Argument(..., help="The question.", show_default=False),
    as_json: bool = typer.Option(False, "--json", help="Print the answer, citations and timings as JSON."),
) -> None:
    """Answer a question with the domain's prompt strategy, retriever and generator."""
    domain = load_domain(manifest)
    answer = domain.answer(question)
    if as_json:
        _print_json(answer.to_dict())
        return
    console.print(escape(answer.text))
    if answer.citations:
        console.print()
        for c in answer.citations:
            where = c.source + (f", page {c.page}" if c.page else "")
            heading = f" › {c.heading}" if c.heading else ""
            link = f" · {c.url}" if c.url else ""
            console.print(f"[dim][{c.n}] {escape(where)}{escape(heading)}{escape(link)}[/dim]", soft_wrap=True)
    if answer.refused and answer.related:
        console.print("\n[dim]Closest passages (related reading, not an answer):[/dim]")
        for c in answer.related:
            console.print(f"[dim]  {escape(c.source)}{escape(' › ' + c.heading if c.heading else '')}[/dim]", soft_wrap=True)
    for s in answer.sentences:
        if not s.get("text") and s.get("note"):  # removed before anyone saw it
            err_console.print(f"[yellow]{escape(s['verdict'])} sentence removed:[/yellow] {escape(s['note'])}", soft_wrap=True)
        elif s.get("verdict") == "replaced":
            err_console.print(f"[yellow]contradicted sentence replaced by the passage's own:[/yellow] {escape(s.get('note', ''))}", soft_wrap=True)
    if answer.flags:
        err_console.print(f"[yellow]flags:[/yellow] {escape(', '.join(answer.flags))}")
    console.print(f"[dim]{domain.name} {answer.index_version or ''} · {answer.timings.get('total_ms', 0):.0f} ms[/dim]")


# -------------------------------------------------------------------------
# eval retrieval
# -------------------------------------------------------------------------


@eval_app.command("retrieval")
@handle_errors
def eval_retrieval(
    target: Path | None = typer.Argument(
        None, help="A domain manifest: score its published index on its knowledge.eval questions.", show_default=False
    ),
    dataset: Path | None = typer.Option(None, "--dataset", "-d", help="Folder with corpus.jsonl, queries.jsonl and qrels.tsv.", show_default=False),
    retriever: list[str] = typer.Option([], "--retriever", "-r", help="Retriever(s) to evaluate; repeatable (default: sparse, dense, hybrid)."),
    split: str = typer.Option("all", "--split", help="Questions: all, or the 'tune' / 'check' half (tune on one, report on the other)."),
    manifest: Path | None = typer.Option(None, "--manifest", "-m", help="Take the embedder and retriever settings from this manifest."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Evaluate only the first N questions."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
) -> None:
    """nDCG@10, Recall@10, MRR@10 and search latency (p50/p95, embedding included).

    With a MANIFEST: nDCG@10 of the domain's published index on its own evaluation
    questions (knowledge.eval), the figure the quality gate checks. With --dataset: the
    corpus is embedded once (vectors are cached in the state dir) and indexed once per
    store, so re-runs only search.
    """
    from fourfold.cli.progress import RichProgress
    from fourfold.evaluation.retrieval import evaluate_retrieval
    from fourfold.manifest import load_manifest
    from fourfold.plugins import get_host

    if target is not None and dataset is None:
        _eval_domain(target, retriever, split, limit, as_json)
        return
    if dataset is None:
        raise typer.BadParameter("give a domain manifest, or --dataset with a retrieval dataset folder")

    host = get_host()
    manifest = manifest or target
    loaded = load_manifest(manifest, host) if manifest else None
    names = retriever or ["sparse", "dense", "hybrid"]
    with RichProgress(transient=True) as progress:
        result = evaluate_retrieval(dataset, names, split=split, host=host, manifest=loaded, progress=progress, limit=limit)
    if as_json:
        _print_json(result.to_dict())
        return
    table = Table(
        title=f"{result.dataset} ({result.split}, {result.results[0].queries if result.results else 0} questions, "
        f"{result.corpus} passages)",
        title_justify="left",
    )
    for col in ("retriever", "nDCG@10", "Recall@10", "MRR@10", "p50 ms", "p95 ms"):
        table.add_column(col, justify="left" if col == "retriever" else "right")
    for r in result.results:
        table.add_row(
            r.retriever,
            f"{r.metrics['ndcg@10']:.4f}",
            f"{r.metrics['recall@10']:.4f}",
            f"{r.metrics['mrr@10']:.4f}",
            f"{r.latency_ms['p50']:.1f}",
            f"{r.latency_ms['p95']:.1f}",
        )
    console.print(table)


def _eval_domain(manifest: Path, retrievers: list[str], split: str, limit: int | None, as_json: bool) -> None:
    """``fourfold eval retrieval MANIFEST``: the published index on knowledge.eval."""
    from fourfold.errors import ManifestError
    from fourfold.evaluation.questions import eval_questions_for
    from fourfold.index import retriever_for
    from fourfold.index.quality import measure_published

    domain = load_domain(manifest)
    questions = eval_questions_for(domain.manifest)
    if questions is None:
        raise ManifestError([f"{manifest}: knowledge.eval: name a JSONL file of evaluation questions to score this domain"])
    chosen = questions.split(split)[:limit]
    results = [measure_published(domain, chosen, retriever=retriever_for(domain, name)) for name in (retrievers or [domain.manifest.retrieval.use])]
    if as_json:
        _print_json({"domain": domain.name, "eval": str(questions.path), "split": split, "results": [r.to_json() for r in results]})
        return
    console.print(f"{domain.name} {results[0].version or '(nothing published)'} on {questions.path.name} ({split}, {len(chosen)} questions)")
    table = Table(show_edge=False)
    for col in ("retriever", "nDCG@10", "missed (nDCG 0)", "seconds"):
        table.add_column(col, justify="left" if col == "retriever" else "right")
    for r in results:
        table.add_row(r.retriever, f"{r.ndcg_at_10:.4f}", str(sum(1 for q in r.questions if q.ndcg == 0)), f"{r.seconds:.2f}")
    console.print(table)
    for q in sorted(results[0].questions, key=lambda q: q.ndcg)[:5]:
        if q.ndcg >= 1:
            break
        found = ", ".join(p["source"] for p in q.top) or "nothing"
        console.print(f"  {q.ndcg:.2f}  {escape(q.question)}  [dim](line {q.line}; found {escape(found)})[/dim]", soft_wrap=True)
