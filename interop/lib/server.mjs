// Shared by the interop suites (interop/js, interop/browser): building the
// binaries a run needs and starting, using and stopping a real `attestd
// serve` on a free loopback port. Only node: built-ins, so it resolves from
// either suite's directory without a package of its own.
import { spawn, execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

// repo is the root of the attestd checkout.
export const repo = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

// goBinary returns the binary named by the environment variable env, else
// builds the Go package pkg (e.g. "./cmd/attestd") into work/name.
export function goBinary(env, work, name, pkg) {
  if (process.env[env]) return process.env[env];
  const bin = join(work, name);
  execFileSync("go", ["build", "-o", bin, pkg], { cwd: repo, stdio: "inherit" });
  return bin;
}

// sgxgen writes test SGX material (a TEST root, its collateral bundle,
// quotes and OpenEnclave reports) into work/sgxgen with ATTESTD_SGXGEN_BIN,
// else `go run ./testing/sgxplatform/cmd/sgxgen`, and returns that folder.
export function sgxgen(work) {
  const genDir = join(work, "sgxgen");
  if (process.env.ATTESTD_SGXGEN_BIN) {
    execFileSync(process.env.ATTESTD_SGXGEN_BIN, ["-out", genDir], { stdio: "inherit" });
  } else {
    execFileSync("go", ["run", "./testing/sgxplatform/cmd/sgxgen", "-out", genDir], { cwd: repo, stdio: "inherit" });
  }
  return genDir;
}

// listening resolves with the first match of re (its group 1) on proc's
// stdout, and rejects when proc exits first or prints nothing matching
// within 60s; the error carries log(), what proc wrote to stderr.
export function listening(proc, name, re, log) {
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`${name} did not start within 60s:\n` + log())), 60000);
    proc.stdout.on("data", (b) => {
      out += b;
      const m = out.match(re);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    proc.on("exit", (code) => reject(new Error(`${name} exited early (${code}):\n${log()}`)));
  });
}

// startAttestd writes config as work/config.json and runs `attestd serve`
// with it and the data directory data on a free loopback port. It resolves
// once the server prints its URL, with
//   base:   that URL,
//   log():  what the server wrote to stderr so far,
//   token(...args): the bearer token `attestd token --data data ...args` mints,
//   stop(): SIGTERM, then resolves with an error message when the exit was
//           not clean (code 0), else with "".
export async function startAttestd({ bin, work, data, config }) {
  writeFileSync(join(work, "config.json"), JSON.stringify(config));
  const server = spawn(bin, ["serve", "--config", join(work, "config.json"), "--data", data, "--listen", "127.0.0.1:0"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let serverLog = "";
  server.stderr.on("data", (b) => (serverLog += b));
  const exited = new Promise((resolve) => server.on("exit", (code, signal) => resolve({ code, signal })));
  const log = () => serverLog;
  const base = await listening(server, "attestd", /attestd listening on (https:\/\/\S+)/, log);
  return {
    base,
    pid: server.pid,
    log,
    token(...args) {
      const out = execFileSync(bin, ["token", "--data", data, ...args], { encoding: "utf8" }).trim().split("\n");
      return out[out.length - 1];
    },
    async stop() {
      server.kill("SIGTERM");
      const { code, signal } = await exited;
      if (code !== 0) return `attestd did not shut down cleanly on SIGTERM (code ${code}, signal ${signal}):\n${serverLog}`;
      return "";
    },
  };
}

// nodeTest runs `node --test` over files with env and resolves with its
// exit status.
export function nodeTest(env, files, extraArgs = []) {
  const t = spawn(process.execPath, ["--test", "--test-reporter=spec", ...extraArgs, ...files], { env, stdio: "inherit" });
  return new Promise((resolve) => t.on("exit", (code) => resolve(code ?? 1)));
}
