#!/usr/bin/env bash
# The main job: build the harness and run the whole conformance suite
# against a runtime (default: the bundled native runtime). Extra arguments go to `harness conform`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/packages.sh
cargo build --release --quiet
runtime="${1:-native}"
shift || true
exec ./target/x86_64-unknown-linux-gnu/release/harness conform --runtime "$runtime" "$@"
