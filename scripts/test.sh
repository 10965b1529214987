#!/usr/bin/env bash
# The whole test suite (the README's test command runs this after installing dependencies).
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p test-artifacts
python3 -m pytest -q -m "not soak" --junitxml=test-artifacts/junit.xml "$@"
rc=$?
# pytest exits 5 when it collected no test: that is a failure of the suite, not a pass.
exit $rc
