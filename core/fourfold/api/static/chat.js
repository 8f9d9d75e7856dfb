// fourfold chat page: pick a domain, ask, watch the answer stream in, open citations.
// Tokens are kept in this browser's localStorage. One offered by a link (#token=…, a
// fragment, never sent to the server) is only added when the user says so: a link from
// someone else must not quietly add their token (and show their assistant as yours).
"use strict";

const $ = (id) => document.getElementById(id);
const STORE = "fourfold.tokens";
const state = { tokens: [], domains: {}, current: null, history: {}, statusTimer: null };

function loadTokens() {
  try { state.tokens = JSON.parse(localStorage.getItem(STORE) || "[]"); } catch { state.tokens = []; }
  const fragment = new URLSearchParams(location.hash.slice(1));
  const offered = (fragment.get("token") || "").split(",").filter((t) => t && !state.tokens.includes(t));
  if (fragment.has("token")) history.replaceState(null, "", location.pathname + location.search);
  if (offered.length) {
    $("token").value = offered.join(",");
    $("token-offer").hidden = false;
    $("token-panel").hidden = false;
  }
}

function saveTokens() { localStorage.setItem(STORE, JSON.stringify(state.tokens)); }

async function api(path, token, options = {}) {
  const headers = { Authorization: `Bearer ${token}`, ...(options.headers || {}) };
  if (options.body) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { ...options, headers });
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try { message = (await response.json()).error.message; } catch {}
    const error = new Error(message);
    error.status = response.status;
    throw error;
  }
  return response;
}

async function discoverDomains() {
  state.domains = {};
  const keep = [];
  for (const token of state.tokens) {
    try {
      const models = await (await api("/v1/models", token)).json();
      for (const m of models.data) state.domains[m.id] = { ...m, token };
      keep.push(token);
    } catch (e) {
      if (e.status !== 401) keep.push(token); // keep tokens that failed for other reasons
    }
  }
  state.tokens = keep;
  saveTokens();
  const select = $("domain");
  select.replaceChildren();
  const names = Object.keys(state.domains).sort();
  for (const name of names) {
    const option = document.createElement("option");
    option.value = name;
    option.textContent = `${state.domains[name].title} (${name})`;
    select.append(option);
  }
  $("token-panel").hidden = names.length > 0 && $("token-offer").hidden;
  if (!names.length) return;
  const wanted = new URLSearchParams(location.search).get("domain");
  select.value = names.includes(wanted) ? wanted : (names.includes(state.current) ? state.current : names[0]);
  selectDomain(select.value);
}

function when(iso) {
  if (!iso) return "";
  const t = typeof iso === "number" ? new Date(iso * 1000) : new Date(iso);
  return isNaN(t) ? String(iso) : t.toLocaleString();
}

async function showStatus() {
  const d = state.domains[state.current];
  if (!d) return;
  try {
    const s = await (await api(`/v1/domains/${encodeURIComponent(d.id)}/status`, d.token)).json();
    const idx = s.index;
    const parts = [];
    parts.push(idx.published ? `index ${idx.published} · ${idx.documents} documents · ${idx.chunks} chunks` : "no index published yet");
    const last = idx.last_refresh;
    if (last) parts.push(`last refresh ${when(last.time || last.finished || last.at || idx.created)}`);
    else if (idx.created) parts.push(`built ${when(idx.created)}`);
    if (s.task) parts.push(`refreshing: ${s.task.stage || "queued"} ${s.task.done ?? ""}${s.task.total ? "/" + s.task.total : ""}`);
    $("index-info").textContent = parts.join(" · ");
    $("index-info").dataset.version = idx.published || "";
  } catch (e) {
    $("index-info").textContent = `status unavailable: ${e.message}`;
  }
}

function selectDomain(name) {
  state.current = name;
  const d = state.domains[name];
  $("domain-description").textContent = d ? d.description || "" : "";
  $("conversation").replaceChildren();
  showStatus();
  clearInterval(state.statusTimer);
  state.statusTimer = setInterval(showStatus, 15000);
}

