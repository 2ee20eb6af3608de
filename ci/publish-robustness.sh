#!/usr/bin/env bash
# Regenerates reports/robustness/DATE/: generated configs (harness fuzz),
# load (harness stress) and faults (harness faults) on every bundled runtime
# and on runc, crun and runsc, each run's JSON (and the fuzz findings'
# reproducers) kept as measured. A finding exits 1: that is what is
# published, not an error. About 15 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/packages.sh
cargo build --release --quiet
h=./target/x86_64-unknown-linux-gnu/release/harness
out=reports/robustness/$(date -u +%F)
mkdir -p "$out"
ok() { "$@" || [ $? -eq 1 ]; }
ok "$h" fuzz --runtime native --runtime runc --cases 500 --seed 1 --output "$out/fuzz-native-runc" >/dev/null
ok "$h" fuzz --hybrid-as-v1 --runtime native --runtime crun --cases 150 --seed 2 --output "$out/fuzz-native-crun" >/dev/null
ok "$h" fuzz --runtime native --runtime 'runsc --network=none' --cases 100 --seed 3 --output "$out/fuzz-native-runsc" >/dev/null
stress() {
    local name=$1
    shift
    ok "$h" stress "$@" --format json --output "$out/stress-$name.json" >/dev/null
}
stress native --runtime native
stress sandboxed --runtime sandboxed
stress runc --runtime runc
stress crun --runtime crun --hybrid-as-v1
stress virtualized --runtime virtualized --parallel 4 --count 60 --timeout 120
faults() {
    local name=$1
    shift
    ok "$h" faults "$@" --format json --output "$out/faults-$name.json" >/dev/null
}
faults native --runtime native
faults sandboxed --runtime sandboxed
faults virtualized --runtime virtualized --timeout 60
faults runc --runtime runc
faults crun --runtime crun --hybrid-as-v1
faults runsc --runtime runsc --runtime-arg=--network=none
# The fault suite's results are conform's format: the report renders them.
"$h" report "$out"/faults-{native,sandboxed,virtualized,runc,crun,runsc}.json -o "$out/faults-report" >/dev/null
echo "published: $out" >&2
