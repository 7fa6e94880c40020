#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 30) from its committed seed corpus and
# prints one line per target: executions, seconds, corpus size, crash or not.
#   fuzz/run-all.sh 30          # the CI smoke step
#   fuzz/run-all.sh 600         # the 10-minute run of RELIABILITY.md
#   fuzz/run-all.sh 60 ip_args  # some targets only
# Needs nightly Rust and cargo-fuzz. Without them it says so loudly and exits 0 when
# FUZZ_OPTIONAL=1 (so CI can skip on a machine without them), 1 otherwise.
# Exit status: 0 when no target crashed, 1 when one did (its input is in fuzz/artifacts/).
set -uo pipefail
cd "$(dirname "$0")"
seconds="${1:-30}"
shift || true

missing=""
cargo +nightly --version >/dev/null 2>&1 || missing="nightly Rust (rustup toolchain install nightly)"
[ -z "$missing" ] && ! cargo fuzz --version >/dev/null 2>&1 && missing="cargo-fuzz (cargo install cargo-fuzz)"
if [ -n "$missing" ]; then
  echo "fuzz: SKIPPED: $missing is not installed; no fuzz target ran" >&2
  [ "${FUZZ_OPTIONAL:-0}" = 1 ] && exit 0
  exit 1
fi

targets=("$@")
((${#targets[@]})) || mapfile -t targets < <(cargo +nightly fuzz list)
cargo +nightly fuzz build || exit 1

failed=0
mkdir -p logs
for t in "${targets[@]}"; do
  # A scratch copy of the seeds: the run's discoveries do not dirty the committed corpus.
  work="target/corpus-run/$t"
  rm -rf "$work" && mkdir -p "$work" && cp corpus/"$t"/* "$work"/
  log="logs/$t.log"
  start=$(date +%s)
  cargo +nightly fuzz run "$t" "$work" -- -max_total_time="$seconds" -rss_limit_mb=1024 \
    -max_len=65536 -timeout=10 -print_final_stats=1 >"$log" 2>&1
  rc=$?
  took=$(( $(date +%s) - start ))
  execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1)
  [ -n "$execs" ] || execs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
  files=$(find "$work" -type f | wc -l)
  if [ $rc -eq 0 ]; then verdict="ok"; else verdict="CRASH (exit $rc, see fuzz/$log and fuzz/artifacts/$t/)"; failed=1; fi
  printf '%-22s %10s execs %5ss corpus %5s  %s\n' "$t" "${execs:-?}" "$took" "$files" "$verdict"
done
exit $failed
