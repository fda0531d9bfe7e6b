#!/usr/bin/env bash
# Issue 38: does the layer-wise defense help more as the ResNet deepens? Regime B
# (experiment=cpu_study_depth: 1,000 images, 80 epochs, PGD-3) at depth 20, 56 and 110
# (9, 27, 54 residual blocks). Idempotent like the other plans: experiments/cpu_study.py skips
# what is committed, so a rerun continues where it stopped. Two lanes of one thread each. Rates
# (RESULTS 10.4, phase 0's lanes on AMX beside other work): a ResNet-20 run 18 minutes, ResNet-56
# 66, ResNet-110 122; PGD-20 + CW-20 on 5,000 test images about 0.55 of a run per checkpoint.
# A checkpoint does not outlive its machine: at depth 110 leave the lanes the cores.
# Run it from a separate worktree, so that edits to the main checkout cannot reach a running job:
#   git worktree add -b depth ../depth && cd ../depth && make install
#   nohup bash experiments/cpu_study_depth_plan.sh >> outputs/cpu_study_depth_plan.log 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/.."
. .venv/bin/activate
export OMP_NUM_THREADS=1
# The bf16 kernels both CPU kinds have (RESULTS 11.3): an AMD EPYC's own, and an AMX Xeon's under
# this cap (about half AMX's speed there). A checkpoint does not outlive its machine, so a test seed
# whose session ends between its steps is retrained, and only a run on these kernels can be
# retrained on either kind. Phase 0 and LAD eta 0.0003 at depth 20 ran on AMX before the cap.
export ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16
. experiments/plan_lib.sh
D="--regime cpu_study_depth"
GRID="0.0003 0.001 0.003"   # LAD's eta grid (normalize=rms) at every depth, fixed before any run
PLAIN=(model.conv_init=pytorch model.zero_init_residual=false scheduler.warmup_epochs=0)
NO_WARMUP=(scheduler.warmup_epochs=0)
EVAL=(--eval best last --retrain)   # PGD-20 + CW-20 on 5,000 test images, best and last checkpoints
AA=(--eval best --attacks autoattack --n-examples 1000 --retrain)
PROFILE=(--eval best --attacks "" --n-examples 1000 --eval-args layer_profile=true --retrain)

# 0. The start deep nets need, on PGD-AT's seed-0 validation alone: the field's recipe (He init,
# zero-initialised residual branches, 5-epoch LR warm-up; the regime's own settings) against the
# ResNet-20 study's plain start at depth 56 and 110; the recipe without warm-up at 56 as an ablation.
( study $D --arm pgd model=resnet56
  study $D --arm pgd model=resnet56 "${PLAIN[@]}"
  study $D --arm pgd model=resnet56 "${NO_WARMUP[@]}" ) & lane_1=$!
( study $D --arm pgd model=resnet110
  study $D --arm pgd model=resnet110 "${PLAIN[@]}" ) & lane_2=$!
lanes $lane_1 $lane_2
PROTOCOL=$(study --chosen-protocol cpu_study_depth)   # a failure stops here (set -e), not in `read`
read -r -a P <<< "$PROTOCOL"                          # () for the recipe

# 1. LAD's eta at depth 20 and 56 on seed 0's validation (the grid), and at 56 the one alternative
# the ODE view suggests: the per-block step scaled as 1/blocks from depth 20's choice (RESULTS 10).
# Lane 1 runs the alternative as soon as depth 20's grid has chosen, so that no lane waits idle
# (unless it is a grid point: lane 2 runs those).
eta_at() { study --chosen-eta cpu_study_depth lad "${@:2}" -- "model=$1" "${P[@]}"; }
scaled() { python -c "print(f'{$1 * 9 / $2:.2g}')"; }   # scaled <eta at 9 blocks> <blocks>
off_grid() { [[ " $GRID " != *" $1 "* ]]; }
( for e in $GRID; do study $D --arm lad defense.eta=$e model=resnet20 "${P[@]}"; done
  study $D --arm pgd model=resnet20 "${P[@]}"
  eta20=$(eta_at resnet20 $GRID)   # on its own line: set -e ignores a failed $(...) nested in another
  alt=$(scaled "$eta20" 27)
  if off_grid "$alt"; then study $D --arm lad defense.eta=$alt model=resnet56 "${P[@]}"; fi ) & lane_1=$!
( for e in $GRID; do study $D --arm lad defense.eta=$e model=resnet56 "${P[@]}"; done ) & lane_2=$!
lanes $lane_1 $lane_2
ETA20=$(eta_at resnet20 $GRID)
ALT56=$(scaled "$ETA20" 27)
ETA56=$(eta_at resnet56 $GRID $ALT56)

# 2. Depth 20 and 56: PGD-AT and LAD (chosen eta) over the paired test seeds 1-3. Not seed 0: it
# chose the start and eta on validation, so its test numbers would carry that choice's luck, and
# its checkpoints left with the machine that trained it (a retrain repeats a record only on the
# kernels that trained it, RESULTS 11.3). Each test seed is evaluated right after its training,
# on the machine that holds its checkpoints; seed 1 also gets AutoAttack and the layer profile then.
# A session that ends in between continues with --retrain on either CPU kind (the cap above).
tested() {   # tested <arm and overrides>
  study $D "$@" --seeds 1 "${EVAL[@]}"
  study $D "$@" --seeds 1 "${AA[@]}"
  study $D "$@" --seeds 1 "${PROFILE[@]}"
  study $D "$@" --seeds 2 3 "${EVAL[@]}"
}
( tested --arm pgd model=resnet20 "${P[@]}"
  tested --arm pgd model=resnet56 "${P[@]}" ) & lane_1=$!
( tested --arm lad defense.eta=$ETA20 model=resnet20 "${P[@]}"
  tested --arm lad defense.eta=$ETA56 model=resnet56 "${P[@]}" ) & lane_2=$!
lanes $lane_1 $lane_2

# 3. Depth 110, the same: eta grid and the scaled alternative on seed 0's validation, then the
# paired test seeds.
ALT110=$(scaled "$ETA20" 54)
( study $D --arm lad defense.eta=0.0003 model=resnet110 "${P[@]}"
  study $D --arm lad defense.eta=$ALT110 model=resnet110 "${P[@]}" ) & lane_1=$!
( study $D --arm lad defense.eta=0.001 model=resnet110 "${P[@]}"
  study $D --arm lad defense.eta=0.003 model=resnet110 "${P[@]}" ) & lane_2=$!
lanes $lane_1 $lane_2
ETA110=$(eta_at resnet110 $GRID $ALT110)
tested --arm pgd model=resnet110 "${P[@]}" & lane_1=$!
tested --arm lad defense.eta=$ETA110 model=resnet110 "${P[@]}" & lane_2=$!
lanes $lane_1 $lane_2
echo "CPU STUDY (DEPTH) PLAN DONE"
