// fourfold chat page: pick a domain, ask, watch the answer stream in, open citations.
// Tokens come from the URL fragment (#token=…, never sent to the server in the URL)
// or the token form, and are kept in this browser's localStorage.
"use strict";

const $ = (id) => document.getElementById(id);
const STORE = "fourfold.tokens";
const state = { tokens: [], domains: {}, current: null, history: {}, statusTimer: null };

function loadTokens() {
  try { state.tokens = JSON.parse(localStorage.getItem(STORE) || "[]"); } catch { state.tokens = []; }
  const fragment = new URLSearchParams(location.hash.slice(1));
  for (const t of (fragment.get("token") || "").split(",")) {
    if (t && !state.tokens.includes(t)) state.tokens.push(t);
  }
  if (fragment.has("token")) history.replaceState(null, "", location.pathname + location.search);
  saveTokens();
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
  $("token-panel").hidden = names.length > 0;
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

function renderCitations(list, citations, turnId) {
  list.replaceChildren();
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
    const snippet = document.createElement("blockquote");
    snippet.className = "snippet";
    snippet.textContent = c.snippet;
    details.append(summary, source, snippet);
    li.append(details);
    list.append(li);
  }
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
        renderAnswer(answerEl, data.text, data.citations, turnId);
        renderCitations(node.querySelector(".citations"), data.citations, turnId);
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
  const t = $("token").value.trim();
  $("token").value = "";
  if (t && !state.tokens.includes(t)) state.tokens.push(t);
  await discoverDomains();
  $("token-error").textContent = Object.keys(state.domains).length ? "" : "That token opens no assistant here.";
});
$("add-token").addEventListener("click", (ev) => { ev.preventDefault(); $("token-panel").hidden = false; $("token").focus(); });

loadTokens();
discoverDomains().then(() => {
  const q = new URLSearchParams(location.search).get("q");
  if (q && state.current) ask(q);
});
