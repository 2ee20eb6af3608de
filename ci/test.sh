#!/usr/bin/env bash
# Every test of the project: lints, unit tests, and the integration tests
# that drive real runtimes (runc, crun, runsc) and fault-injecting wrappers.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/packages.sh
cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo test --workspace 2>&1
