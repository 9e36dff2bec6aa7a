// The policy playground in headless Chromium (Debian's) against a real
// attestd over HTTPS, started by run.mjs. A person's session, step by step:
// no token (401 shown), a reader token, a policy typed with an error (marked
// where the server's parser says), fixed, run over claims (deny, then
// permit, with the deciding rule's line highlighted), over test-platform
// SGX evidence with runtime data, the policy in force, a case downloaded
// and loaded back, keyboard only, labels and contrast, laptop and phone
// widths (screenshots saved). Every request the page makes is recorded:
// none may be a write.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash, X509Certificate } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} not set: run this file through run.mjs`);
  return v;
};
const BASE = env("ATTESTD_URL");
const READER = env("ATTESTD_TOKEN_READER");
const CONTRIBUTOR = env("ATTESTD_TOKEN_CONTRIBUTOR");
const GEN = env("ATTESTD_SGXGEN_DIR");
const ARTIFACTS = env("ATTESTD_ARTIFACTS");
const manifest = JSON.parse(readFileSync(join(GEN, "manifest.json"), "utf8"));
const PAGE = BASE + "/attestd/playground";

// Debian's chromium (installed by .ci/run). Without it the tests skip here
// and fail under CI=true.
const CHROMIUM = process.env.ATTESTD_CHROMIUM || "/usr/bin/chromium";
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium && process.env.CI === "true") {
  throw new Error(`${CHROMIUM} is missing: .ci/run installs Debian's chromium; CI must run these tests`);
}
const skip = haveChromium ? false : `no Chromium at ${CHROMIUM} (apt-get install chromium, or set ATTESTD_CHROMIUM)`;

let browser, context, page;
const requests = []; // every request the page made to attestd: {method, path}
const responses = []; // {method, path, status}
const pageErrors = []; // uncaught errors and console errors of the page (CSP violations among them)

before(async () => {
  if (skip) return;
  // Trust exactly this server's self-signed certificate (by its public
  // key), not every certificate.
  const cert = new X509Certificate(readFileSync(env("ATTESTD_TLS_CERT")));
  const spki = createHash("sha256").update(cert.publicKey.export({ type: "spki", format: "der" })).digest("base64");
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--ignore-certificate-errors-spki-list=" + spki],
  });
  context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
  page = await context.newPage();
  page.on("request", (r) => {
    const u = new URL(r.url());
    if (u.origin === new URL(BASE).origin) requests.push({ method: r.method(), path: u.pathname + u.search });
  });
  page.on("response", (r) => {
    const u = new URL(r.url());
    if (u.origin === new URL(BASE).origin) responses.push({ method: r.request().method(), path: u.pathname, status: r.status() });
  });
  page.on("pageerror", (e) => pageErrors.push(e.message));
  page.on("console", (m) => m.type() === "error" && !/status of 40[014]/.test(m.text()) && pageErrors.push(m.text()));
});

after(async () => {
  if (browser) await browser.close();
});

// typePolicy replaces the editor's text by typing it, key by key.
async function typePolicy(text) {
  const ed = page.locator("#policy");
  await ed.focus();
  await page.keyboard.press("Control+A");
  await page.keyboard.press("Delete");
  await page.keyboard.type(text, { delay: 2 });
}

// run clicks Run and waits until the page has shown the answer (the page
// counts finished runs in data-runs).
async function run() {
  const n = Number(await page.getAttribute("#result", "data-runs")) || 0;
  await page.locator("#run").click();
  await page.waitForFunction((k) => Number(document.getElementById("result").dataset.runs) > k, n);
}

// checked waits until the policy status is about the editor's text as it
// is now (the as-you-type checks of partial texts are done), then returns
// the status text.
async function checked() {
  await page.waitForSelector('#policy-status[data-checked="current"]');
  return page.textContent("#policy-status");
}

async function selectedLines() {
  return page.$$eval("#highlight .line.hl-selected", (els) => els.map((e) => Number(e.dataset.line)));
}

const BAD = 'version= 1.0;\nauthorizationrules\n{\n    c:[type=="x-ms-sgx-is-debuggable", value==false] => permit()\n};\n';

