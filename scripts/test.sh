#!/usr/bin/env bash
# Run the whole test suite (what CI runs). Extra arguments go to pytest.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$ROOT"
set +e
python -m pytest -n 2 --durations=15 "$@"
code=$?
set -e
if [ "$code" -eq 5 ]; then
  echo "heartgrid: pytest collected no tests; that is a failure" >&2
  exit 1
fi
exit "$code"
