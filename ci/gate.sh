#!/usr/bin/env bash
# The CI gate for a runtime's pull request, for any CI system: checks and
# measures the baseline binary (main's) and the candidate (the PR's) in the
# same job, on the same machine, then gates the candidate against the
# baseline and renders a report.
#
#   ci/gate.sh BASELINE_RUNTIME CANDIDATE_RUNTIME [OUT_DIR]
#
# The runtimes are paths to runc-compatible binaries. Environment:
#   HARNESS            the harness binary (default: build this checkout's)
#   RUNTIME_ARGS       global flags for both runtimes, space-separated
#                      (e.g. "--network=none" for runsc)
#   BENCH_ARGS         extra `harness bench` arguments (default: a quick set)
#   GATE_ARGS          extra `harness gate` arguments (e.g. --tolerance lifecycle.*=10)
#   GITHUB_STEP_SUMMARY  when set (GitHub Actions), the gate's summary is appended to it
# Exit status: 0 the candidate passes, 1 it regresses, 2 the gate could not run.
set -euo pipefail
if [ $# -lt 2 ]; then
    sed -n '2,17p' "$0" >&2
    exit 2
fi
base=$(realpath "$1")
cand=$(realpath "$2")
out=${3:-gate-out}
here=$(cd "$(dirname "$0")/.." && pwd)
for rt in "$base" "$cand"; do
    [ -x "$rt" ] || { echo "ci/gate.sh: runtime $rt is not an executable file" >&2; exit 2; }
done
if [ -z "${HARNESS:-}" ]; then
    (cd "$here" && cargo build --release --quiet)
    HARNESS="$here/target/x86_64-unknown-linux-gnu/release/harness"
fi
mkdir -p "$out"
read -r -a rt_args <<< "${RUNTIME_ARGS:-}"
read -r -a bench_args <<< "${BENCH_ARGS:--n 20 --warmup 3 --density 5 --density-rounds 5 --rounds 2}"
read -r -a gate_args <<< "${GATE_ARGS:-}"
conform_flags=()
for a in "${rt_args[@]}"; do conform_flags+=("--runtime-arg=$a"); done
hybrid=()
[ -d /sys/fs/cgroup/unified ] && hybrid=(--hybrid-as-v1)

# Conformance of each binary: a failing case exits 1, which is the gate's to judge.
for side in baseline:"$base" candidate:"$cand"; do
    name=${side%%:*}
    "$HARNESS" conform --runtime "${side#*:}" "${conform_flags[@]}" "${hybrid[@]}" \
        --format json --output "$out/conform-$name.json" >/dev/null || [ $? -eq 1 ]
done
# Both binaries in one interleaved bench run: drift hits both alike.
"$HARNESS" bench "${hybrid[@]}" \
    --runtime "baseline=$base ${RUNTIME_ARGS:-}" --runtime "candidate=$cand ${RUNTIME_ARGS:-}" \
    "${bench_args[@]}" --format json --output "$out/bench.json" >/dev/null || [ $? -eq 1 ]

verdict=0
"$HARNESS" gate --baseline "$out/conform-baseline.json" --results "$out/conform-candidate.json" \
    --summary "$out/gate-conform.md" --junit "$out/gate-conform.xml" "${gate_args[@]}" >/dev/null || verdict=$?
"$HARNESS" gate --baseline "$out/bench.json" --results "$out/bench.json" \
    --baseline-runtime baseline --runtime candidate \
    --summary "$out/gate-bench.md" --junit "$out/gate-bench.xml" "${gate_args[@]}" >/dev/null || {
    rc=$?
    [ "$rc" -gt "$verdict" ] && verdict=$rc
}
"$HARNESS" report "$out/conform-baseline.json" "$out/conform-candidate.json" "$out/bench.json" -o "$out/report" >/dev/null
cat "$out/gate-conform.md" "$out/gate-bench.md"
if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
    cat "$out/gate-conform.md" "$out/gate-bench.md" >> "$GITHUB_STEP_SUMMARY"
fi
echo "ci/gate.sh: results, JUnit and the report are in $out/" >&2
exit "$verdict"