test("the page loads from attestd with its CSP; without a token the dry run answers 401 and the page says so", { skip }, async () => {
  const res = await page.goto(PAGE);
  assert.equal(res.status(), 200);
  assert.match(res.headers()["content-security-policy"], /default-src 'none'; script-src 'self'/);
  await page.waitForSelector("body[data-ready=true]");
  // The sample policy is loaded and checked at once, without a token.
  await page.waitForFunction(() => /401 Unauthorized/.test(document.getElementById("policy-status").textContent));
  assert.ok(responses.some((r) => r.path === "/attestd/policies/SgxEnclave:explain" && r.status === 401), JSON.stringify(responses));
  await page.locator("#run").click();
  await page.waitForFunction(() => /^401 Unauthorized/.test(document.getElementById("result-status").textContent));
});

test("a policy typed with an error is marked at the server parser's line and column, and unmarked when fixed", { skip }, async () => {
  await page.locator("#token").fill(READER);
  await typePolicy(BAD);
  // The server says: offending '}' at line 5, column 1 (the ';' after
  // permit() is missing).
  assert.match(await checked(), /^Parse error/);
  const mark = await page.$eval("#parse-error-mark", (m) => {
    const line = m.closest(".line");
    let col = 1;
    for (let n = line.firstChild; n && n !== m; n = n.nextSibling) col += Array.from(n.textContent).length;
    return { line: Number(line.dataset.line), col, text: m.textContent };
  });
  assert.deepEqual(mark, { line: 5, col: 1, text: "}" });
  assert.match(await page.textContent("#policy-status"), /Parse error at line 5, column 1: /);
  assert.equal(await page.getAttribute("#policy", "aria-invalid"), "true");
  assert.ok(responses.some((r) => r.path === "/attestd/policies/SgxEnclave:explain" && r.status === 400));
  await page.screenshot({ path: join(ARTIFACTS, "playground-parse-error-1280.png"), fullPage: true });

  // Fix it: the caret at the end of line 4, type ';'.
  await page.$eval("#policy", (ta) => {
    const off = ta.value.indexOf("permit()") + "permit()".length;
    ta.setSelectionRange(off, off);
  });
  await page.keyboard.type(";");
  assert.match(await checked(), /^The policy parses/);
  assert.equal(await page.$("#parse-error-mark"), null);
  assert.equal(await page.getAttribute("#policy", "aria-invalid"), null);
  // Highlighting: keywords and strings are coloured.
  assert.ok((await page.$$eval("#highlight .t-keyword", (e) => e.map((x) => x.textContent))).includes("authorizationrules"));
  assert.ok((await page.$$eval("#highlight .t-string", (e) => e.map((x) => x.textContent))).includes('"x-ms-sgx-is-debuggable"'));
});

test("claims: a debuggable enclave is denied (no rule matched, why not), a production one permitted on line 4", { skip }, async () => {
  await page.locator("#claims").fill('{"x-ms-sgx-is-debuggable": true}');
  await run();
  assert.match(await page.textContent("#decision"), /^DENIED/);
  assert.match(await page.textContent("#attest-answer"), /^400 PolicyEvaluationError: .*No Permit claim was issued/);
  const rule = page.locator("#trace button.rule").first();
  assert.match(await rule.textContent(), /\[1\] line 4:5 no match/);
  assert.match(await page.textContent("#trace"), /why not: /);
  assert.deepEqual(await page.$$eval("#highlight .line.hl-nomatch", (e) => e.map((x) => Number(x.dataset.line))), [4]);

  await page.locator("#claims").fill('{"x-ms-sgx-is-debuggable": false}');
  await run();
  assert.match(await page.textContent("#decision"), /^PERMITTED — permit/);
  assert.match(await page.textContent("#attest-answer"), /^200 with a token/);
  assert.deepEqual(await selectedLines(), [4], "the deciding rule's line is highlighted");
  assert.equal(await rule.getAttribute("aria-pressed"), "true");
  await page.screenshot({ path: join(ARTIFACTS, "playground-claims-1280.png"), fullPage: true });
});

