// The policy playground. Every decision shown here is the server's: the
// page sends the policy and its input to the instance's dry run
// (POST {instance}/attestd/policies/{type}:explain) and reads the policy in
// force (GET {instance}/policies/{type}); it calls no other route, never
// writes, and sends the bearer token typed into it only to its own origin
// (the Content-Security-Policy also allows no other). Results are written
// with textContent only: a claim value or policy text is never HTML.
import { render, parseErrorPosition, lineColOf, offsetOf } from "./highlight.js";

const $ = (id) => document.getElementById(id);
const el = (tag, props = {}, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") e.className = v;
    else if (k === "dataset") Object.assign(e.dataset, v);
    else if (k.startsWith("aria-") || k === "role") e.setAttribute(k, v);
    else e[k] = v;
  }
  e.append(...children.filter((c) => c !== null && c !== undefined));
  return e;
};

// The instance's prefix: the page lives at {prefix}/attestd/playground.
const base = location.pathname.replace(/\/attestd\/playground\/?$/, "");
const CASE_FORMAT = "attestd-playground-case/1";
// The evidence member of an attest request body per type (maa-api.md §1.1).
const EVIDENCE_FIELD = { SgxEnclave: "quote", TdxVm: "quote", OpenEnclave: "report", SevSnpVm: "report", Tpm: "data", AzureGuest: "AttestationInfo" };

const state = {
  token: "", // memory only
  error: null, // {line, column} of the parse error shown
  lines: new Map(), // line number -> class, from the last trace
  evidence: null, // the attest request body built from the uploads
  evidenceName: "",
  checkSeq: 0,
  samples: null,
};

const policyBox = $("policy");
const pre = $("highlight");

function typ() {
  return $("type").value;
}

function mode() {
  return document.querySelector('input[name="mode"]:checked').value;
}

// ---- HTTP -------------------------------------------------------------

async function call(method, path, body) {
  const headers = { Accept: "application/json" };
  if (state.token) headers.Authorization = "Bearer " + state.token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(base + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
      redirect: "error",
      referrerPolicy: "no-referrer",
    });
  } catch (e) {
    return { status: 0, error: { code: "NetworkError", message: String(e) } };
  }
  let json = null;
  try {
    json = await res.json();
  } catch {
    // not JSON: reported below
  }
  if (!res.ok) {
    const err = json && json.error ? json.error : { code: "HTTP " + res.status, message: "the server's answer is not an MAA error" };
    return { status: res.status, error: err };
  }
  return { status: res.status, json };
}

const explainPath = () => "/attestd/policies/" + encodeURIComponent(typ()) + ":explain";

// ---- editor -----------------------------------------------------------

function paint() {
  render(document, pre, policyBox.value, { error: state.error, lines: state.lines });
  syncScroll();
}

function syncScroll() {
  pre.scrollTop = policyBox.scrollTop;
  pre.scrollLeft = policyBox.scrollLeft;
}

function showCursor() {
  const { line, column } = lineColOf(policyBox.value, policyBox.selectionStart);
  $("cursor").textContent = "line " + line + ", column " + column;
}

function setStatus(id, text, kind) {
  const s = $(id);
  s.textContent = text;
  s.dataset.kind = kind || "";
}

// markParseError shows the server's PolicyParsingError at its position.
function markParseError(err) {
  const pos = parseErrorPosition(err.message);
  state.error = pos;
  state.lines = new Map();
  if (pos) state.lines.set(pos.line, "hl-error");
  paint();
  const detail = /Failure message: '([^\n]*)'/.exec(err.message);
  const where = pos ? "line " + pos.line + ", column " + pos.column + ": " : "";
  setStatus("policy-status", "Parse error at " + where + (detail ? detail[1] : err.message), "error");
  policyBox.setAttribute("aria-invalid", "true");
}

function clearParseError(text) {
  state.error = null;
  policyBox.removeAttribute("aria-invalid");
  paint();
  setStatus("policy-status", text, "ok");
}

// checkPolicy asks the server's parser, through the dry run over an empty
// claim set, whether the text parses. Answers to older texts are dropped.
let checkTimer = 0;
function scheduleCheck() {
  clearTimeout(checkTimer);
  checkTimer = setTimeout(checkPolicy, 300);
}

