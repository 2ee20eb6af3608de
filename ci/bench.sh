#!/usr/bin/env bash
# Compare the bundled runtimes with runc, crun and runsc on this machine:
# lifecycle latency, density and isolation overhead, in one interleaved run.
# Extra arguments go to `harness bench` (e.g. --format json --output r.json).
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/packages.sh
cargo build --release --quiet
# --hybrid-as-v1: crun 1.8 refuses hybrid cgroup hosts; a no-op elsewhere.
exec ./target/x86_64-unknown-linux-gnu/release/harness bench --hybrid-as-v1 \
  --runtime native --runtime sandboxed --runtime virtualized --runtime runc --runtime crun \
  --runtime 'runsc --network=none' "$@"
