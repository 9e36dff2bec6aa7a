#!/usr/bin/env bash
# Scaling and overload run of attestd over HTTPS (testing/loadgen), on the
# SGX test platform (testing/sgxplatform/cmd/sgxgen):
#
#   scripts/load.sh                  # attestd on 1 CPU, then on 2, 5 s per step
#   scripts/load.sh --duration 10s --procs "1 2"
#   scripts/load.sh --procs 1 --gomaxprocs 1   # one CPU with GOMAXPROCS=1 forced (admission starved)
#   scripts/load.sh --soak 10m       # one server, open loop at half of saturation for 10 min, RSS every 30 s
#
# --procs lists CPU counts: attestd runs pinned to that many CPUs (taskset)
# with GOMAXPROCS unset, so it sizes itself as in a container of that many
# CPUs (on one CPU it raises GOMAXPROCS to 2, see cmd/attestd/procs.go);
# --gomaxprocs N sets GOMAXPROCS=N for every run instead. It builds nothing
# again: attestd, sgxgen and loadgen are built once. It starts attestd on a free port with the generated
# platform, measures saturation with a closed loop, then runs open loops at
# 50 %, 100 %, 150 % and 200 % of it (latency from each intended send time,
# so an overloaded server's queue shows in p99 instead of slowing the
# generator down), and prints one table: offered and served rate, p50, p99,
# 429s (shed), other errors, the server's CPU time and its peak RSS in that
# step. On one CPU the server is pinned to CPU 0 and the load generator to
# CPU 1 (taskset, when there are two CPUs); on 2 they share the machine.
set -euo pipefail
cd "$(dirname "$0")/.."

duration=5s
procs_list="1 2"
soak=""
gomaxprocs=""
conc=16
sample=30s
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration="$2"; shift 2 ;;
    --procs) procs_list="$2"; shift 2 ;;
    --soak) soak="$2"; shift 2 ;;
    --gomaxprocs) gomaxprocs="$2"; shift 2 ;;
    --sample) sample="$2"; shift 2 ;;
    -c) conc="$2"; shift 2 ;;
    -h|--help) sed -n "2,25p" "$0"; exit 0 ;;
    *) echo "load.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
