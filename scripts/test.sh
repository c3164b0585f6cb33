#!/usr/bin/env bash
# Run the whole test suite (what CI runs). Extra arguments go to pytest.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$ROOT"

# Debian packages a fresh machine may lack: the viewer's tests drive headless Chromium
# (tests/replay/browser.py), and the engine's native step and torch.compile's CPU code need a C++
# compiler. Quick when they are there; `apt-get update` only when the install fails for want of
# package lists.
packages=()
[ -x /usr/bin/chromium ] || packages+=(chromium)
command -v "${CXX:-c++}" >/dev/null 2>&1 || packages+=(g++)
if [ "${#packages[@]}" -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
      sudo="sudo"
    else
      echo "heartgrid: the tests need ${packages[*]} and installing needs root or sudo:" \
           "apt-get install -y --no-install-recommends ${packages[*]}" >&2
      exit 1
    fi
  fi
  install=($sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${packages[@]}")
  echo "heartgrid: installing what the tests need: ${install[*]}" >&2
  if ! "${install[@]}" >&2; then
    echo "heartgrid: refreshing the package lists: $sudo apt-get update" >&2
    $sudo apt-get update >&2
    "${install[@]}" >&2
  fi
fi
set +e
python -m pytest -n 2 --durations=15 "$@"
code=$?
set -e
if [ "$code" -eq 5 ]; then
  echo "heartgrid: pytest collected no tests; that is a failure" >&2
  exit 1
fi
exit "$code"
