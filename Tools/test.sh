#!/usr/bin/env bash
# The test command: every Swift test (each starts its own throwaway PostgreSQL), then the API fuzzer
# (schemathesis, every phase and check of docs/openapi.yaml) against the whole suite through the gateway.
#
#   Tools/test.sh                 # everything
#   SKIP_FUZZ=1 Tools/test.sh     # Swift tests only
#   FUZZ_SEED=N Tools/test.sh     # replay a fuzzer run whose seed a failure printed
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

swift build --build-tests
# Every test starts services of its own (pools, listeners, background workers) on the same small
# machine; run at most this many at once, so deadlines measure the code and not the queue for a core.
export SWT_EXPERIMENTAL_MAXIMUM_PARALLELIZATION_WIDTH=${SWT_EXPERIMENTAL_MAXIMUM_PARALLELIZATION_WIDTH:-8}
# Stripe's official Python library, which the billing tests check webhook signatures against
# (Tests/BillingAppTests/StripeWebhookTests.swift), in a virtual environment of its own under .build, made once
# (the tests make it themselves when it is missing; making it here keeps that out of their deadlines).
stripe_venv=.build/stripe-venv
if [[ ! -x $stripe_venv/bin/python ]] || ! cmp -s Tools/stripe/requirements.txt "$stripe_venv/requirements.txt"; then
    echo "test: installing Stripe's Python library into $stripe_venv (Tools/stripe/requirements.txt)"
    rm -rf "$stripe_venv"
    python3 -m venv "$stripe_venv"
    "$stripe_venv/bin/python" -m pip install --quiet --disable-pip-version-check -r Tools/stripe/requirements.txt
    cp Tools/stripe/requirements.txt "$stripe_venv/requirements.txt"
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
swift test --skip-build 2>&1 | tee "$log"
swift_tests=$(grep -o 'Test run with [0-9]* tests' "$log" | tail -n1 | grep -o '[0-9][0-9]*' || echo 0)

if [[ -n ${SKIP_FUZZ:-} ]]; then
    echo "test: SKIP_FUZZ set, fuzzer not run"
    echo "tests: $swift_tests passed, 0 failed"
    exit 0
fi
# The fuzzer lives in a virtual environment of its own under .build (git-ignored), made once.
venv=.build/fuzz-venv
if [[ ! -x $venv/bin/st ]] || ! cmp -s Tools/fuzz/requirements.txt "$venv/requirements.txt"; then
    echo "test: installing the fuzzer into $venv (Tools/fuzz/requirements.txt)"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r Tools/fuzz/requirements.txt
    cp Tools/fuzz/requirements.txt "$venv/requirements.txt"
fi
SUITE_BIN=.build/debug/suite ST=$PWD/$venv/bin/st Tools/fuzz/run.sh
# The Swift tests, plus the fuzzer run counted as one.
echo "tests: $((swift_tests + 1)) passed, 0 failed"