// Answer text with [n] turned into links to the citation list.
function renderAnswer(element, text, citations, turnId) {
  element.replaceChildren();
  const known = new Set((citations || []).map((c) => c.n));
  const parts = text.split(/(\[\d+(?:\s*,\s*\d+)*\])/g);
  for (const part of parts) {
    const m = part.match(/^\[(\d+(?:\s*,\s*\d+)*)\]$/);
    if (!m || !citations) { element.append(part); continue; }
    const numbers = m[1].split(",").map((x) => parseInt(x, 10));
    element.append("[");
    numbers.forEach((n, i) => {
      if (i) element.append(", ");
      if (known.has(n)) {
        const a = document.createElement("a");
        a.href = `#${turnId}-cite-${n}`;
        a.className = "cite";
        a.textContent = n;
        a.addEventListener("click", (ev) => {
          ev.preventDefault();
          const target = document.getElementById(`${turnId}-cite-${n}`);
          if (target) { target.querySelector("details").open = true; target.scrollIntoView({ block: "nearest" }); }
        });
        element.append(a);
      } else {
        element.append(String(n));
      }
    });
    element.append("]");
  }
}

function renderCitations(list, citations, turnId, sentences) {
  list.replaceChildren();
  // The passage spans that back the answer's sentences, per citation number.
  const spans = new Map();
  for (const s of sentences || []) {
    if (s.span && s.text && s.span.text) {
      const seen = spans.get(s.span.n) || [];
      if (!seen.includes(s.span.text)) seen.push(s.span.text);
      spans.set(s.span.n, seen);
    }
  }
  for (const c of citations) {
    const li = document.createElement("li");
    li.id = `${turnId}-cite-${c.n}`;
    li.value = c.n;
    li.className = "citation";
    const details = document.createElement("details");
    const summary = document.createElement("summary");
    // The heading path often repeats the title ("Guide > 3. Scope"): show it once.
    let heading = c.heading || "";
    if (c.title && heading.startsWith(c.title)) heading = heading.slice(c.title.length).replace(/^\s*[>›]\s*/, "");
    heading = heading.split(/\s+>\s+/).join(" › ");
    const where = [c.title || c.source, heading, c.page ? `page ${c.page}` : ""].filter(Boolean);
    summary.textContent = `[${c.n}] ${where.join(" › ")}`;
    const source = document.createElement("p");
    source.className = "source muted small";
    source.textContent = c.source;
    // A record's own link (loader metadata "url"); only web links, never script URLs.
    if (c.url && /^https?:\/\//i.test(c.url)) {
      const link = document.createElement("a");
      link.href = c.url;
      link.textContent = c.url;
      link.rel = "noopener noreferrer";
      link.target = "_blank";
      link.className = "citation-url";
      source.append(" · ", link);
    }
    details.append(summary, source);
    for (const text of spans.get(c.n) || []) {
      const support = document.createElement("blockquote");
      support.className = "support";
      const mark = document.createElement("mark");
      mark.textContent = text;
      support.append(mark);
      details.append(support);
    }
    const snippet = document.createElement("blockquote");
    snippet.className = "snippet";
    snippet.textContent = c.snippet;
    details.append(snippet);
    li.append(details);
    list.append(li);
  }
}

// What the checks did, in words a reader understands.
function trustNotes(data) {
  const notes = [];
  const count = (prefix) => (data.flags || []).filter((f) => f.startsWith(prefix)).reduce((n, f) => n + (parseInt(f.split(":")[1], 10) || 1), 0);
  const contradicted = count("contradiction-removed");
  const unsupported = count("unsupported-removed");
  if (contradicted) notes.push(`${contradicted} statement${contradicted > 1 ? "s" : ""} contradicted by the documents ${contradicted > 1 ? "were" : "was"} replaced by the documents' own words.`);
  if (unsupported) notes.push(`${unsupported} statement${unsupported > 1 ? "s" : ""} the documents do not support ${unsupported > 1 ? "were" : "was"} removed.`);
  if ((data.flags || []).includes("extracted")) notes.push("Quoted from the documents: the generated answer said nothing they support.");
  if ((data.flags || []).some((f) => f.startsWith("redacted-instructions") || f === "injection-suppressed")) notes.push("Instruction-like text in the documents was ignored.");
  return notes;
}

