// Child process of testing/peers: verifies one SGX/TDX quote with
// @phala/dcap-qvl and times batches of verifications in this process's CPU
// time. Protocol (one JSON object per line):
//   argv: quote file, collateral JSON file (dcap-qvl layout), unix seconds
//   stdout, first line: {"version", "status", "advisory_ids"} of one
//     verification (or {"error"})
//   stdin "N\n" -> stdout {"n", "cpu_us"}: process.cpuUsage() over N
//     verifications (or {"error"})
'use strict';
const fs = require('fs');
const readline = require('readline');
const { verify } = require('@phala/dcap-qvl');
const version = require('@phala/dcap-qvl/package.json').version;

const [quoteFile, collFile, atArg] = process.argv.slice(2);
const quote = new Uint8Array(fs.readFileSync(quoteFile));
const collateral = JSON.parse(fs.readFileSync(collFile, 'utf8'));
const at = Number(atArg);

function reply(obj) { process.stdout.write(JSON.stringify(obj) + '\n'); }

try {
  const r = verify(quote, collateral, at);
  reply({ version, status: r.status, advisory_ids: r.advisory_ids });
} catch (e) {
  reply({ version, error: String(e && e.message || e) + (e && e.cause ? ': ' + String(e.cause.message || e.cause) : '') });
  process.exit(1);
}

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const n = Number(line.trim());
  if (!Number.isInteger(n) || n < 1) { reply({ error: 'bad batch size ' + JSON.stringify(line) }); return; }
  try {
    const start = process.cpuUsage();
    for (let i = 0; i < n; i++) verify(quote, collateral, at);
    const d = process.cpuUsage(start);
    reply({ n, cpu_us: d.user + d.system });
  } catch (e) {
    reply({ error: String(e && e.message || e) });
  }
});
