#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) for N seconds each (default 15), two at a time
# (FUZZ_JOBS), after seeding the corpora from fixtures/ (fuzz/seed.sh). Each target first
# replays its corpus and fuzz/regressions/<target>/. Fails if any target crashes, times out or
# runs out of memory; the input is saved under fuzz/artifacts/<target>/.
#
#   fuzz/run.sh            # CI: 15 s per target
#   fuzz/run.sh 600        # a 10-minute campaign per target
#   fuzz/run.sh 60 der jwt_claims
#
# Needs the nightly toolchain; installs cargo-fuzz if it is missing.
set -euo pipefail
cd "$(dirname "$0")"

seconds=${1:-15}
shift || true
jobs=${FUZZ_JOBS:-2}

if ! cargo +nightly --version > /dev/null 2>&1; then
    echo "fuzz/run.sh needs the nightly toolchain: rustup toolchain install nightly" >&2
    exit 1
fi
command -v cargo-fuzz > /dev/null || cargo install --locked cargo-fuzz
./seed.sh > /dev/null
cargo +nightly fuzz build

targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
    mapfile -t targets < <(cargo +nightly fuzz list)
fi
logs=artifacts/logs
mkdir -p "$logs"
started=$(mktemp)
trap 'rm -f "$started"' EXIT

run_target() {
    local target=$1 extra=()
    [[ -d regressions/$target ]] && extra+=("regressions/$target")
    mkdir -p "corpus/$target" "artifacts/$target"
    # -timeout: one input taking 10 s is a hang. -dict: field names and odd values.
    cargo +nightly fuzz run "$target" "corpus/$target" "${extra[@]}" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -dict=fuzz.dict \
        -print_final_stats=1 > "$logs/$target.log" 2>&1
}

# Two at a time (bash 5.1+: `wait -n -p` says which one ended).
declare -A running=()
failed=()
wait_one() {
    local pid status=0
    wait -n -p pid || status=$?
    [[ $status -ne 0 ]] && failed+=("${running[$pid]}")
    unset "running[$pid]"
}
for target in "${targets[@]}"; do
    while [[ ${#running[@]} -ge $jobs ]]; do wait_one; done
    run_target "$target" &
    running[$!]=$target
done
while [[ ${#running[@]} -gt 0 ]]; do wait_one; done

# One line per target from libFuzzer's last status line and final stats.
printf '\n%-20s %12s %8s %8s %8s  %s\n' target executions cov ft corpus result
for target in "${targets[@]}"; do
    log=$logs/$target.log
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1 || true)
    status=$(grep -E '^#[0-9]+.*cov:' "$log" | tail -1 || true)
    cov=$(grep -o 'cov: [0-9]*' <<< "$status" | grep -o '[0-9]*' || true)
    ft=$(grep -o 'ft: [0-9]*' <<< "$status" | grep -o '[0-9]*' || true)
    corp=$(grep -o 'corp: [0-9]*' <<< "$status" | grep -o '[0-9]*' || true)
    result=ok
    [[ " ${failed[*]} " == *" $target "* ]] && result="FAILED (see fuzz/$logs/$target.log)"
    printf '%-20s %12s %8s %8s %8s  %s\n' "$target" "${execs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$result"
done

if [[ ${#failed[@]} -gt 0 ]]; then
    echo
    for target in "${failed[@]}"; do
        grep -E 'panicked at|ERROR: libFuzzer|SUMMARY' "$logs/$target.log" | head -3 | sed "s/^/$target: /"
        find "artifacts/$target" -type f -newer "$started" | sed 's|^|  fuzz/|'
    done
    echo
    echo "Minimise a crash with: cargo +nightly fuzz tmin <target> fuzz/artifacts/<target>/<file>"
    echo "then save it as fuzz/regressions/<target>/<name> (cargo test replays those)."
    exit 1
fi
