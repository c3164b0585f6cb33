#!/usr/bin/env bash
# Train the default recipe (arena_basic_easy_shaped), logging to runs/<run>/.
# Extra arguments are config overrides, e.g.:  bash scripts/train.sh trainer.total_timesteps=2000000
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$ROOT"
exec heartgrid train arena_basic_easy_shaped "$@"
