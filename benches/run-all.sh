#!/usr/bin/env bash
# `make bench`: builds the three benchmark programs (release profile), runs
# them one after the other, keeps each one's output in target/bench-output/,
# prints how long each took, and writes the generated region at the top of
# docs/benchmarks.md (between <!-- bench:begin --> and <!-- bench:end -->),
# leaving the hand-written text below it as it is.
#
#   bench          cargo bench --bench bench          (SDK config, visitor mix,
#                  dashboard HTTP, store, matcher)
#   conversations  cargo bench --bench conversations  (make bench-conversations)
#   tickets        cargo bench --bench tickets        (make bench-tickets)
#
# BENCH_PROGRAMS="bench tickets" runs a subset (the region then says so);
# every program's own settings (BENCH_SESSIONS, BENCH_SECONDS, …) pass
# through. A program that fails is reported in the region with the end of
# its error output, the others still run, and the script exits 1.
set -u -o pipefail

cargo=${CARGO:-cargo}
doc=${BENCH_DOC:-docs/benchmarks.md}
target_dir=${CARGO_TARGET_DIR:-target}
out=${BENCH_OUTPUT:-$target_dir/bench-output}
programs=${BENCH_PROGRAMS:-bench conversations tickets}
mkdir -p "$out"

declare -A make_target=([bench]="BENCH_PROGRAMS=bench make bench" [conversations]="make bench-conversations" [tickets]="make bench-tickets")

seconds() { date +%s; }
took() { local s=$1; printf '%d min %02d s' $((s / 60)) $((s % 60)); }

began=$(seconds)
began_utc=$(date -u '+%Y-%m-%d %H:%M UTC')
echo "== building the benchmark programs (release profile)"
build_started=$(seconds)
build_args=()
for p in $programs; do build_args+=(--bench "$p"); done
if ! $cargo bench --no-run "${build_args[@]}"; then
  echo "the build failed: no figures written" >&2
  exit 1
fi
build_took=$(($(seconds) - build_started))

declare -A status duration
failed=0
for p in $programs; do
  echo
  echo "== cargo bench --bench $p"
  started=$(seconds)
  $cargo bench --bench "$p" >"$out/$p.txt" 2> >(tee "$out/$p.err" >&2) &
  pid=$!
  tail -n +1 -f --pid=$pid "$out/$p.txt" 2>/dev/null
  wait $pid
  status[$p]=$?
  duration[$p]=$(($(seconds) - started))
  [ "${status[$p]}" -eq 0 ] || failed=1
  echo "== $p: exit ${status[$p]}, $(took "${duration[$p]}")"
done
total=$(($(seconds) - began))

# ----- the generated region -----
rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=""
if [ -n "$(git status --porcelain -- Cargo.toml Cargo.lock src crates migrations benches 2>/dev/null)" ]; then
  dirty=" with uncommitted changes to the code"
fi
cpu=$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//')
mem=$(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo 2>/dev/null)
rustc_version=$(rustc --version 2>/dev/null || echo "rustc ?")
wrk_version=$(wrk --version 2>&1 | head -n1 | cut -d' ' -f1-2)
pg_host=$(printf '%s' "${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}" | sed -E 's#://[^@]*@#://#')
region=$(mktemp)
{
  echo '<!-- bench:begin -->'
  echo '<!-- Written by `make bench` (benches/run-all.sh); the next run replaces everything up to bench:end. -->'
  echo
  echo '## Latest run (generated)'
  echo
  echo "- **Command:** \`make bench\` (= \`benches/run-all.sh\`: \`cargo bench --no-run\`, then \`cargo bench --bench NAME\` for each of: $programs)$( [ "$programs" = "bench conversations tickets" ] || echo ' — a SUBSET: BENCH_PROGRAMS was set')."
  echo "- **Date:** $began_utc, $(took "$total") in all (build $(took "$build_took"))."
  echo "- **Revision:** \`$rev\`$dirty."
  echo "- **Machine:** $(nproc) cores ($cpu), $mem RAM, Linux $(uname -r); $rustc_version; load generator ${wrk_version:-wrk not installed}; PostgreSQL at \`$pg_host\`."
  settings=$(env | grep -E '^BENCH_[A-Z_]+=' | grep -v '^BENCH_PROGRAMS=' | sort | tr '\n' ' ')
  [ -n "$settings" ] || settings="none: the programs' defaults"
  echo "- **Settings from the environment:** $settings."
  echo
  echo '| program | command | alone | exit | took |'
  echo '|---|---|---|---:|---:|'
  for p in $programs; do
    echo "| $p | \`cargo bench --bench $p\` | \`${make_target[$p]}\` | ${status[$p]} | $(took "${duration[$p]}") |"
  done
  echo
  echo 'Each program prints its own settings, its tables (every figure next to the baseline'
  echo 'it is a ratio to, measured in the same run), the peak RSS of the `chatdesk serve`'
  echo 'process under each load, and how long each section took. Their output, as printed:'
  for p in $programs; do
    echo
    echo "### \`cargo bench --bench $p\`"
    echo
    if [ "${status[$p]}" -ne 0 ]; then
      echo "**FAILED (exit ${status[$p]}).** The end of its error output:"
      echo
      echo '```text'
      tail -n 15 "$out/$p.err" | grep -v '^\s*Compiling\|^\s*Finished\|^\s*Running'
      echo '```'
      echo
    fi
    echo '```text'
    cat "$out/$p.txt"
    echo '```'
  done
  echo
  echo '<!-- bench:end -->'
} >"$region"

# Replace the region, or put it right under the title the first time.
tmp=$(mktemp)
if grep -q '^<!-- bench:begin -->$' "$doc"; then
  awk -v region="$region" '
    /^<!-- bench:begin -->$/ { while ((getline line < region) > 0) print line; skip = 1; next }
    /^<!-- bench:end -->$/ { skip = 0; next }
    !skip { print }
  ' "$doc" >"$tmp"
else
  awk -v region="$region" '
    { print }
    NR == 1 { print ""; while ((getline line < region) > 0) print line }
  ' "$doc" >"$tmp"
fi
cat "$tmp" >"$doc"
rm -f "$tmp" "$region"

echo
echo "== make bench: $(took "$total") in all; build $(took "$build_took")"
for p in $programs; do echo "   $p: exit ${status[$p]}, $(took "${duration[$p]}")"; done
echo "   figures written to $doc (generated region at the top); raw output in $out/"
exit $failed
