#!/usr/bin/env bash
# Regenerates the published comparison in reports/: the conformance suite on
# every bundled runtime and on runc, crun and runsc, one interleaved bench of
# all of them, and the report rendered from those files alone.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/packages.sh
cargo build --release --quiet
h=./target/x86_64-unknown-linux-gnu/release/harness
mkdir -p reports/conform reports/bench
# A failing case exits 1: that is a finding to publish, not an error.
conform() {
    local name=$1
    shift
    "$h" conform "$@" --format json --output "reports/conform/$name.json" >/dev/null || [ $? -eq 1 ]
}
conform native --runtime native
conform sandboxed --runtime sandboxed
conform virtualized --runtime virtualized --jobs 2 --timeout 60
conform runc --runtime runc
conform crun --runtime crun --hybrid-as-v1
conform runsc --runtime runsc --runtime-arg=--network=none --runtime-arg=--oci-seccomp
bash ci/bench.sh --format json --output reports/bench/latest.json >/dev/null || [ $? -eq 1 ]
"$h" report reports/conform/native.json reports/conform/sandboxed.json reports/conform/virtualized.json \
    reports/conform/runc.json reports/conform/crun.json \
    reports/conform/runsc.json reports/bench/latest.json -o reports/latest
echo "published: reports/latest/report.md and reports/latest/report.html" >&2