async function checkPolicy() {
  const seq = ++state.checkSeq;
  const text = policyBox.value;
  const r = await call("POST", explainPath(), { policy: text, claims: {} });
  // An answer about a text that has changed since is dropped: the change
  // scheduled a check of its own.
  if (seq !== state.checkSeq || text !== policyBox.value) return;
  $("policy-status").dataset.checked = "current";
  if (r.error && r.error.code === "PolicyParsingError") {
    markParseError(r.error);
  } else if (r.error) {
    setStatus("policy-status", "Cannot check the policy: " + r.status + " " + r.error.code + ": " + r.error.message, "error");
  } else {
    clearParseError("The policy parses (hash " + r.json.policyHash + ").");
  }
}

function setPolicy(text) {
  policyBox.value = text;
  $("policy-status").dataset.checked = "stale";
  state.lines = new Map();
  state.error = null;
  paint();
  scheduleCheck();
}

// selectLine highlights one line (a rule's) and moves the caret there.
function selectLine(line, column) {
  const lines = new Map();
  for (const [n, c] of state.lines) lines.set(n, c.replace(/\s*hl-selected/g, "").trim());
  lines.set(line, ((lines.get(line) || "") + " hl-selected").trim());
  state.lines = lines;
  paint();
  const off = offsetOf(policyBox.value, line, column || 1);
  policyBox.setSelectionRange(off, off);
  const lineEl = pre.querySelector('.line[data-line="' + line + '"]');
  if (lineEl) {
    policyBox.scrollTop = Math.max(0, lineEl.offsetTop - policyBox.clientHeight / 3);
    syncScroll();
  }
  showCursor();
}

// ---- policy sources ---------------------------------------------------

function b64urlBytes(s) {
  const b = atob(s.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((s.length + 3) % 4));
  return Uint8Array.from(b, (c) => c.charCodeAt(0));
}

function jwtPayload(tok) {
  const parts = String(tok).split(".");
  if (parts.length !== 3) throw new Error("not a compact JWS");
  return JSON.parse(new TextDecoder().decode(b64urlBytes(parts[1])));
}

async function loadCurrent() {
  const r = await call("GET", "/policies/" + encodeURIComponent(typ()) + "?api-version=2022-08-01");
  if (r.error) {
    setStatus("policy-status", "Cannot read the policy in force: " + r.status + " " + r.error.code + ": " + r.error.message, "error");
    return;
  }
  try {
    // The answer's token carries x-ms-policy, a JWS whose body holds the
    // policy text as AttestationPolicy (base64url), as MAA's does.
    const inner = jwtPayload(jwtPayload(r.json.token)["x-ms-policy"]);
    setPolicy(new TextDecoder().decode(b64urlBytes(inner.AttestationPolicy)));
  } catch (e) {
    setStatus("policy-status", "The policy answer could not be read: " + e.message, "error");
  }
}

async function loadSample() {
  if (!state.samples) {
    const res = await fetch("playground/samples.json", { credentials: "omit", cache: "no-cache" });
    state.samples = await res.json();
  }
  const s = state.samples[typ()];
  setPolicy(s.policy);
  $("claims").value = JSON.stringify(s.claims, null, 2);
}

// ---- evidence ---------------------------------------------------------

function bytesB64url(bytes) {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

async function fileBytes(input) {
  const f = input.files && input.files[0];
  return f ? { name: f.name, bytes: new Uint8Array(await f.arrayBuffer()) } : null;
}

// buildEvidence turns the uploads into an attest request body: a JSON file
// with the type's evidence member is used as is, anything else is the raw
// quote or report; runtime and init-time files replace the body's own.
async function buildEvidence() {
  const ev = await fileBytes($("evidence-file"));
  if (!ev) {
    state.evidence = null;
    setStatus("evidence-status", "No evidence chosen.");
    return;
  }
  const field = EVIDENCE_FIELD[typ()];
  let body = null;
  try {
    const j = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(ev.bytes));
    if (j && typeof j === "object" && !Array.isArray(j) && ["quote", "report", "data", "AttestationInfo", "attestationInfo"].some((k) => typeof j[k] === "string")) body = j;
  } catch {
    // binary evidence
  }
  if (!body) body = { [field]: bytesB64url(ev.bytes) };
  for (const [id, member] of [["runtime", "runtimeData"], ["inittime", "initTimeData"]]) {
    const f = await fileBytes($(id + "-file"));
    if (f) body[member] = { data: bytesB64url(f.bytes), dataType: $(id + "-type").value };
  }
  state.evidence = body;
  state.evidenceName = ev.name;
  const parts = Object.keys(body).join(", ");
  setStatus("evidence-status", "Evidence " + ev.name + " (" + ev.bytes.length + " bytes) as an attest request with " + parts + ".");
}