function renderRelated(list, related, turnId) {
  list.replaceChildren();
  if (!related || !related.length) return;
  const title = document.createElement("li");
  title.className = "related-title muted small";
  title.textContent = "Closest passages (related reading, not an answer):";
  list.append(title);
  renderCitations(list, related, `${turnId}-related`, []);
  list.prepend(title);
}

async function* sseEvents(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) yield { event, data: JSON.parse(data.join("\n")) };
    }
  }
}

let turns = 0;

async function ask(question) {
  const d = state.domains[state.current];
  if (!d) return;
  const turnId = `turn-${++turns}`;
  const node = $("turn-template").content.firstElementChild.cloneNode(true);
  node.id = turnId;
  node.querySelector(".question").textContent = question;
  const answerEl = node.querySelector(".answer");
  $("conversation").append(node);
  node.scrollIntoView({ block: "end" });
  $("ask").disabled = true;
  const history = state.history[d.id] || [];
  let text = "";
  try {
    const response = await api(`/v1/domains/${encodeURIComponent(d.id)}/ask`, d.token, {
      method: "POST",
      body: JSON.stringify({ question, history: history.slice(-4), stream: true }),
    });
    for await (const { event, data } of sseEvents(response)) {
      if (event === "delta") {
        text += data.text;
        answerEl.textContent = text;
      } else if (event === "answer") {
        const refused = (data.flags || []).includes("not-in-documents");
        renderAnswer(answerEl, data.text, data.citations, turnId);
        answerEl.classList.toggle("refusal", refused);
        if (refused) {
          const badge = document.createElement("strong");
          badge.className = "badge";
          badge.textContent = "Not in the documents";
          answerEl.prepend(badge, " ");
          renderRelated(node.querySelector(".citations"), data.related, turnId);
        } else {
          renderCitations(node.querySelector(".citations"), data.citations, turnId, data.sentences);
        }
        const notes = node.querySelector(".trust");
        notes.replaceChildren(...trustNotes(data).map((t) => { const li = document.createElement("li"); li.textContent = t; return li; }));
        answerEl.dataset.state = "done";
        const took = data.timings && data.timings.total_ms ? ` · ${Math.round(data.timings.total_ms)} ms` : "";
        node.querySelector(".meta").textContent = `${data.domain} · index ${data.index_version || "—"}${took}`;
        state.history[d.id] = [...history, { role: "user", content: question }, { role: "assistant", content: data.text }];
      } else if (event === "error") {
        throw new Error(data.error.message);
      }
    }
  } catch (e) {
    answerEl.dataset.state = "error";
    answerEl.classList.add("error");
    answerEl.textContent = `Error: ${e.message}`;
  } finally {
    $("ask").disabled = false;
  }
}

$("ask-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const q = $("question").value.trim();
  if (!q) return;
  $("question").value = "";
  ask(q);
});
$("question").addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); $("ask-form").requestSubmit(); }
});
$("domain").addEventListener("change", (ev) => selectDomain(ev.target.value));
$("token-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  for (const t of $("token").value.split(",").map((x) => x.trim())) {
    if (t && !state.tokens.includes(t)) state.tokens.push(t);
  }
  $("token").value = "";
  $("token-offer").hidden = true;
  saveTokens();
  await discoverDomains();
  $("token-error").textContent = Object.keys(state.domains).length ? "" : "That token opens no assistant here.";
});
$("add-token").addEventListener("click", (ev) => { ev.preventDefault(); $("token-panel").hidden = false; $("token").focus(); });

$("token-dismiss").addEventListener("click", () => {
  $("token").value = "";
  $("token-offer").hidden = true;
  $("token-panel").hidden = Object.keys(state.domains).length > 0;
});

loadTokens();
// A question in the link (?q=…) is put in the box, not asked: a link must not send a
// question with this browser's tokens before the user has read it.
const linked = new URLSearchParams(location.search).get("q");
if (linked) $("question").value = linked;
discoverDomains();
