// Unit tests of the playground's highlighter module (no browser): tokens
// cover the text exactly, and positions convert both ways as the server
// counts them (1-based line, character column).
import { test } from "node:test";
import assert from "node:assert/strict";
import { tokenize, offsetOf, lineColOf, parseErrorPosition } from "../../api/playground/static/highlight.js";

test("tokenize: every character in exactly one token, kinds as the grammar has them", () => {
  const cases = [
    ['version= 1.0; authorizationrules{ c:[type=="x", value==-3] => permit(); };', { keyword: ["version", "authorizationrules", "type", "value", "permit"], number: ["1.0", "-3"], string: ['"x"'], operator: ["=", "==", "==", "=>"] }],
    ["// comment\n/* block\n comment */ issue", { comment: ["// comment", "/* block\n comment */"], keyword: ["issue"] }],
    ['"unterminated\nnext', { string: ['"unterminated'], ident: ["next"] }],
    ["/* unterminated", { comment: ["/* unterminated"] }],
    ["ISSUANCERULES True @", { keyword: ["ISSUANCERULES"], literal: ["True"], invalid: ["@"] }],
    ["", {}],
  ];
  for (const [text, want] of cases) {
    const toks = tokenize(text);
    assert.equal(toks.map((t) => t.text).join(""), text);
    for (const [kind, texts] of Object.entries(want)) {
      assert.deepEqual(toks.filter((t) => t.kind === kind).map((t) => t.text), texts, `${kind} of ${JSON.stringify(text)}`);
    }
  }
});

test("offsetOf and lineColOf agree, columns count characters", () => {
  const text = "ab\n\tcé😀d\n\nz";
  for (let off = 0; off <= text.length; off++) {
    if (off > 0 && text.charCodeAt(off - 1) >= 0xd800 && text.charCodeAt(off - 1) < 0xdc00) continue; // inside a surrogate pair
    const { line, column } = lineColOf(text, off);
    assert.equal(offsetOf(text, line, column), off, `offset ${off} -> ${line}:${column}`);
  }
  assert.deepEqual(lineColOf(text, text.indexOf("d")), { line: 2, column: 5 });
  assert.equal(offsetOf(text, 9, 1), text.length);
  assert.equal(offsetOf(text, 1, 99), 2);
});

test("parseErrorPosition reads MAA's parser message", () => {
  const msg = "Attestation Enclave operation failed with 65526: Exception(0) 83FFFFF6 Invalid policy was specified    Msg:[Policy Parser Exception Thrown: Offending symbol: '}'\nLine: '5', Column: '1'\nFailure message: 'x'";
  assert.deepEqual(parseErrorPosition(msg), { line: 5, column: 1 });
  assert.equal(parseErrorPosition("no position"), null);
});
