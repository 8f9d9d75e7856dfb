"""Reports as one self-contained HTML file: inline style, inline SVG plots, the data as
embedded JSON; nothing is fetched, so the file opens from disk in any browser.

- :func:`render_advice` — ``fourfold advise --report``;
- :func:`render_comparison` — ``fourfold eval compare --report``.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any, Iterable, Sequence

from fourfold.reports.svg import bar_chart, box_plot, scatter_plot

__all__ = ["render_advice", "render_comparison", "page"]

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:1100px;padding:0 1rem;color:#222;line-height:1.45}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
h3{font-size:1rem;margin:1.2rem 0 .4rem}
table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:.9rem;width:100%}
th,td{border-bottom:1px solid #e4e4e4;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f6f6}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.muted{color:#666;font-size:.85rem}.rec{background:#eef7ee;border:1px solid #b7dcb7;padding:.8rem 1rem;border-radius:6px}
.rec li{margin:.3rem 0}details{margin:.2rem 0}summary{cursor:pointer;color:#225}
code,.derivation{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.8rem}
.derivation{white-space:pre-wrap;color:#333;background:#fafafa;padding:.4rem;border-left:3px solid #ccd}
figure{margin:1rem 0}figcaption{font-size:.85rem;color:#555}svg.plot{max-width:100%;height:auto}
.est{color:#555}.warn{color:#a60}
"""