command -v jq >/dev/null || { echo "load.sh: needs jq" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/attestd-load.XXXXXX")
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

echo "building attestd, sgxgen, loadgen into $tmp" >&2
go build -o "$tmp/attestd" ./cmd/attestd
go build -o "$tmp/sgxgen" ./testing/sgxplatform/cmd/sgxgen
go build -o "$tmp/loadgen" ./testing/loadgen/cmd/loadgen
"$tmp/sgxgen" -out "$tmp/gen" >/dev/null

ncpu=$(nproc)
have_taskset=false
command -v taskset >/dev/null && [ "$ncpu" -ge 2 ] && have_taskset=true

# start_server CPUS: starts attestd on 127.0.0.1:0 pinned to CPUS CPUs, sets
# server_pid, url and eff_procs (the GOMAXPROCS attestd runs with).
start_server() {
  local procs=$1 pin=() env=(env -u GOMAXPROCS)
  if $have_taskset; then
    if [ "$procs" = 1 ]; then pin=(taskset -c 0); else pin=(taskset -c "0-$((procs - 1))"); fi
  fi
  [ -n "$gomaxprocs" ] && env=(env GOMAXPROCS="$gomaxprocs")
  : >"$tmp/server.out"
  "${env[@]}" "${pin[@]}" "$tmp/attestd" serve --config "$tmp/gen/attestd.json" --data "$tmp/data" \
    --listen 127.0.0.1:0 >"$tmp/server.out" 2>"$tmp/server-$procs.log" &
  server_pid=$!
  local addr="" i
  for i in $(seq 1 200); do
    addr=$(sed -n 's#^attestd listening on https://##p' "$tmp/server.out")
    [ -n "$addr" ] && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$tmp/server-$procs.log" >&2; echo "load.sh: attestd exited" >&2; exit 1; }
    sleep 0.1
  done
  [ -n "$addr" ] || { echo "load.sh: attestd did not start listening" >&2; exit 1; }
  url="https://$addr/attest/SgxEnclave"
  eff_procs=$(sed -n 's/.*msg="raised GOMAXPROCS".* to=\([0-9]*\).*/\1/p' "$tmp/server-$procs.log" | head -1)
  [ -n "$eff_procs" ] || eff_procs=${gomaxprocs:-$procs}
}

stop_server() {
  kill "$server_pid"
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}

# loadgen ARGS...: the load generator (pinned to the last CPU when the server is on one CPU).
run_loadgen() {
  local pin=()
  if $have_taskset && [ "$cur_procs" = 1 ]; then pin=(taskset -c "$((ncpu - 1))"); fi
  "${pin[@]}" "$tmp/loadgen" -url "$url" -cacert "$tmp/data/tls/cert.pem" \
    -quote "$tmp/gen/sgx-quote-v3.bin" -runtime "$tmp/gen/runtime.bin" -pid "$server_pid" "$@"
}

row() { # row PROCS LOAD JSON SATURATION: one table line; ratios against the saturation of the same run
  jq -r --arg p "$1" --arg load "$2" --argjson sat "$4" '
    def ms: . / 1e6 | (. * 100 | round) / 100;
    def r2: (. * 100 | round) / 100;
    [$p, $load, (.offered_rps | round), (.served_rps | round), (.served_rps / $sat | r2), (.latency_ns.P50 | ms), (.latency_ns.P99 | ms),
     .shed, ((.transport_errors) + ([.failed_by_status // {} | .[]] | add // 0)),
     (.server.cpu_ns / 1e9 | r2), (if .ok > 0 then .server.cpu_ns / .ok / 1e3 | round else "-" end),
     (.server.peak_rss_bytes / 1048576 | (. * 10 | round) / 10)]
    | "| " + (map(tostring) | join(" | ")) + " |"' <<<"$3"
}

echo "machine: $ncpu CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), load average $(cut -d' ' -f1-3 /proc/loadavg), $(go version | cut -d' ' -f3)"

if [ -n "$soak" ]; then
  cur_procs=$(echo "$procs_list" | awk '{print $NF}')
  start_server "$cur_procs"
  sat=$(run_loadgen -c "$conc" -d "$duration" -json | jq '.served_rps')
  rate=$(jq -n --argjson s "$sat" '$s / 2 | round')
  echo "soak: $cur_procs CPUs (GOMAXPROCS=$eff_procs), saturation $(printf %.0f "$sat")/s, open loop at $rate/s for $soak, RSS every $sample"
  echo "\$ loadgen -rate $rate -d $soak -sample $sample -pid <attestd>"
  run_loadgen -rate "$rate" -d "$soak" -sample "$sample" -max-inflight 512 -timeout 5s || true
  stop_server
  exit 0
fi

echo
echo "| CPUs (GOMAXPROCS) | load | offered/s | served/s | served ÷ saturation | p50 ms | p99 ms | shed (429) | errors | server CPU s | server CPU µs per OK | peak RSS MiB |"
echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for cur_procs in $procs_list; do
  start_server "$cur_procs"
  sat_json=$(run_loadgen -c "$conc" -d "$duration" -json -reset-peak)
  sat=$(jq '.served_rps' <<<"$sat_json")
  row "$cur_procs ($eff_procs)" "closed c=$conc" "$sat_json" "$sat"
  for pct in 50 100 150 200; do
    rate=$(jq -n --argjson s "$sat" --argjson p "$pct" '$s * $p / 100 | round')
    # Each step is a new loadgen process: it opens and warms 16 connections
    # before measuring (loadgen -warmup); more are opened as the load needs.
    out=$(run_loadgen -rate "$rate" -d "$duration" -max-inflight 512 -timeout 5s -json -reset-peak) || true
    if [ -z "$out" ]; then echo "| $cur_procs ($eff_procs) | ${pct} % | $rate | (loadgen failed) |"; continue; fi
    row "$cur_procs ($eff_procs)" "open ${pct} %" "$out" "$sat"
  done
  stop_server
done
echo
echo "closed loop: $conc connections, ${duration}; open loop: ${duration} per step, at most 512 requests in flight, 5 s timeout (an error);"
echo "latency of successful requests, open loop from each request's intended send time; server CPU and peak RSS (VmHWM, reset per step) of attestd."