// ---- run --------------------------------------------------------------

function input() {
  if (mode() === "claims") {
    try {
      return { claims: JSON.parse($("claims").value) };
    } catch (e) {
      return { error: "The claims are not JSON: " + e.message };
    }
  }
  if (!state.evidence) return { error: "Choose an evidence file first." };
  return { evidence: state.evidence };
}

// run dry-runs the policy over the input and shows the answer; the
// result panel counts finished runs in data-runs (for tests and for
// assistive technology that watches the region).
async function run() {
  try {
    await runOnce();
  } finally {
    $("result").dataset.runs = String((Number($("result").dataset.runs) || 0) + 1);
  }
}

async function runOnce() {
  const inp = input();
  if (inp.error) {
    showFailure(inp.error);
    return;
  }
  setStatus("result-status", "Running…");
  const text = policyBox.value;
  const r = await call("POST", explainPath(), { policy: text, ...inp });
  if (text === policyBox.value) $("policy-status").dataset.checked = "current";
  if (r.error) {
    if (r.error.code === "PolicyParsingError") markParseError(r.error);
    showFailure(r.status + " " + r.error.code + ": " + r.error.message);
    return;
  }
  clearParseError("The policy parses (hash " + r.json.policyHash + ").");
  showResult(r.json);
}

function showFailure(text) {
  $("result-body").hidden = true;
  setStatus("result-status", text, "error");
}

const pretty = (v) => (v === undefined || v === null ? "(none)" : JSON.stringify(v, null, 2));

function showResult(ex) {
  $("result-body").hidden = false;
  const verdict = ex.permitted ? "PERMITTED" : "DENIED";
  setStatus("result-status", verdict + " (" + ex.decision + ")", ex.permitted ? "ok" : "denied");
  $("decision").textContent = verdict + " — " + ex.decision;
  $("decision").dataset.permitted = String(ex.permitted);
  $("policy-source").textContent = "policy: " + ex.policySource + ", hash " + ex.policyHash;
  $("attest-answer").textContent = ex.permitted
    ? "200 with a token" + (mode() === "claims" ? " (once real evidence yields these claims)" : "")
    : "400 " + ex.error.code + ": " + ex.error.message;
  $("issued").textContent = pretty(ex.issuedClaims);
  $("token-claims").textContent = pretty(ex.tokenClaims);
  $("incoming").textContent = pretty(ex.incomingClaims);

  const lines = new Map();
  const trace = $("trace");
  trace.replaceChildren();
  let decider = null;
  for (const sec of (ex.trace && ex.trace.sections) || []) {
    const list = el("ol", { class: "rules" });
    for (const rule of sec.rules || []) {
      const cls = rule.matched ? "hl-match" : "hl-nomatch";
      if (!lines.has(rule.line) || rule.matched) lines.set(rule.line, cls);
      if (sec.name === "authorizationrules" && rule.matched && /^(permit|deny)/.test(rule.effect || rule.action || "")) decider = rule;
      const label = "[" + (rule.index + 1) + "] line " + rule.line + ":" + rule.column + " " + (rule.matched ? "matched" : "no match");
      const btn = el("button", { type: "button", class: "rule " + cls, "aria-pressed": "false", dataset: { line: rule.line, section: sec.name, index: rule.index } },
        el("span", { class: "rule-head", textContent: label }),
        el("code", { class: "rule-text", textContent: rule.text }));
      btn.addEventListener("click", () => {
        for (const b of trace.querySelectorAll("button.rule")) b.setAttribute("aria-pressed", "false");
        btn.setAttribute("aria-pressed", "true");
        selectLine(rule.line, rule.column);
      });
      const details = [];
      if (rule.reason) details.push(el("p", { class: "why", textContent: "why not: " + rule.reason }));
      for (const c of rule.conditions || []) {
        details.push(el("p", { class: "cond", textContent: (c.satisfied ? "✓ " : "✗ ") + c.text + (c.detail ? " — " + c.detail : "") }));
      }
      if (rule.effect) details.push(el("p", { class: "effect", textContent: "→ " + rule.effect }));
      if (rule.error) details.push(el("p", { class: "why", textContent: "error: " + rule.error }));
      list.append(el("li", {}, btn, ...details));
    }
    trace.append(el("h4", { textContent: sec.name + " (line " + sec.line + ")" }), list);
  }
  if (ex.trace && ex.trace.error) trace.append(el("p", { class: "why", textContent: "error: " + ex.trace.error }));
  state.lines = lines;
  paint();
  if (decider) {
    const b = trace.querySelector('button.rule[data-section="authorizationrules"][data-index="' + decider.index + '"]');
    if (b) b.setAttribute("aria-pressed", "true");
    selectLine(decider.line, decider.column);
  }
}