test("evidence: a test-platform SGX quote with runtime data, the sample policy, token claims and the highlighted rule", { skip }, async () => {
  await page.locator("#load-sample").click();
  await page.waitForFunction(() => /Refuse debuggable/.test(document.getElementById("policy").value));
  assert.match(await checked(), /^The policy parses/);
  await page.locator('input[name="mode"][value="evidence"]').check();
  await page.setInputFiles("#evidence-file", join(GEN, "sgx-quote-v3.bin"));
  await page.setInputFiles("#runtime-file", join(GEN, "runtime.bin"));
  await page.waitForFunction(() => /runtimeData/.test(document.getElementById("evidence-status").textContent));
  await run();
  assert.match(await page.textContent("#decision"), /^PERMITTED/, await page.textContent("#result-status"));
  const issued = JSON.parse(await page.textContent("#issued"));
  assert.equal(issued.signer, manifest.mrsigner);
  assert.equal(issued["product-id"], manifest.product_id);
  const tok = JSON.parse(await page.textContent("#token-claims"));
  assert.equal(tok["x-ms-sgx-mrenclave"], manifest.mrenclave);
  assert.equal(tok["x-ms-sgx-ehd"], readFileSync(join(GEN, "runtime.bin")).toString("base64url"));
  assert.equal(tok.signer, manifest.mrsigner);
  assert.equal(tok.nonce, undefined);
  // The sample's permit rule (line 6) decided; the deny rule (line 5) did
  // not match.
  assert.deepEqual(await selectedLines(), [6]);
  assert.deepEqual(await page.$$eval("#highlight .line.hl-nomatch", (e) => e.map((x) => Number(x.dataset.line))), [5]);
  // Selecting another rule highlights its line.
  await page.locator('#trace button.rule[data-section="issuancerules"]').first().click();
  assert.deepEqual(await selectedLines(), [10]);
  await page.screenshot({ path: join(ARTIFACTS, "playground-evidence-1280.png"), fullPage: true });
});

test("evidence the verifier refuses is the attest error, naming the check", { skip }, async () => {
  // The runtime data the quote does not bind.
  await page.setInputFiles("#runtime-file", join(GEN, "runtime.json"));
  await page.waitForFunction(() => /runtime\.json|runtimeData/.test(document.getElementById("evidence-status").textContent));
  await run();
  assert.match(await page.textContent("#result-status"), /^400 InvalidParameter: .*runtimedata/i);
  await page.setInputFiles("#runtime-file", join(GEN, "runtime.bin"));
});

test("evidence as a whole attest request body (JSON) is sent as is; an OpenEnclave report too", { skip }, async () => {
  const runtime = readFileSync(join(GEN, "runtime.bin"));
  const body = join(ARTIFACTS, "attest-request.json");
  writeFileSync(body, JSON.stringify({ quote: readFileSync(join(GEN, "sgx-quote-v4.bin")).toString("base64url"),
    runtimeData: { data: readFileSync(join(GEN, "runtime.json")).toString("base64url"), dataType: "JSON" } }));
  await page.setInputFiles("#runtime-file", []);
  await page.setInputFiles("#evidence-file", body);
  await page.waitForFunction(() => /attest-request\.json .* with quote, runtimeData/.test(document.getElementById("evidence-status").textContent));
  await run();
  assert.match(await page.textContent("#decision"), /^PERMITTED/, await page.textContent("#result-status"));
  const tok = JSON.parse(await page.textContent("#token-claims"));
  assert.deepEqual(tok["x-ms-runtime"], JSON.parse(readFileSync(join(GEN, "runtime.json"), "utf8")));

  await page.selectOption("#type", "OpenEnclave");
  await page.setInputFiles("#evidence-file", join(GEN, "oe-report.bin"));
  await page.setInputFiles("#runtime-file", join(GEN, "runtime.bin"));
  await page.waitForFunction(() => /oe-report\.bin .* with report, runtimeData/.test(document.getElementById("evidence-status").textContent));
  await run();
  assert.match(await page.textContent("#decision"), /^PERMITTED/, await page.textContent("#result-status"));
  assert.equal(JSON.parse(await page.textContent("#token-claims"))["x-ms-sgx-ehd"], runtime.toString("base64url"));
  assert.equal(JSON.parse(await page.textContent("#token-claims"))["x-ms-attestation-type"], "sgx");

  await page.selectOption("#type", "SgxEnclave");
  await page.setInputFiles("#evidence-file", join(GEN, "sgx-quote-v3.bin"));
  await page.waitForFunction(() => /sgx-quote-v3\.bin .* with quote, runtimeData/.test(document.getElementById("evidence-status").textContent));
});