def page(title: str, body: Iterable[str], data: dict[str, Any]) -> str:
    """The HTML document: title, style, body sections and the data for scripts."""
    payload = json.dumps(data, ensure_ascii=False, default=str).replace("</", "<\\/")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body>\n"
        + "\n".join(body)
        + f"\n<script type=\"application/json\" id=\"report-data\">{payload}</script>\n</body></html>\n"
    )


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, numeric: Sequence[int] = (), cls: str = "") -> str:
    head = "".join(f'<th class="num">{escape(h)}</th>' if i in numeric else f"<th>{escape(h)}</th>" for i, h in enumerate(headers))
    body = []
    for row in rows:
        cells = "".join(f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>" for i, c in enumerate(row))
        body.append(f"<tr>{cells}</tr>")
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _fig(f: dict[str, Any] | None) -> str:
    if not f:
        return "n/a"
    text = escape(str(f.get("text", "n/a")))
    explain = f.get("explain")
    return f'<span title="{escape(explain)}">{text}</span>' if explain else text


def _derivation(line: dict[str, Any], acc_key: str) -> str:
    rows = [f"here = {line['here']['explain']}"]
    rows += [f"  {name}: {part['explain']}" for name, part in line["parts"].items()]
    rows.append(f"FLOPs: {line['flops']['explain']}")
    rows.append(f"{acc_key}: {line['accelerator']['explain']}")
    rows.append(f"cost: {line['cost']['explain']}")
    rows += [f"  {name}: {fact['explain']}" for name, fact in line.get("facts", {}).items()]
    return f'<details><summary>how {escape(line["key"])} was derived</summary><div class="derivation">{escape(chr(10).join(rows))}</div></details>'


def _lines_table(lines: list[dict[str, Any]], acc_key: str) -> str:
    rows = [
        (escape(line["phase"]), escape(line["what"]) + _derivation(line, acc_key), _fig(line["flops"]), _fig(line["here"]), _fig(line["accelerator"]), _fig(line["cost"]))
        for line in lines
    ]
    return _table(("phase", "work", "FLOPs", "here", acc_key, "cost"), rows, numeric=(2, 3, 4, 5), cls="costs")


# -------------------------------------------------------------------------
# advice
# -------------------------------------------------------------------------


def render_advice(a: dict[str, Any]) -> str:
    acc = a["accelerator"]
    acc_key = acc["key"].upper()
    corpus, changes = a["corpus"], a["changes"]
    body = [
        f"<h1>Which method for <code>{escape(a['domain'])}</code>?</h1>",
        f'<p class="muted">{escape(a["manifest"])} · advised {escape(a["created"])} in {a["took_s"]:.1f} s · '
        f'machine: {escape(a["machine"].get("label", ""))}, calibrated {escape(str(a["calibration"].get("created")))}</p>',
    ]
    rec = a["recommendation"]
    items = "".join(f"<li><b>{escape(r['topic'])}</b>: {escape(r['text'])}</li>" for r in rec["reasons"])
    differs = "".join(f"<li>{escape(d)}</li>" for d in rec.get("differs_from_manifest", []))
    body.append(f'<div class="rec" id="recommendation"><h2 style="margin-top:0;border:0">Recommended: {escape(rec["label"])}</h2><ul>{items}</ul>'
                + (f'<p class="warn">Differs from the manifest:</p><ul>{differs}</ul>' if differs else "") + "</div>")
    body.append("<h2>The domain</h2>")
    facts = [
        ("documents", _fig(corpus["documents"])), ("tokens (embedder tokenizer)", _fig(corpus["tokens"])),
        ("chunks", _fig(corpus["chunks"])), ("tokens embedded in a full build", _fig(corpus["embedded_tokens"])),
        ("read and chunked in (measured)", _fig(corpus["load_s"])), ("listed and hashed in (measured)", _fig(corpus["scan_s"])),
        ("documents changed per day", _fig(changes["documents_per_day"]) + f' <span class="muted">({escape(changes["source"])})</span>'),
        ("refreshes per day", _fig(changes["refreshes_per_day"])),
    ]
    if a.get("questions_per_day"):
        facts.append(("questions per day", _fig(a["questions_per_day"])))
    body.append(_table(("", "value"), [(escape(k), v) for k, v in facts], cls="facts"))
    body.append(f'<p class="muted">Reference accelerator: {escape(acc["name"])}, {acc["peak_flops"] / 1e12:,.0f} TFLOP/s bf16 dense peak × '
                f'{acc["mfu"]:.0%} MFU, {acc["memory_bandwidth"] / 1e12:.2f} TB/s, ${acc["price_per_hour"]:.2f} per hour — stated assumptions '
                f'(<code>--accelerator</code>, <code>--mfu</code>, <code>--price-per-hour</code>, <code>--tflops</code>).</p>')
    body.append(f"<h2>This manifest: {escape(a['combination']['option'])}</h2>")
    body.append(_lines_table(a["combination"]["lines"], acc_key))
    totals = a["totals"]
    body.append(_table(("phase", "here", acc_key, "cost"), [(escape(p), _fig(t["here"]), _fig(t["accelerator"]), _fig(t["cost"])) for p, t in totals.items()], numeric=(1, 2, 3), cls="totals"))

    one_time, serving, labels_1, labels_2, groups_1 = [], [], [], [], []
    for method in a["methods"]:
        for line in method["lines"]:
            if line["phase"] == "one-time" and line["here"]["value"]:
                one_time.append((f"{method['title']}: {line['key']}", line["here"]["value"]))
                groups_1.append(method["title"])
            if line["phase"] == "per 1,000 questions" and line["here"]["value"]:
                serving.append((line["what"].replace("answer 1,000 questions: ", ""), line["here"]["value"]))
    body.append("<h2>Plots</h2>")
    body.append("<figure>" + bar_chart(one_time, title="One-time work on this machine", unit="seconds", log=True, groups=groups_1)
                + "<figcaption>Wall time of each one-time step here (log scale): indexing against fine-tuning against training from scratch.</figcaption></figure>")
    acc_one = [(f"{m['title']}: {line['key']}", line["cost"]["value"]) for m in a["methods"] for line in m["lines"] if line["phase"] == "one-time" and line["cost"]["value"]]
    body.append("<figure>" + bar_chart(acc_one, title=f"One-time cost on the reference accelerator ({acc_key})", unit="dollars", log=True)
                + "<figcaption>Dollars at the stated price and utilisation.</figcaption></figure>")
    body.append("<figure>" + bar_chart(list(dict(serving).items()), title="Answering 1,000 questions on this machine", unit="seconds", log=True)
                + "<figcaption>Per 1,000 questions, one at a time: prompt strategy + retriever + generator.</figcaption></figure>")
    body.append("<h2>Each method</h2>")
    for method in a["methods"]:
        if not method["lines"]:
            continue
        tag = " (in the manifest)" if method["in_manifest"] else ""
        body.append(f"<h3>{escape(method['title'])}: {escape(method['option'])}{escape(tag)}</h3>")
        body.append(_lines_table(method["lines"], acc_key))
        body += [f'<p class="muted">{escape(n)}</p>' for n in method["notes"]]
    if a.get("notes"):
        body.append("<h2>Notes</h2><ul>" + "".join(f"<li>{escape(n)}</li>" for n in a["notes"]) + "</ul>")
    body.append('<p class="muted">Every figure shows its derivation on hover; the "how … was derived" lines list formulas and inputs. '
                "See docs/choosing-a-method.md for the cost model and its limits.</p>")
    return page(f"fourfold advise: {a['domain']}", body, a)


# -------------------------------------------------------------------------
# comparison
# -------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def _num(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}g}"


def render_comparison(c: dict[str, Any]) -> str:
    metric = c.get("answer_metric")
    metric_label = {"accuracy": "yes/no/maybe accuracy", "token_f1": "token F1"}.get(metric or "", "answer metric")
    body = [
        f"<h1>Side by side: <code>{escape(c['dataset'])}</code></h1>",
        f'<p class="muted">manifest {escape(str(c.get("manifest")))} · {c["questions"]} questions ({escape(c["split"])} split'
        + (f", first {c['limit']}" if c.get("limit") else "") + f") · {escape(c['created'])} · {c['took_s']:.0f} s · "
        f'machine: {escape(c["machine"].get("label", ""))} at ${c["prices"]["machine_per_hour"]:.2f}/hour (assumed)</p>',
    ]
    rows = []
    for b in c.get("baselines", []):
        rows.append((escape(b["label"]), "—", "—", "—", _pct(b.get("value")), "—", "—", "—", "—", "—", "—", "—", "—", "—"))
    for cfg in c["configs"]:
        m = cfg.get("metric") or {}
        value = m.get(metric) if metric else None
        g = cfg.get("grounding") or {}
        lat = cfg.get("latency_ms") or {}
        meas = cfg.get("measured") or {}
        est = cfg.get("estimate") or {}
        est_s = (est.get("seconds_per_question") or {}).get("value")
        trust = cfg.get("trust") or {}
        rows.append((
            escape(cfg["label"]), escape(cfg.get("retriever") or "none"), escape(cfg["prompt"]), escape(cfg["generator_label"]),
            _pct(value) + (f' <span class="muted">({m.get("unmapped", 0)} unmapped)</span>' if metric == "accuracy" and m.get("unmapped") else ""),
            _pct(g.get("score")) if g.get("claims") else "n/a",
            _pct(trust.get("false_refusals")) if trust.get("false_refusals") is not None else "n/a",
            _pct(trust.get("refused_unanswerable")) if trust.get("refused_unanswerable") is not None else "n/a",
            str(trust.get("contradictions_removed", "n/a")),
            _num(lat.get("p50"), 4), _num(lat.get("p95"), 4),
            f'{_num(meas.get("seconds_per_question"))} <span class="est">(est. {_num(est_s)})</span>'
            + (f'<br><span class="muted">answers ≈ {_num(meas.get("answer_tokens_mean"))} tokens</span>' if meas.get("answer_tokens_mean") is not None else ""),
            f'{_num(meas.get("cpu_seconds_per_question"))}',
            f'${_num(meas.get("cost_per_1000"))} <span class="est">(est. {_fig(est.get("cost_per_1000_here"))}; {escape(c["prices"]["accelerator"])} {_fig(est.get("cost_per_1000_accelerator"))})</span>',
        ))
    body.append("<h2>Answers</h2>")
    body.append(_table(("configuration", "retriever", "prompt", "generator", metric_label, "grounded", "refused (answerable)", "refused (off-domain)",
                        "contradictions removed", "p50 ms", "p95 ms", "s/question (advisor)", "CPU s/question", "$ per 1,000 (advisor)"),
                       rows, numeric=(4, 5, 6, 7, 8, 9, 10, 11, 12, 13), cls="answers"))
    body.append('<p class="muted">Measured figures first; the advisor\'s estimate for the same configuration in parentheses. '
                "Grounded: share of answer sentences (3+ content words) that cite a retrieved passage holding at least "
                f"{c['grounding_rule']['min_overlap']:.0%} of their content words, or whose embedder cosine to the cited passage's closest sentence is at least "
                f"{c['grounding_rule']['min_cosine']}. Refused (answerable): the dataset's questions answered with a refusal (false refusals); "
                "refused (off-domain): questions from other fields and languages that were refused; contradictions removed: answer sentences "
                "a passage contradicted, replaced or removed before anyone saw them. Cost: wall seconds × the machine's assumed price.</p>")
    if c.get("retrieval"):
        body.append("<h2>Retrieval</h2>")
        body.append(_table(("retriever", "embedder", "nDCG@10", "Recall@10", "MRR@10", "p50 ms", "p95 ms", "questions"),
                           [(escape(r["retriever"]), escape(str(r.get("embedder") or "")), _num(r["metrics"].get("ndcg@10"), 4), _num(r["metrics"].get("recall@10"), 4), _num(r["metrics"].get("mrr@10"), 4),
                             _num(r["latency_ms"].get("p50"), 4), _num(r["latency_ms"].get("p95"), 4), str(r["queries"])) for r in c["retrieval"]],
                           numeric=(2, 3, 4, 5, 6, 7), cls="retrieval"))
    dq = c.get("domain_retrieval")
    if dq:
        body.append(f'<p>The domain\'s own documents: nDCG@10 {_num(dq["ndcg_at_10"], 4)} on its {dq["questions"]} evaluation questions '
                    f'({escape(dq["eval"])}; index version {escape(dq["version"])}, {escape(dq["retriever"])}, embedder {escape(dq["embedder"])}).</p>')
    body.append("<h2>Plots</h2>")
    points = [(cfg["label"], (cfg.get("measured") or {}).get("seconds_per_question"), (cfg.get("metric") or {}).get(metric) if metric else (cfg.get("grounding") or {}).get("score"))
              for cfg in c["configs"]]
    baselines = [(b["label"], b["value"]) for b in c.get("baselines", []) if b.get("value") is not None]
    body.append("<figure>" + scatter_plot(points, title=f"Quality against cost: {metric_label if metric else 'grounding'} vs seconds per question",
                                          x_label="seconds per question on this machine", y_label=metric_label if metric else "grounded share", baselines=baselines)
                + "<figcaption>Up and to the left is better. Dashed: baselines that need no model.</figcaption></figure>")
    body.append("<figure>" + box_plot([(cfg["label"], (cfg.get("latency_ms") or {}).get("values") or []) for cfg in c["configs"]],
                                      title="Latency per answer", unit="ms")
                + "<figcaption>Boxes: quartiles; bold line: median; whiskers: 5th–95th percentile; ticks: the rest.</figcaption></figure>")
    est_bars, est_groups = [], []
    for cfg in c["configs"]:
        meas = (cfg.get("measured") or {}).get("seconds_per_question")
        est = ((cfg.get("estimate") or {}).get("seconds_per_question") or {}).get("value")
        if meas:
            est_bars.append((f"{cfg['label']} (measured)", meas))
            est_groups.append("measured")
        if est:
            est_bars.append((f"{cfg['label']} (advisor)", est))
            est_groups.append("advisor")
    body.append("<figure>" + bar_chart(est_bars, title="Seconds per question: measured and the advisor's estimate", unit="seconds", log=True, groups=est_groups)
                + "</figure>")
    body.append("<h2>Sample answers</h2>")
    for cfg in c["configs"]:
        ex = cfg.get("examples") or []
        if not ex:
            continue
        body.append(f"<details><summary>{escape(cfg['label'])}</summary>")
        body.append(_table(("question", "gold", "answer", "scored"),
                           [(escape(e["question"]), escape(str(e.get("gold", ""))), escape(e["answer"][:600]), escape(str(e.get("scored", "")))) for e in ex], cls="examples"))
        body.append("</details>")
    if c.get("notes"):
        body.append("<h2>Notes</h2><ul>" + "".join(f"<li>{escape(n)}</li>" for n in c["notes"]) + "</ul>")
    return page(f"fourfold eval compare: {c['dataset']}", body, c)
