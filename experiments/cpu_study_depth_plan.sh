#!/usr/bin/env bash
# Issue 38: does the layer-wise defense help more as the ResNet deepens? Regime B
# (experiment=cpu_study_depth: 1,000 images, 80 epochs, PGD-3) at depth 20, 56 and 110
# (9, 27, 54 residual blocks). Idempotent like the other plans: experiments/cpu_study.py skips
# what is committed, so a rerun continues where it stopped. Two lanes of one thread each. Planning
# rates (RESULTS 8.4, 10): a ResNet-20 run about 15 minutes in a lane, ResNet-56 2.6x, ResNet-110
# about 5x; PGD-20 + CW-20 on 5,000 test images about 0.6 of a training run per checkpoint.
# Run it from a separate worktree, so that edits to the main checkout cannot reach a running job:
#   git worktree add -b depth ../depth && cd ../depth && make install
#   nohup bash experiments/cpu_study_depth_plan.sh >> outputs/cpu_study_depth_plan.log 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/.."
. .venv/bin/activate
export OMP_NUM_THREADS=1
study() { python experiments/cpu_study.py "$@"; }
D="--regime cpu_study_depth"
GRID="0.0003 0.001 0.003"   # LAD's eta grid (normalize=rms) at every depth, fixed before any run
PLAIN=(model.conv_init=pytorch model.zero_init_residual=false scheduler.warmup_epochs=0)
NO_WARMUP=(scheduler.warmup_epochs=0)
EVAL=(--eval best last)     # PGD-20 + CW-20 on 5,000 test images, best and last checkpoints
AA=(--eval best --attacks autoattack --n-examples 1000)
PROFILE=(--eval best --attacks "" --n-examples 1000 --eval-args layer_profile=true)

# 0. The start deep nets need, on PGD-AT's seed-0 validation alone: the field's recipe (He init,
# zero-initialised residual branches, 5-epoch LR warm-up; the regime's own settings) against the
# ResNet-20 study's plain start at depth 56 and 110; the recipe without warm-up at 56 as an ablation.
( study $D --arm pgd model=resnet56
  study $D --arm pgd model=resnet56 "${PLAIN[@]}"
  study $D --arm pgd model=resnet56 "${NO_WARMUP[@]}" ) & lane_1=$!
( study $D --arm pgd model=resnet110
  study $D --arm pgd model=resnet110 "${PLAIN[@]}" ) & lane_2=$!
wait $lane_1; wait $lane_2
read -r -a P <<< "$(study --chosen-protocol cpu_study_depth)"   # () for the recipe

# 1. LAD's eta at depth 20 and 56 on seed 0's validation (the grid), and at 56 the one alternative
# the ODE view suggests: the per-block step scaled as 1/blocks from depth 20's choice (RESULTS 10).
# Lane 1 runs the alternative as soon as depth 20's grid has chosen, so that no lane waits idle
# (unless it is a grid point: lane 2 runs those).
eta_at() { study --chosen-eta cpu_study_depth lad "${@:2}" -- "model=$1" "${P[@]}"; }
scaled() { python -c "print(f'{$1 * 9 / $2:.2g}')"; }   # scaled <eta at 9 blocks> <blocks>
off_grid() { [[ " $GRID " != *" $1 "* ]]; }
( for e in $GRID; do study $D --arm lad defense.eta=$e model=resnet20 "${P[@]}"; done
  study $D --arm pgd model=resnet20 "${P[@]}"
  alt=$(scaled "$(eta_at resnet20 $GRID)" 27)
  if off_grid "$alt"; then study $D --arm lad defense.eta=$alt model=resnet56 "${P[@]}"; fi ) & lane_1=$!
( for e in $GRID; do study $D --arm lad defense.eta=$e model=resnet56 "${P[@]}"; done ) & lane_2=$!
wait $lane_1; wait $lane_2
ETA20=$(eta_at resnet20 $GRID)
ALT56=$(scaled "$ETA20" 27)
ETA56=$(eta_at resnet56 $GRID $ALT56)

# 2. Depth 20 and 56: PGD-AT and LAD (chosen eta) over 3 paired seeds, best and last checkpoints.
( study $D --arm pgd model=resnet20 "${P[@]}" --seeds 0 1 2 "${EVAL[@]}"
  study $D --arm pgd model=resnet56 "${P[@]}" --seeds 0 1 2 "${EVAL[@]}" ) & lane_1=$!
( study $D --arm lad defense.eta=$ETA20 model=resnet20 "${P[@]}" --seeds 0 1 2 "${EVAL[@]}"
  study $D --arm lad defense.eta=$ETA56 model=resnet56 "${P[@]}" --seeds 0 1 2 "${EVAL[@]}" ) & lane_2=$!
wait $lane_1; wait $lane_2

# 3. Depth 20 and 56, seed 0's best checkpoint: AutoAttack on 1,000 and the layer profile.
( for m in resnet20 resnet56; do study $D --arm pgd model=$m "${P[@]}" "${AA[@]}" --retrain; done
  study $D --arm pgd model=resnet20 "${P[@]}" "${PROFILE[@]}" --retrain
  study $D --arm pgd model=resnet56 "${P[@]}" "${PROFILE[@]}" --retrain ) & lane_1=$!
( study $D --arm lad defense.eta=$ETA20 model=resnet20 "${P[@]}" "${AA[@]}" --retrain
  study $D --arm lad defense.eta=$ETA56 model=resnet56 "${P[@]}" "${AA[@]}" --retrain
  study $D --arm lad defense.eta=$ETA20 model=resnet20 "${P[@]}" "${PROFILE[@]}" --retrain
  study $D --arm lad defense.eta=$ETA56 model=resnet56 "${P[@]}" "${PROFILE[@]}" --retrain ) & lane_2=$!
wait $lane_1; wait $lane_2

# 4. Depth 110, the same: eta grid and the scaled alternative, 3 paired seeds, AutoAttack, profile.
ALT110=$(scaled "$ETA20" 54)
( study $D --arm lad defense.eta=0.0003 model=resnet110 "${P[@]}"
  study $D --arm lad defense.eta=$ALT110 model=resnet110 "${P[@]}" ) & lane_1=$!
( study $D --arm lad defense.eta=0.001 model=resnet110 "${P[@]}"
  study $D --arm lad defense.eta=0.003 model=resnet110 "${P[@]}" ) & lane_2=$!
wait $lane_1; wait $lane_2
ETA110=$(eta_at resnet110 $GRID $ALT110)
( study $D --arm pgd model=resnet110 "${P[@]}" --seeds 0 1 2 "${EVAL[@]}"
  study $D --arm pgd model=resnet110 "${P[@]}" "${AA[@]}" --retrain
  study $D --arm pgd model=resnet110 "${P[@]}" "${PROFILE[@]}" --retrain ) & lane_1=$!
( study $D --arm lad defense.eta=$ETA110 model=resnet110 "${P[@]}" --seeds 0 1 2 "${EVAL[@]}"
  study $D --arm lad defense.eta=$ETA110 model=resnet110 "${P[@]}" "${AA[@]}" --retrain
  study $D --arm lad defense.eta=$ETA110 model=resnet110 "${P[@]}" "${PROFILE[@]}" --retrain ) & lane_2=$!
wait $lane_1; wait $lane_2
echo "CPU STUDY (DEPTH) PLAN DONE"