// ---- cases ------------------------------------------------------------

function download() {
  const c = { format: CASE_FORMAT, attestationType: typ(), policy: policyBox.value };
  const inp = input();
  if (inp.claims !== undefined) c.claims = inp.claims;
  else if (inp.evidence !== undefined) c.evidence = inp.evidence;
  else if (mode() === "claims") c.claimsText = $("claims").value;
  // The bearer token is never part of a case.
  const blob = new Blob([JSON.stringify(c, null, 2) + "\n"], { type: "application/json" });
  const a = el("a", { href: URL.createObjectURL(blob), download: "attestd-case-" + typ() + ".json" });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

async function loadCase() {
  const f = $("case-file").files[0];
  if (!f) return;
  let c;
  try {
    c = JSON.parse(await f.text());
    if (!c || c.format !== CASE_FORMAT || typeof c.policy !== "string" || !(c.attestationType in EVIDENCE_FIELD)) throw new Error("not an " + CASE_FORMAT + " file");
  } catch (e) {
    showFailure("Cannot load " + f.name + ": " + e.message);
    return;
  } finally {
    $("case-file").value = "";
  }
  $("type").value = c.attestationType;
  if (c.evidence && typeof c.evidence === "object") {
    state.evidence = c.evidence;
    setMode("evidence");
    setStatus("evidence-status", "Evidence from the case " + f.name + " (" + Object.keys(c.evidence).join(", ") + ").");
  } else {
    $("claims").value = typeof c.claimsText === "string" ? c.claimsText : JSON.stringify(c.claims || {}, null, 2);
    setMode("claims");
  }
  setPolicy(c.policy);
  setStatus("result-status", "Loaded the case " + f.name + ".");
}

function setMode(m) {
  document.querySelector('input[name="mode"][value="' + m + '"]').checked = true;
  $("claims-box").hidden = m !== "claims";
  $("evidence-box").hidden = m !== "evidence";
}

// ---- wiring -----------------------------------------------------------

$("explain-url").textContent = base + "/attestd/policies/{type}:explain";
policyBox.addEventListener("input", () => {
  // data-checked tells whether the status shown is about the text as it
  // is now ("current") or about an earlier one ("stale").
  $("policy-status").dataset.checked = "stale";
  state.lines = new Map();
  paint();
  scheduleCheck();
});
policyBox.addEventListener("scroll", syncScroll);
for (const ev of ["keyup", "click", "select", "input"]) policyBox.addEventListener(ev, showCursor);
$("token").addEventListener("input", (e) => {
  state.token = e.target.value.trim();
  // A refusal of the previous token is no longer the answer.
  if (/^40[13] /.test($("result-status").textContent)) setStatus("result-status", "The token changed: run again.");
  scheduleCheck();
});
$("type").addEventListener("change", () => {
  scheduleCheck();
  if (state.evidence && $("evidence-file").files.length) buildEvidence();
});
$("load-current").addEventListener("click", loadCurrent);
$("load-sample").addEventListener("click", loadSample);
for (const r of document.querySelectorAll('input[name="mode"]')) r.addEventListener("change", () => setMode(mode()));
for (const id of ["evidence-file", "runtime-file", "runtime-type", "inittime-file", "inittime-type"]) $(id).addEventListener("change", buildEvidence);
$("run").addEventListener("click", run);
$("download").addEventListener("click", download);
$("case-file").addEventListener("change", loadCase);
document.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
    e.preventDefault();
    run();
  }
});
document.body.dataset.ready = "true";
loadSample();
