// Syntax highlighting for the MAA policy language, and the conversions
// between the server's (line, column) positions and string offsets. The
// server's parser stays the single source of truth for errors: this file
// only colours text, and a text it does not understand is still shown
// verbatim (every character lands in exactly one token).

// Words the policy grammar gives a meaning (matched case-insensitively, as
// the parser does).
const KEYWORDS = new Set([
  "version", "configurationrules", "authorizationrules", "issuancerules",
  "permit", "deny", "issue", "issueproperty", "add",
  "type", "value", "issuer", "valuetype",
]);
const LITERALS = new Set(["true", "false", "null"]);

// Two-character operators first, as the server's lexer does.
const OPERATORS = ["=>", "==", "!=", "<=", ">=", "&&", "=~", "!~", "<", ">", "=", "!"];
const PUNCT = "[]{}();,:.";

// tokenize splits text into {kind, text} tokens whose texts concatenate to
// text. Kinds: ws, comment, string, number, keyword, literal, ident,
// operator, punct, invalid. Unterminated strings and comments run to the
// end of the line (string) or text (comment), as the server reports them.
export function tokenize(text) {
  const out = [];
  let i = 0;
  const push = (kind, end) => {
    out.push({ kind, text: text.slice(i, end) });
    i = end;
  };
  while (i < text.length) {
    const c = text[i];
    const two = text.slice(i, i + 2);
    if (c === " " || c === "\t" || c === "\r" || c === "\n") {
      let j = i + 1;
      while (j < text.length && " \t\r\n".includes(text[j])) j++;
      push("ws", j);
    } else if (two === "//") {
      const j = text.indexOf("\n", i);
      push("comment", j < 0 ? text.length : j);
    } else if (two === "/*") {
      const j = text.indexOf("*/", i + 2);
      push("comment", j < 0 ? text.length : j + 2);
    } else if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"' && text[j] !== "\n") {
        j += text[j] === "\\" && j + 1 < text.length && text[j + 1] !== "\n" ? 2 : 1;
      }
      push("string", j < text.length && text[j] === '"' ? j + 1 : j);
    } else if (/[0-9]/.test(c) || (c === "-" && /[0-9]/.test(text[i + 1] || ""))) {
      const m = /^-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(i, i + 64));
      push("number", i + m[0].length);
    } else if (/[A-Za-z_]/.test(c)) {
      let j = i + 1;
      while (j < text.length && /[A-Za-z0-9_]/.test(text[j])) j++;
      const w = text.slice(i, j).toLowerCase();
      push(KEYWORDS.has(w) ? "keyword" : LITERALS.has(w) ? "literal" : "ident", j);
    } else {
      const op = OPERATORS.find((o) => text.startsWith(o, i));
      if (op) push("operator", i + op.length);
      else push(PUNCT.includes(c) ? "punct" : "invalid", i + 1);
    }
  }
  return out;
}

// offsetOf turns the server's 1-based line and character column into an
// offset in text (UTF-16 units), clamped to the line's end.
export function offsetOf(text, line, column) {
  let off = 0;
  for (let l = 1; l < line; l++) {
    const nl = text.indexOf("\n", off);
    if (nl < 0) return text.length;
    off = nl + 1;
  }
  const end = text.indexOf("\n", off);
  const lineText = text.slice(off, end < 0 ? text.length : end);
  let units = 0;
  let col = 1;
  for (const ch of lineText) {
    if (col >= column) break;
    units += ch.length;
    col++;
  }
  return off + units;
}

// lineColOf is the inverse: 1-based line and character column of offset.
export function lineColOf(text, offset) {
  const before = text.slice(0, offset);
  const line = before.split("\n").length;
  const lineStart = before.lastIndexOf("\n") + 1;
  return { line, column: Array.from(before.slice(lineStart)).length + 1 };
}

// parseErrorPosition reads the line and column out of MAA's
// PolicyParsingError message ("Line: '2', Column: '1'"), null when absent.
export function parseErrorPosition(message) {
  const m = /Line: '(\d+)', Column: '(\d+)'/.exec(message || "");
  return m ? { line: Number(m[1]), column: Number(m[2]) } : null;
}

// render fills pre with the highlighted text, one element per line (class
// "line", data-line N) so that lines can be marked, and the character at
// opts.error ({line, column}) wrapped in <mark class="parse-error">. Only
// text nodes carry policy text: nothing in it is ever parsed as HTML.
export function render(doc, pre, text, opts = {}) {
  const errOff = opts.error ? offsetOf(text, opts.error.line, opts.error.column) : -1;
  const lineClass = opts.lines || new Map();
  pre.replaceChildren();
  let lineNo = 1;
  let lineEl = newLine(doc, lineNo, lineClass);
  let off = 0;
  const appendSpan = (kind, s) => {
    const span = doc.createElement("span");
    span.className = "t-" + kind;
    span.textContent = s;
    lineEl.append(span);
  };
  // The mark covers one character, or an empty place at the end of a line
  // or of the text (shown as a one-space box).
  const appendMark = (ch) => {
    const mark = doc.createElement("mark");
    mark.className = "parse-error";
    mark.id = "parse-error-mark";
    mark.textContent = ch === "" ? " " : ch;
    lineEl.append(mark);
  };
  const emit = (kind, s, start) => {
    if (errOff >= start && errOff < start + s.length) {
      const k = errOff - start;
      const ch = String.fromCodePoint(s.codePointAt(k));
      if (k > 0) appendSpan(kind, s.slice(0, k));
      appendMark(ch);
      if (k + ch.length < s.length) appendSpan(kind, s.slice(k + ch.length));
      return;
    }
    appendSpan(kind, s);
  };
  for (const t of tokenize(text)) {
    // Tokens spanning lines (whitespace, block comments) are cut at each
    // newline so every line is its own element.
    const parts = t.text.split("\n");
    parts.forEach((p, idx) => {
      if (idx > 0) {
        if (errOff === off) appendMark(""); // error at a line's end
        pre.append(lineEl, doc.createTextNode("\n"));
        off += 1;
        lineEl = newLine(doc, ++lineNo, lineClass);
      }
      if (p) emit(t.kind, p, off);
      off += p.length;
    });
  }
  if (errOff >= off) appendMark(""); // error at the end of the text
  pre.append(lineEl, doc.createTextNode("\n"));
}

function newLine(doc, n, lineClass) {
  const el = doc.createElement("span");
  el.className = "line" + (lineClass.has(n) ? " " + lineClass.get(n) : "");
  el.dataset.line = String(n);
  return el;
}
