#!/usr/bin/env bash
# Throughput of attestd replicas sharing one PostgreSQL (issue 15's load run):
# one replica, then two replicas (separate data directories, one shared
# key-encryption key), each driven by its own closed-loop load generator,
# SGX test-platform quotes over HTTPS. Prints attestations/s, server CPU per
# attestation and the two-replica ÷ one-replica ratios of the same run.
#
#   scripts/replicas.sh               # 10 s per step, 16 connections per replica
#   scripts/replicas.sh --duration 20s -c 8
#
# Everything (PostgreSQL included) runs on this machine: on a 2-core machine
# two replicas share the cores, so the ratio measures what sharing one
# database costs (key and policy reads, nonce writes), not how far more
# machines would scale. Needs Go, jq and the PostgreSQL server binaries
# (initdb, pg_ctl; Debian's postgresql package).
set -euo pipefail
cd "$(dirname "$0")/.."

duration=10s
conc=16
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration="$2"; shift 2 ;;
    -c) conc="$2"; shift 2 ;;
    -h|--help) sed -n "2,15p" "$0"; exit 0 ;;
    *) echo "replicas.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
command -v jq >/dev/null || { echo "replicas.sh: needs jq" >&2; exit 1; }
pgbin=""
for d in "$(pg_config --bindir 2>/dev/null || true)" /usr/lib/postgresql/*/bin; do
  if [ -n "$d" ] && [ -x "$d/initdb" ]; then pgbin=$d; break; fi
done
[ -n "$pgbin" ] || { echo "replicas.sh: no PostgreSQL server binaries (apt-get install postgresql)" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/attestd-replicas.XXXXXX")
chmod 755 "$tmp"
pids=()
asuser=()
if [ "$(id -u)" = 0 ]; then asuser=(runuser -u postgres --); fi
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -d "$tmp/pg" ] && "${asuser[@]}" "$pgbin/pg_ctl" -D "$tmp/pg" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT

echo "building attestd, sgxgen, loadgen into $tmp" >&2
go build -o "$tmp/attestd" ./cmd/attestd
go build -o "$tmp/sgxgen" ./testing/sgxplatform/cmd/sgxgen
go build -o "$tmp/loadgen" ./testing/loadgen/cmd/loadgen
"$tmp/sgxgen" -out "$tmp/gen" >/dev/null

# PostgreSQL on a Unix socket in $tmp (no TCP port to collide with).
mkdir -p "$tmp/pg" "$tmp/sock"
[ "$(id -u)" = 0 ] && chown postgres "$tmp/pg" "$tmp/sock"
"${asuser[@]}" "$pgbin/initdb" -D "$tmp/pg" -A trust -U attestd >/dev/null
"${asuser[@]}" "$pgbin/pg_ctl" -D "$tmp/pg" -l "$tmp/sock/pg.log" -w \
  -o "-k $tmp/sock -c listen_addresses= -c fsync=on -c max_connections=200" start >/dev/null
"${asuser[@]}" "$pgbin/createdb" -h "$tmp/sock" -U attestd attestd
dsn="postgres://attestd@/attestd?host=$tmp/sock"
head -c 32 /dev/urandom > "$tmp/kek" && chmod 600 "$tmp/kek"

# start_replica NAME: starts attestd on 127.0.0.1:0; sets url_NAME, pid_NAME.
start_replica() {
  local name=$1 addr="" i
  "$tmp/attestd" serve --config "$tmp/gen/attestd.json" --data "$tmp/data-$name" --listen 127.0.0.1:0 \
    --store postgres --store-dsn "$dsn" --key-encryption-key "$tmp/kek" \
    >"$tmp/out-$name" 2>"$tmp/log-$name" &
  local pid=$!
  pids+=("$pid")
  for i in $(seq 1 300); do
    addr=$(sed -n 's#^attestd listening on https://##p' "$tmp/out-$name")
    [ -n "$addr" ] && break
    kill -0 "$pid" 2>/dev/null || { cat "$tmp/log-$name" >&2; echo "replicas.sh: replica $name exited" >&2; exit 1; }
    sleep 0.1
  done
  [ -n "$addr" ] || { echo "replicas.sh: replica $name did not start" >&2; exit 1; }
  printf -v "url_$name" '%s' "https://$addr/attest/SgxEnclave"
  printf -v "pid_$name" '%s' "$pid"
}

# load NAME ARGS...: a closed-loop run against replica NAME, JSON on stdout.
load() {
  local name=$1 u p
  shift
  u="url_$name" p="pid_$name"
  "$tmp/loadgen" -url "${!u}" -cacert "$tmp/data-$name/tls/cert.pem" -quote "$tmp/gen/sgx-quote-v3.bin" \
    -runtime "$tmp/gen/runtime.bin" -pid "${!p}" -c "$conc" -d "$duration" -json "$@"
}

start_replica a
start_replica b
echo "machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), load average $(cut -d' ' -f1-3 /proc/loadavg), $(go version | cut -d' ' -f3); PostgreSQL $("$pgbin/postgres" --version | awk '{print $3}')"

# One attestation first: the instance, its keys and policy exist before timing
# (cross-replica token verification is TestReplicasShareSigningKeys).
one=$(load a -n 1)
[ "$(jq '.ok' <<<"$one")" = 1 ] || { echo "replicas.sh: replica A did not attest: $one" >&2; exit 1; }

single=$(load a)
load a >"$tmp/two-a.json" &
la=$!
load b >"$tmp/two-b.json" &
lb=$!
wait "$la" "$lb"
two_a=$(cat "$tmp/two-a.json")
two_b=$(cat "$tmp/two-b.json")
single2=$(load b)

jq -rn --argjson s1 "$single" --argjson a "$two_a" --argjson b "$two_b" --argjson s2 "$single2" '
  def r2: (. * 100 | round) / 100;
  def cpuok($x): ($x.server.cpu_ns / $x.ok / 1e3 | round);
  def row($name; $x): "| \($name) | \($x.served_rps | round) | \($x.latency_ns.P50 / 1e6 | r2) | \($x.latency_ns.P99 / 1e6 | r2) | \($x.ok) | \($x.sent - $x.ok) | \(cpuok($x)) |";
  (($s1.served_rps + $s2.served_rps) / 2) as $one |
  ($a.served_rps + $b.served_rps) as $two |
  "| step | attestations/s | p50 ms | p99 ms | ok | not ok | server CPU µs per attestation |",
  "|---|---:|---:|---:|---:|---:|---:|",
  row("one replica (A), before"; $s1),
  row("two replicas: A"; $a),
  row("two replicas: B"; $b),
  "| two replicas: A + B | \($two | round) | | | \($a.ok + $b.ok) | \(($a.sent - $a.ok) + ($b.sent - $b.ok)) | |",
  row("one replica (B), after"; $s2),
  "",
  "two replicas ÷ one replica (mean of the runs before and after): \($two / $one | r2) in attestations/s",
  "server CPU per attestation, two replicas ÷ one: \(((cpuok($a) + cpuok($b)) / 2) / ((cpuok($s1) + cpuok($s2)) / 2) | r2)"'
echo
echo "closed loop, $conc connections per replica, $duration per step; both replicas on one PostgreSQL (fsync on), one shared key-encryption key."
