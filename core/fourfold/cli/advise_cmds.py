"""``fourfold calibrate``, ``fourfold advise`` and ``fourfold eval compare``: what each
method costs here and elsewhere, and what each configuration buys in quality."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from fourfold.cli.common import MANIFEST_OR_DOMAIN, app, console, err_console, handle_errors, load_domain, manifest_path
from fourfold.cli.index_cmds import eval_app

# Nothing heavy at import: the CLI starts for every command.

_MANIFEST = typer.Argument(..., help=MANIFEST_OR_DOMAIN, show_default=False)


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def _log(line: str) -> None:
    err_console.print(f"[dim]{escape(line)}[/dim]")


# -------------------------------------------------------------------------
# calibrate
# -------------------------------------------------------------------------


@app.command()
@handle_errors
def calibrate(
    quick: bool = typer.Option(False, "--quick", help="Fewer texts and steps; no SmolLM2 conversion or training pass (rougher, about half the time)."),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
) -> None:
    """Measure this machine: embedder, training and generation tokens/s (under a minute).

    Runs the real components on a few pages of sample text and stores the figures in
    the state dir ([bold]calibration.json[/bold]), where [bold]fourfold advise[/bold] reads them.
    A GPU is used (and its figures recorded) when torch sees one.
    """
    from fourfold.advisor import calibration_file, run_calibration
    from fourfold.cli.progress import RichProgress

    with RichProgress(transient=True) as progress:
        record = run_calibration(quick=quick, progress=progress, log=None if as_json else _log)
    if as_json:
        _print_json(record)
        return
    _print_calibration(record)
    console.print(f"[dim]saved to {escape(str(calibration_file()))} ({record['duration_s']:.0f} s)[/dim]")


def _print_calibration(r: dict[str, Any]) -> None:
    m = r["machine"]
    where = f"{m['gpu']['name']} GPU, " if m.get("gpu") else ""
    console.print(f"[bold]{escape(where + str(m['cpu']))}[/bold]: {m['cores']} cores, {m['torch_threads']} torch threads, load average {m.get('load_average')}")
    table = Table(show_edge=False, title_justify="left")
    for col in ("what", "figure", "how"):
        table.add_column(col, overflow="fold")
    e = r.get("embedder")
    if e:
        table.add_row("embedder", f"{e['tokens_per_s']:,.0f} tokens/s", f"{e['name']} on {e['device']}, {e['texts']} passages of ~{e['mean_tokens_per_text']:.0f} tokens; load {e['load_s']:.1f} s; query {e['query_ms']:.0f} ms")
    s = r.get("store")
    if s:
        table.add_row("store", f"{s['points_per_s']:,.0f} points/s", f"{s['store_id']}; commit {s['commit_s']:.2f} s; search {s['search_ms']:.0f} ms (query embedding included)")
    for p in (r.get("training") or {}).get("points", []):
        c = p["config"]
        table.add_row("training", f"{p['tokens_per_step'] / p['step_s']:,.0f} tokens/s",
                      f"causal-lm {p['parameters']:,} parameters (width {c['width']}, {c['layers']} layers, {c['batch_size']}×{c['context']} tokens/step): {p['step_s'] * 1000:.0f} ms/step, set-up {p['setup_s']:.1f} s")
    lo = r.get("lora")
    if lo:
        table.add_row("lora", f"{lo['step_s'] * 1000:,.0f} ms/step", f"rank 8 on the {lo['base_parameters']:,}-parameter model; set-up {lo['setup_s']:.1f} s")
    x = r.get("extractive")
    if x:
        table.add_row("extractive", f"{x['ms_per_question']:,.0f} ms/question", f"{x['passages']} passages, {x['note']}")
    t = r.get("transformers")
    if t and t.get("decode_tokens_per_s"):
        table.add_row("generation", f"{t['decode_tokens_per_s']:,.0f} tokens/s", f"transformers on the {t['parameters']:,}-parameter calibration model")
    sm = r.get("smollm2")
    if sm:
        note = f"; {sm['note']}" if sm.get("note") else ""
        table.add_row("smollm2", f"{sm.get('decode_tokens_per_s', 0):,.1f} tokens/s",
                      f"decode; prefill {sm.get('prefill_tokens_per_s', 0):,.0f} tokens/s; load {sm['load_s']:.1f} s ({sm['checkpoint']} checkpoint){note}")
        ts = sm.get("train_step")
        if ts:
            table.add_row("training 135M", f"{ts['tokens'] / ts['seconds']:,.0f} tokens/s", f"SmolLM2 forward+backward: {ts['flops_per_s'] / 1e9:,.1f} GFLOP/s effective on {ts['device']}")
    d = r.get("disk")
    if d:
        table.add_row("disk", f"{d['write_bytes_per_s'] / 1e6:,.0f} MB/s", "fsync'd write")
    console.print(table)
    for name, why in (r.get("skipped") or {}).items():
        err_console.print(f"[yellow]not measured:[/yellow] {escape(name)}: {escape(why)}")
    sm = r.get("smollm2") or {}
    if sm.get("checkpoint") == "converted now":
        err_console.print("[yellow]note:[/yellow] the smollm2 time was dominated by converting its GGUF once; run calibrate again for its load time")


# -------------------------------------------------------------------------
# advise
# -------------------------------------------------------------------------


@app.command()
@handle_errors
def advise(
    manifest: Path = _MANIFEST,
    as_json: bool = typer.Option(False, "--json", help="Print every figure with its derivation as JSON."),
    report: Path | None = typer.Option(None, "--report", help="Also write a self-contained HTML report here (and keep a copy under the state dir's reports/).", dir_okay=False),
    changes_per_day: float | None = typer.Option(None, "--changes-per-day", min=0, help="Documents added, changed or removed per day (default: from the refresh history, else 1% of the documents)."),
    questions_per_day: float | None = typer.Option(None, "--questions-per-day", min=0, help="Questions asked per day (adds daily serving costs and a capacity check)."),
    answer_tokens: int = typer.Option(80, "--answer-tokens", min=1, max=4096, help="Assumed answer length of a language-model generator, in tokens."),
    accelerator: str = typer.Option("h100", "--accelerator", help="Reference accelerator: h100, h200, a100 or l4."),
    tflops: float | None = typer.Option(None, "--tflops", help="Override the accelerator's dense bf16 peak, in TFLOP/s."),
    mfu: float | None = typer.Option(None, "--mfu", help="Override the model FLOPs utilisation (0-1; default 0.35)."),
    price_per_hour: float | None = typer.Option(None, "--price-per-hour", help="Override the accelerator's price, $ per hour."),
    brief: bool = typer.Option(False, "--brief", help="Tables and recommendation only, without the derivations."),
) -> None:
    """Estimate what each method costs for this domain, and recommend a combination.

    For training from scratch, fine-tuning, prompting and retrieval, and for the
    manifest's own combination: one-time compute, recurring compute (refreshes, per
    1,000 questions), wall time on this machine (from [bold]fourfold calibrate[/bold]) and
    time and cost on a reference accelerator. Every figure shows its formula and inputs.
    """
    from fourfold.advisor import AdviseOptions, accelerator as preset, advise as run_advise, load_calibration, run_calibration

    acc = preset(accelerator, tflops=tflops, mfu=mfu, price_per_hour=price_per_hour)
    domain = load_domain(manifest)
    calibration = load_calibration(domain.settings)
    if calibration is None:
        err_console.print("[yellow]no calibration yet: measuring this machine first (fourfold calibrate --quick)[/yellow]")
        calibration = run_calibration(quick=True, log=_log)
    options = AdviseOptions(changes_per_day=changes_per_day, questions_per_day=questions_per_day, answer_tokens=answer_tokens, accelerator=acc)
    advice = run_advise(domain, options, calibration=calibration)
    data = advice.to_dict()
    if report is not None:
        from fourfold.reports import render_advice, save_report

        saved = save_report(render_advice(data), data, report, kind="advice", domain=domain.name)
        if not as_json:
            err_console.print(f"[dim]report: {escape(str(report))} (copy: {escape(str(saved))})[/dim]")
    if as_json:
        _print_json(data)
        return
    _print_advice(data, brief=brief)


def _fig(f: dict[str, Any] | None) -> str:
    return "n/a" if not f else str(f.get("text", "n/a"))


def _print_advice(a: dict[str, Any], *, brief: bool) -> None:
    corpus, changes, acc = a["corpus"], a["changes"], a["accelerator"]
    console.print(f"[bold]{escape(a['domain'])}[/bold] ({escape(a['manifest'])})")
    sampled = f", sampled {corpus['files_read']} of {corpus['files']} files" if corpus["sampled"] else ""
    console.print(
        f"  corpus: {_fig(corpus['documents'])}, {_fig(corpus['tokens'])}, {_fig(corpus['chunks'])} "
        f"(read and chunked in {_fig(corpus['load_s'])}{sampled})"
    )
    console.print(f"  changes: {_fig(changes['documents_per_day'])} ({changes['source']}); {_fig(changes['refreshes_per_day'])} per day")
    if a.get("questions_per_day"):
        console.print(f"  questions: {_fig(a['questions_per_day'])}")
    rq = a.get("retrieval_quality")
    if rq:
        console.print(
            f"  retrieval quality: nDCG@10 {rq['ndcg_at_10']:.3f} on {rq['questions']} evaluation questions "
            f"({escape(rq['eval'])}; {rq['version']}, {escape(rq['retriever'])})"
        )
    console.print(f"  machine: {escape(a['machine'].get('label', ''))}; calibrated {a['calibration'].get('created')}" + (" (quick)" if a["calibration"].get("quick") else ""))
    console.print(f"  reference: {escape(_acc_text(acc))}")
    console.print()
    _lines_table("This manifest: " + a["combination"]["option"], a["combination"]["lines"], acc)
    totals = a["totals"]
    console.print(
        "  [bold]totals[/bold]: "
        + "; ".join(f"{phase}: {_fig(t['here'])} here, {_fig(t['accelerator'])} / {_fig(t['cost'])} on {acc['key'].upper()}" for phase, t in totals.items() if t["here"]["value"])
    )
    console.print()
    for method in a["methods"]:
        if method["lines"]:
            _lines_table(f"{method['title']}: {method['option']}" + (" (in the manifest)" if method["in_manifest"] else ""), method["lines"], acc)
            for note in method["notes"]:
                console.print(f"  [dim]{escape(note)}[/dim]")
    rec = a["recommendation"]
    console.print(f"\n[bold green]Recommended:[/bold green] [bold]{escape(rec['label'])}[/bold]")
    for r in rec["reasons"]:
        console.print(f"  [bold]{escape(r['topic'])}[/bold]: {escape(r['text'])}")
    if rec["differs_from_manifest"]:
        console.print("  [yellow]differs from the manifest:[/yellow] " + escape("; ".join(rec["differs_from_manifest"])))
    for note in a.get("notes", []):
        err_console.print(f"[yellow]note:[/yellow] {escape(note)}")
    if not brief:
        console.print("\n[bold]How each figure was derived[/bold]")
        seen = set()
        for group in [a["combination"]] + a["methods"]:
            for line in group["lines"]:
                if line["key"] in seen:
                    continue
                seen.add(line["key"])
                console.print(f"[bold]{escape(line['key'])}[/bold] — {escape(line['what'])}")
                console.print(f"  here = {escape(line['here']['explain'])}")
                for name, part in line["parts"].items():
                    console.print(f"    {escape(name)}: {escape(part['explain'])}")
                console.print(f"  FLOPs: {escape(line['flops']['explain'])}")
                console.print(f"  {acc['key'].upper()}: {escape(line['accelerator']['explain'])}; cost {escape(line['cost']['explain'])}")
                for name, fact in line["facts"].items():
                    console.print(f"    {escape(name)}: {escape(fact['explain'])}")
    console.print(f"[dim]advised in {a['took_s']:.1f} s[/dim]")


def _acc_text(acc: dict[str, Any]) -> str:
    return (f"{acc['name']}: {acc['peak_flops'] / 1e12:,.0f} TFLOP/s bf16 dense × {acc['mfu']:.0%} MFU, "
            f"{acc['memory_bandwidth'] / 1e12:.2f} TB/s, ${acc['price_per_hour']:.2f}/hour (assumptions; see --accelerator, --mfu, --price-per-hour)")


def _lines_table(title: str, lines: list[dict[str, Any]], acc: dict[str, Any]) -> None:
    table = Table(title=escape(title), title_justify="left", show_edge=False)
    for col in ("phase", "work", "FLOPs", "here", acc["key"].upper(), "cost"):
        table.add_column(col, overflow="fold", justify="left" if col in ("phase", "work") else "right")
    for line in lines:
        table.add_row(line["phase"], escape(line["what"]), _fig(line["flops"]), _fig(line["here"]), _fig(line["accelerator"]), _fig(line["cost"]))
    console.print(table)


# -------------------------------------------------------------------------
# eval compare
# -------------------------------------------------------------------------


@eval_app.command("compare")
@handle_errors
def eval_compare(
    manifest: Path = _MANIFEST,
    dataset: Path = typer.Option(..., "--dataset", "-d", help="Folder with corpus.jsonl, queries.jsonl, qrels.tsv and (optional) answers.jsonl.", show_default=False),
    report: Path | None = typer.Option(None, "--report", help="Also write a self-contained HTML report here (and keep a copy under the state dir's reports/).", dir_okay=False),
    as_json: bool = typer.Option(False, "--json", help="Print the comparison as JSON."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Answer only the first N questions (of the split)."),
    split: str = typer.Option("all", "--split", help="Questions: all, or the 'tune' / 'check' half (e.g. check, when an artifact was tuned on the tune half)."),
    retriever: list[str] = typer.Option([], "--retriever", "-r", help="Retrievers scored alone; repeatable (default: sparse, dense, hybrid)."),
    embedder: list[str] = typer.Option([], "--embedder", "-e", help="Tuned embedder model (artifact:NAME or folder) to score retrieval with, beside the base; repeatable. The manifest's own embedding model is added."),
    generator: list[str] = typer.Option([], "--generator", "-g", help="Generators to answer with; repeatable (default: the manifest's, plus extractive for span datasets)."),
    prompt: list[str] = typer.Option([], "--prompt", "-p", help="Retrieval prompt strategies; repeatable (default: the manifest's)."),
    artifact: list[str] = typer.Option([], "--artifact", "-a", help="Fine-tuned artifact to answer with (transformers generator); repeatable. The manifest's own fine-tuning artifacts are added when they exist."),
    no_plain: bool = typer.Option(False, "--no-plain", help="Leave out the configurations without retrieval (plain prompt)."),
    max_tokens: int | None = typer.Option(None, "--max-tokens", min=1, max=4096, help="Cap on generated tokens per answer (also used by the advisor's estimate)."),
    question_suffix: str | None = typer.Option(None, "--question-suffix", help="Text appended to every question (default: a yes/no/maybe instruction on label datasets)."),
    machine_price_per_hour: float = typer.Option(0.10, "--machine-price-per-hour", min=0, help="Price of this machine per hour, for measured cost (assumption)."),
    accelerator: str = typer.Option("h100", "--accelerator", help="Reference accelerator for the advisor's estimates: h100, h200, a100, l4."),
    unanswerable: int = typer.Option(8, "--unanswerable", min=0, max=27, help="Held-out off-domain questions (never used to calibrate) asked of each configuration with retrieval, to measure refusals (0: none)."),
) -> None:
    """Run a grid of configurations on a dataset and report them side by side.

    Configurations: generators (including fine-tuned artifacts) × prompt strategies ×
    with/without retrieval. Reported: retrieval metrics (nDCG@10, Recall@10, MRR@10),
    answer accuracy (yes/no/maybe) or token F1 where the dataset has answers, grounding,
    refusals (of the dataset's answerable questions, and of off-domain ones),
    contradicted sentences removed, latency and measured cost, each beside the advisor's
    estimate; and the majority-class baseline on label datasets.
    """
    from fourfold.advisor import accelerator as preset, load_calibration
    from fourfold.cli.progress import RichProgress
    from fourfold.evaluation.compare import CompareOptions, compare
    from fourfold.manifest import load_manifest
    from fourfold.plugins import get_host

    host = get_host()
    loaded = load_manifest(manifest_path(manifest), host)
    options = CompareOptions(
        retrievers=retriever or ["sparse", "dense", "hybrid"],
        embedders=embedder,
        generators=generator or None,
        prompts=prompt or None,
        artifacts=artifact,
        without_retrieval=not no_plain,
        split=split,
        limit=limit,
        max_tokens=max_tokens,
        question_suffix=question_suffix,
        machine_price_per_hour=machine_price_per_hour,
        accelerator=preset(accelerator),
        unanswerable=unanswerable,
    )
    calibration = load_calibration(host.settings)
    if calibration is None:
        err_console.print("[yellow]no calibration yet: the advisor's estimates are left out (run fourfold calibrate)[/yellow]")
    with RichProgress(transient=True) as progress:
        result = compare(loaded, dataset, options, host=host, progress=progress, log=None if as_json else _log, calibration=calibration)
    if report is not None:
        from fourfold.reports import render_comparison, save_report

        saved = save_report(render_comparison(result), result, report, kind="comparison", domain=loaded.domain, title=f"comparison on {result['dataset']}")
        if not as_json:
            err_console.print(f"[dim]report: {escape(str(report))} (copy: {escape(str(saved))})[/dim]")
    if as_json:
        _print_json(result)
        return
    _print_comparison(result)


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{v * 100:.1f}%"


def _print_comparison(c: dict[str, Any]) -> None:
    metric = c["answer_metric"]
    console.print(f"[bold]{escape(c['dataset'])}[/bold]: {c['questions']} questions ({c['split']}), manifest {escape(str(c['manifest']))}, {c['took_s']:.0f} s")
    if c["retrieval"]:
        table = Table(title="retrieval", title_justify="left", show_edge=False)
        for col in ("retriever", "embedder", "nDCG@10", "Recall@10", "MRR@10", "p50 ms"):
            table.add_column(col, justify="left" if col in ("retriever", "embedder") else "right")
        for r in c["retrieval"]:
            table.add_row(r["retriever"], escape(str(r.get("embedder") or "")), f"{r['metrics']['ndcg@10']:.4f}", f"{r['metrics']['recall@10']:.4f}", f"{r['metrics']['mrr@10']:.4f}", f"{r['latency_ms']['p50']:.1f}")
        console.print(table)
    dq = c.get("domain_retrieval")
    if dq:
        console.print(f"domain '{escape(c['domain'])}': nDCG@10 {dq['ndcg_at_10']:.3f} on its {dq['questions']} evaluation questions ({escape(dq['eval'])}, {dq['version']})")
    title = {"accuracy": "accuracy (yes/no/maybe)", "token_f1": "token F1"}.get(metric or "", "answers")
    table = Table(title=title, title_justify="left", show_edge=False)
    for col in ("configuration", metric or "metric", "grounded", "false refusals", "off-domain refused", "contradictions", "evidence", "p50 s", "s/question (est.)", "$/1,000 (est.)"):
        table.add_column(col, overflow="fold", justify="left" if col == "configuration" else "right")
    for b in c["baselines"]:
        table.add_row(escape(b["label"]), _pct(b["value"]), "-", "-", "-", "-", "-", "-", "-", "-")
    for cfg in c["configs"]:
        m, meas, est = cfg["metric"], cfg["measured"], cfg.get("estimate") or {}
        est_s = (est.get("seconds_per_question") or {}).get("text", "n/a")
        est_cost = (est.get("cost_per_1000_here") or {}).get("text", "n/a")
        value = _pct(m.get(metric)) if metric else "-"
        if metric == "accuracy" and m.get("unmapped"):
            value += f" ({m['unmapped']} unmapped)"
        ev = cfg.get("evidence_in_prompt")
        p50 = (cfg["latency_ms"]["p50"] or 0) / 1000
        trust = cfg.get("trust") or {}
        table.add_row(
            escape(cfg["label"]), value, _pct(cfg["grounding"]["score"]),
            _pct(trust["false_refusals"]) if trust.get("false_refusals") is not None else "-",
            _pct(trust["refused_unanswerable"]) if trust.get("refused_unanswerable") is not None else "-",
            str(trust.get("contradictions_removed", "-")),
            _pct(ev["recall"]) if ev else "-",
            f"{p50:.2f}", f"{meas['seconds_per_question'] or 0:.2f} ({est_s})", f"${meas['cost_per_1000'] or 0:.4f} ({est_cost})",
        )
    console.print(table)
    for note in c["notes"]:
        console.print(f"[dim]note: {escape(note)}[/dim]")