test("a case downloads without the token and loads back to the same result", { skip }, async () => {
  const dl = page.waitForEvent("download");
  await page.locator("#download").click();
  const file = join(ARTIFACTS, "case.json");
  await (await dl).saveAs(file);
  const raw = readFileSync(file, "utf8");
  assert.ok(!raw.includes(READER), "the case holds the bearer token");
  const c = JSON.parse(raw);
  assert.equal(c.format, "attestd-playground-case/1");
  assert.equal(c.attestationType, "SgxEnclave");
  assert.match(c.policy, /issue\(type="signer"/);
  assert.ok(c.evidence.quote && c.evidence.runtimeData.dataType === "Binary");

  // Somewhere else entirely, then the case.
  await page.locator('input[name="mode"][value="claims"]').check();
  await typePolicy("version= 1.0; authorizationrules{ => deny(); };");
  await page.setInputFiles("#case-file", file);
  await page.waitForFunction(() => /^Loaded the case/.test(document.getElementById("result-status").textContent));
  assert.equal(await page.inputValue("#policy"), c.policy);
  assert.equal(await page.isChecked('input[name="mode"][value="evidence"]'), true);
  await run();
  assert.equal(JSON.parse(await page.textContent("#issued")).signer, manifest.mrsigner);

  // A file that is not a case is refused with a message.
  const junk = join(ARTIFACTS, "not-a-case.json");
  writeFileSync(junk, '{"policy": 1}');
  await page.setInputFiles("#case-file", junk);
  await page.waitForFunction(() => /^Cannot load not-a-case\.json/.test(document.getElementById("result-status").textContent));
});

test("start from the policy in force: the instance's, read with the reader token", { skip }, async () => {
  // The contributor sets a policy from outside the page; the page reads it.
  const text = "version= 1.0; authorizationrules{ => permit(); }; issuancerules{ => issue(type=\"in-force\", value=true); };";
  const put = await fetch(BASE + "/policies/SgxEnclave?api-version=2022-08-01", {
    method: "PUT", headers: { Authorization: "Bearer " + CONTRIBUTOR, "Content-Type": "text/plain" },
    body: Buffer.from(JSON.stringify({ alg: "none" })).toString("base64url") + "." + Buffer.from(JSON.stringify({ AttestationPolicy: Buffer.from(text).toString("base64url") })).toString("base64url") + ".",
  });
  assert.equal(put.status, 200, await put.text());
  await page.locator("#load-current").click();
  await page.waitForFunction((t) => document.getElementById("policy").value === t, text);
  await page.locator('input[name="mode"][value="claims"]').check();
  await page.locator("#claims").fill("{}");
  await run();
  assert.deepEqual(JSON.parse(await page.textContent("#issued")), { "in-force": true });
});

test("keyboard only: tab to the controls, Ctrl+Enter runs, Enter on a rule highlights its line", { skip }, async () => {
  await page.goto(PAGE);
  await page.waitForSelector("body[data-ready=true]");
  const order = [];
  for (let i = 0; i < 40 && !order.includes("run"); i++) {
    await page.keyboard.press("Tab");
    order.push(await page.evaluate(() => document.activeElement.id || document.activeElement.name || document.activeElement.tagName));
  }
  for (const id of ["token", "type", "load-current", "load-sample", "policy", "claims", "run"]) assert.ok(order.includes(id), `${id} not reached by Tab: ${order}`);
  assert.ok(order.indexOf("token") < order.indexOf("policy") && order.indexOf("policy") < order.indexOf("run"), String(order));
  // The editor does not trap Tab: it moved on from the policy.
  await page.locator("#token").focus();
  await page.keyboard.type(READER);
  await page.locator("#claims").focus();
  await page.keyboard.press("Control+A");
  await page.keyboard.type('{"x-ms-sgx-is-debuggable": false, "x-ms-sgx-mrsigner": "aa"}');
  await page.waitForFunction(() => /The policy parses/.test(document.getElementById("policy-status").textContent)); // with the token
  await page.keyboard.press("Control+Enter");
  await page.waitForFunction(() => /^PERMITTED/.test(document.getElementById("result-status").textContent));
  const issuance = page.locator('#trace button.rule[data-section="issuancerules"]').first();
  await issuance.focus();
  await page.keyboard.press("Enter");
  assert.deepEqual(await selectedLines(), [10]);
  assert.equal(await issuance.getAttribute("aria-pressed"), "true");
});

test("accessible: every control is labelled, text meets 4.5:1 contrast, focus is visible", { skip }, async () => {
  const unlabelled = await page.$$eval("input, select, textarea", (els) =>
    els.filter((e) => !(e.labels && e.labels.length) && !e.getAttribute("aria-label") && !e.closest("label")).map((e) => e.id || e.name));
  assert.deepEqual(unlabelled, []);
  const low = await page.evaluate(() => {
    const rgb = (s) => (s.match(/[\d.]+/g) || []).map(Number);
    const lum = ([r, g, b]) => {
      const f = (c) => ((c /= 255) <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4);
      return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    const bgOf = (el) => {
      for (let e = el; e; e = e.parentElement) {
        const c = rgb(getComputedStyle(e).backgroundColor);
        if (c.length === 3 || (c.length === 4 && c[3] > 0.5)) return c.slice(0, 3);
      }
      return [255, 255, 255];
    };
    const bad = [];
    const sel = "h1, h2, h3, p, label, legend, button, .rule-head, .rule-text, .why, .cond, .effect, #highlight span, #decision, #result-status, #policy-status, pre, code";
    for (const el of document.querySelectorAll(sel)) {
      if (!el.textContent.trim() || el.closest("[hidden]") || el.offsetParent === null) continue;
      const cs = getComputedStyle(el);
      if (cs.color === "rgba(0, 0, 0, 0)") continue;
      const a = lum(rgb(cs.color).slice(0, 3)), b = lum(bgOf(el));
      const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
      if (ratio < 4.5) bad.push(`${el.tagName}.${el.className} "${el.textContent.trim().slice(0, 20)}" ${ratio.toFixed(2)}`);
    }
    return bad;
  });
  assert.deepEqual(low, []);
  await page.locator("#run").focus();
  assert.notEqual(await page.$eval("#run", (e) => getComputedStyle(e).outlineStyle), "none");
});

test("laptop and phone widths: no horizontal scrolling; screenshots saved", { skip }, async () => {
  for (const [w, h] of [[1280, 900], [390, 844]]) {
    await page.setViewportSize({ width: w, height: h });
    await page.screenshot({ path: join(ARTIFACTS, `playground-${w}.png`), fullPage: true });
    const { overflow, wide } = await page.evaluate(() => ({
      overflow: document.documentElement.scrollWidth - window.innerWidth,
      wide: [...document.querySelectorAll("body *")].filter((e) => !e.closest("#highlight") && e.getBoundingClientRect().right > window.innerWidth + 0.5)
        .map((e) => e.tagName + "#" + e.id + "." + e.className).slice(0, 8),
    }));
    assert.ok(overflow <= 0, `${w}px: the page is ${overflow}px wider than the window: ${wide}`);
  }
  // At phone width a run still works and the panels stack in one column.
  await run();
  assert.match(await page.textContent("#result-status"), /^PERMITTED/);
  assert.ok(await page.locator("#trace button.rule").first().isVisible());
  const lefts = await page.$$eval("main section", (s) => s.map((e) => e.getBoundingClientRect().left));
  assert.equal(new Set(lefts).size, 1, String(lefts));
});

test("the playground turned off for an instance answers 404", { skip }, async () => {
  const res = await page.goto(BASE + "/tenants/off/attestd/playground");
  assert.equal(res.status(), 404);
  assert.equal((await res.json()).error.code, "NotFound");
});

test("the page never called a write route: only its files, GET /policies and POST :explain", { skip }, async () => {
  assert.ok(requests.length > 10, String(requests.length));
  const allowed = [
    (r) => r.method === "GET" && /^\/(tenants\/off\/)?attestd\/playground(\/[a-z]+\.(js|css|json))?$/.test(r.path),
    (r) => r.method === "GET" && /^\/policies\/(SgxEnclave|OpenEnclave)\?api-version=2022-08-01$/.test(r.path),
    (r) => r.method === "POST" && /^\/attestd\/policies\/(SgxEnclave|OpenEnclave):explain$/.test(r.path),
  ];
  const other = requests.filter((r) => !allowed.some((ok) => ok(r)));
  assert.deepEqual(other, []);
  assert.deepEqual(pageErrors, []);
  for (const m of ["PUT", "DELETE", "PATCH"]) assert.ok(!requests.some((r) => r.method === m));
  assert.ok(!requests.some((r) => /:reset|certificates|\/attest\//.test(r.path)));
});
