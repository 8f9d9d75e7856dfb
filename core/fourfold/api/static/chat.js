// fourfold chat page: pick a domain, ask, watch the answer stream in, open citations.
// Tokens are kept in this browser's localStorage. One offered by a link (#token=…, a
// fragment, never sent to the server) is only added when the user says so: a link from
// someone else must not quietly add their token (and show their assistant as yours).
// A write token (the documents view) is kept in this page's memory only, never stored:
// it changes what every reader of the assistant is answered from.
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
  if (typeof options.body === "string") headers["Content-Type"] = "application/json"; // a File keeps its own type
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
  $("documents-domains").replaceChildren(...Object.keys(state.domains).sort().map((name) => new Option(state.domains[name].title, name)));
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

// -- documents view: a write token lists, uploads and deletes the uploads of a domain --

const docs = { domain: null, token: null, writable: false, following: 0 };
const REASONS = {
  400: "Refused", 401: "Unknown token", 403: "Not allowed", 404: "Not found", 409: "Not possible",
  413: "Too large", 415: "Not a file type this assistant reads", 503: "Unavailable",
};

function inWords(e) {
  return e.status && REASONS[e.status] ? `${REASONS[e.status]}: ${e.message}` : e.message;
}

function documentsUrl(domain, path) {
  const base = `/v1/domains/${encodeURIComponent(domain)}/documents`;
  return path === undefined ? base : `${base}/${path.split("/").map(encodeURIComponent).join("/")}`;
}

function bytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1048576) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1048576).toFixed(1)} MB`;
}

async function domainStatus() {
  return (await api(`/v1/domains/${encodeURIComponent(docs.domain)}/status`, docs.token)).json();
}

function say(text, isError = false) {
  $("refresh-progress").textContent = text;
  $("refresh-progress").classList.toggle("error", isError);
}

async function listDocuments() {
  const listed = await (await api(documentsUrl(docs.domain), docs.token)).json();
  const rows = listed.documents.map((d) => {
    const row = document.createElement("tr");
    row.dataset.path = d.path;
    const cells = [d.path, bytes(d.size), when(d.uploaded)].map((text, i) => {
      const td = document.createElement("td");
      td.className = ["path", "size", "uploaded"][i];
      td.textContent = text;
      return td;
    });
    const action = document.createElement("td");
    if (docs.writable) {
      const remove = document.createElement("button");
      remove.type = "button";
      remove.textContent = "Delete";
      remove.setAttribute("aria-label", `Delete ${d.path}`);
      remove.addEventListener("click", () => deleteDocument(d.path));
      action.append(remove);
    }
    row.append(...cells, action);
    return row;
  });
  $("documents-list").replaceChildren(...rows);
  $("documents-empty").hidden = rows.length > 0;
  $("documents-where").textContent = `${listed.documents.length} uploaded to ${listed.domain}, kept in ${listed.store}`;
}

// A read token also lists the documents; the page says so instead of offering changes
// the API would refuse (403).
async function isReadToken(token) {
  if (state.tokens.includes(token)) return true;
  try { await api("/v1/models", token); return true; } catch { return false; }
}

async function openDocuments(domain, token) {
  $("documents-error").textContent = "";
  $("documents-view").hidden = true;
  say("");
  docs.following++;
  Object.assign(docs, { domain, token, writable: false });
  try {
    docs.writable = !(await isReadToken(token));
    await listDocuments();
  } catch (e) {
    Object.assign(docs, { domain: null, token: null });
    $("documents-error").textContent = inWords(e);
    return;
  }
  $("upload-form").hidden = !docs.writable;
  if (!docs.writable) {
    $("documents-error").textContent = "That is a read token: it lists the documents but cannot change them. " +
      "Uploading and deleting need the domain's write token (fourfold up prints it as \"write token:\").";
  }
  $("documents-view").hidden = false;
}

// What identifies the last finished refresh: a new one means the queued refresh ran.
async function lastRefresh() {
  try { return JSON.stringify((await domainStatus()).index.last_refresh || null); } catch { return undefined; }
}

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Follow the refresh a change queued until a new refresh is recorded in the status.
async function followRefresh(change, before) {
  const ticket = ++docs.following;
  const refresh = change.refresh;
  if (change.action === "unchanged") { say(`${change.path} is unchanged (the same bytes were there already): nothing to index.`); return; }
  if (!refresh || !refresh.queued) {
    say(`The change is kept, but the refresh could not be queued: ${refresh ? refresh.reason : "no reason given"}`, true);
    return;
  }
  const started = Date.now();
  // A change made while a refresh runs is indexed by the follow-up run after it: the
  // running one's record is not yet the change indexed.
  let runsToWait = refresh.task && refresh.task.follows ? 2 : 1;
  while (ticket === docs.following) {
    let s;
    try { s = await domainStatus(); } catch (e) {
      say(`Refresh queued (task ${refresh.task.id}); its progress cannot be read: ${inWords(e)}`, true);
      return;
    }
    const last = s.index.last_refresh;
    if (ticket !== docs.following) return;
    if (s.task) {
      say(`Refreshing: ${s.task.stage || "starting"} ${s.task.done ?? ""}${s.task.total ? "/" + s.task.total : ""}`);
    } else if (last && before !== undefined && JSON.stringify(last) !== before && --runsToWait > 0) {
      before = JSON.stringify(last);
      say(`${change.path} ${change.action}; the refresh that was running finished, the one that indexes the change is queued…`);
    } else if (last && before !== undefined && JSON.stringify(last) !== before) {
      if (last.event === "publish") say(`${change.path} ${change.action}; indexed: index ${last.version} is published.`);
      else if (last.event === "unchanged") say(`${change.path} ${change.action}; indexed: the index did not need to change.`);
      else if (last.event === "refused") say(`The refresh was held back by the quality gate: ${last.summary || (last.reasons || []).join("; ")}`, true);
      else say(`The refresh failed: ${last.error || "no reason recorded"}`, true);
      if (docs.domain === state.current) showStatus();
      return;
    } else {
      say(`${change.path} ${change.action}; refresh queued (task ${refresh.task.id}), waiting for a worker to run it…`);
    }
    await pause(Date.now() - started < 60000 ? 1000 : 5000);
  }
}

async function changeDocuments(path, request) {
  const buttons = $("documents-panel").querySelectorAll("button");
  buttons.forEach((b) => { b.disabled = true; });
  $("documents-error").textContent = "";
  try {
    const before = await lastRefresh();
    const change = await (await request()).json();
    await listDocuments();
    followRefresh(change, before);
    return true;
  } catch (e) {
    $("documents-error").textContent = `${path}: ${inWords(e)}`;
    return false;
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
  }
}

async function deleteDocument(path) {
  if (!confirm(`Delete ${path} from the documents of ${docs.domain}? Answers stop citing it after the next refresh.`)) return;
  await changeDocuments(path, () => api(documentsUrl(docs.domain, path), docs.token, { method: "DELETE" }));
}

$("manage-documents").addEventListener("click", (ev) => {
  ev.preventDefault();
  $("documents-panel").hidden = false;
  if (!$("documents-domain").value && state.current) $("documents-domain").value = state.current;
  $("write-token").focus();
});
$("write-token-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const token = $("write-token").value.trim();
  $("write-token").value = "";
  await openDocuments($("documents-domain").value.trim(), token);
});
$("documents-close").addEventListener("click", () => {
  docs.following++;
  Object.assign(docs, { domain: null, token: null, writable: false });
  $("documents-list").replaceChildren();
  $("documents-view").hidden = true;
  $("documents-error").textContent = "";
  $("documents-panel").hidden = true;
});
$("upload-file").addEventListener("change", () => {
  const file = $("upload-file").files[0];
  if (file) $("upload-path").value = file.name; // the file's name, editable (e.g. guides/cats.md)
});
$("upload-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const file = $("upload-file").files[0];
  const path = $("upload-path").value.trim();
  if (!file || !path) return;
  if (path.split("/").some((part) => part === "." || part === "..")) {
    // a browser resolves "." and ".." in a URL before sending it, so the API would never see them
    $("documents-error").textContent = `${path}: Refused: a path with a "." or ".." part could leave the uploads`;
    return;
  }
  const done = await changeDocuments(path, () => api(documentsUrl(docs.domain, path), docs.token, { method: "PUT", body: file }));
  if (done) { $("upload-form").reset(); }
});

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
  await discoverDomains(); // stores only the tokens that open an assistant (a write token opens none)
  $("token-error").textContent = Object.keys(state.domains).length ? "" : "That token opens no assistant here (a write token goes under Documents).";
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
