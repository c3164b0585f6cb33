#!/usr/bin/env bash
# The learning ablations of docs/learning.md, each one `heartgrid ab` on the default recipe's
# base game (no curriculum): 3 seeds per side, STEPS agent steps per run (1M; the headline
# reference_vs_default_3m runs 3M), JOBS runs at once. Metrics: hearts per agent per episode over
# the last third of each run (late:), reward averaged over the run (auc:).
#   bash benchmarks/learning_ablations.sh [NAME ...]      (default: all, in the order below)
# Reports go to runs/ablations/NAME (report.json, report.html, curves.png); the console table
# of each is also in runs/ablations/NAME.txt.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
STEPS=${STEPS:-1000000}
SEEDS=${SEEDS:-3}
JOBS=${JOBS:-2}
BASE='arena_basic_easy_shaped curriculum.tasks={\"kind\":\"single\"}'
declare -A A B
# name: reference side (A) and candidate side (B), as overrides of BASE
A[action_head]="policy.name=fast";                B[action_head]="policy.name=fast policy.kwargs.action_head=linear"
A[lstm_bias]="policy.name=fast";                  B[lstm_bias]="policy.name=fast policy.kwargs.lstm_bias=0"
A[reference_vs_default]="policy.name=fast";       B[reference_vs_default]="policy.name=conv_lstm"
A[memory]="";                                     B[memory]="policy.kwargs.memory=none"
A[lstm_layers]="";                                B[lstm_layers]="policy.lstm_layers=1"
A[learning_rate]="";                              B[learning_rate]="trainer.optimizer.learning_rate=0.001"
A[advantages]="";                                 B[advantages]="trainer.advantages=gae"
A[value_clip]="";                                 B[value_clip]="trainer.vf_clip_coef=10"
A[vf_coef]="";                                    B[vf_coef]="trainer.vf_coef=1.0"
A[update_epochs]="";                              B[update_epochs]="trainer.update_epochs=2"
A[transitions]="trainer.advantages=gae";          B[transitions]="trainer.advantages=gae trainer.minibatch_sampling=transitions"
A[reference_vs_default_3m]="policy.name=fast";    B[reference_vs_default_3m]="policy.name=conv_lstm"
ORDER=(action_head lstm_bias reference_vs_default memory lstm_layers learning_rate advantages value_clip
       vf_coef update_epochs transitions reference_vs_default_3m)
names=("$@")
[ ${#names[@]} -eq 0 ] && names=("${ORDER[@]}")
source scripts/setup.sh
mkdir -p runs/ablations
for name in "${names[@]}"; do
  [ -n "${B[$name]+x}" ] || { echo "unknown ablation $name; one of: ${ORDER[*]}" >&2; exit 2; }
  echo "== $name: A = ${A[$name]:-(default)}  B = ${B[$name]}"
  steps=$STEPS
  [ "$name" = reference_vs_default_3m ] && steps=$((3 * STEPS))
  heartgrid ab "$BASE ${A[$name]}" "$BASE ${B[$name]}" --seeds "$SEEDS" --steps "$steps" \
    --jobs "$JOBS" --out "runs/ablations/$name" \
    --metric late:env_agent/heart.get --metric auc:overview/reward 2>&1 | tee "runs/ablations/$name.txt"
done
