#!/usr/bin/env bash
# Issue 25's study: does the CPU study's answer hold on all 49,000 training images (regime C),
# under single-step training (FGSM-RS), and with depth (ResNet-56 on regime A's protocol)?
# Idempotent like cpu_study_plan.sh: experiments/cpu_study.py skips what is committed, so a rerun
# continues where it stopped. Two lanes of one thread each (RESULTS 5: two 1-thread runs take as
# long as one 2-thread run); a regime-C run trains 65-75 minutes in a lane with the cores free (up
# to 2 hours beside other work), PGD-20 + CW-20 on 5,000 test images about 10 minutes per
# checkpoint, AutoAttack on 1,000 about 70 (measured on seed 2, RESULTS 8.3).
# Run it from a separate worktree, so that edits to the main checkout cannot reach a running job:
#   git worktree add -b study ../study && cd ../study && make install
#   nohup bash experiments/cpu_study_full_plan.sh > outputs/cpu_study_full_plan.log 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/.."
. .venv/bin/activate
export OMP_NUM_THREADS=1
. experiments/plan_lib.sh
C="--regime cpu_study_full"
A="--regime cpu_study"
GRID_C="0.0003 0.001"  # regime C's eta grid (normalize=rms), fixed before its runs: the two etas regimes A and B chose
GRID_D="0.0003 0.001"  # ResNet-56's grid, likewise

# 1. The schedule, on PGD-AT's seed-0 validation curves: cosine vs piecewise decay (Rice et al. 2020).
study $C --arm pgd & lane_1=$!
study $C --arm pgd scheduler=piecewise & lane_2=$!
lanes $lane_1 $lane_2
SCHEDULE=$(study --chosen-schedule cpu_study_full)   # a failure stops here (set -e), not in `read`
read -r -a S <<< "$SCHEDULE"                        # () for cosine, (scheduler=piecewise)
eta_c() { study --chosen-eta cpu_study_full "$1" $GRID_C -- "${S[@]}"; }

# 2. LAD's eta on seed 0's validation, one grid point per lane.
study $C --arm lad defense.eta=0.0003 "${S[@]}" & lane_1=$!
study $C --arm lad defense.eta=0.001 "${S[@]}" & lane_2=$!
lanes $lane_1 $lane_2

# 3. The main question: PGD-AT vs LAD over 3 paired seeds, PGD-20 + CW-20 on 5,000 at the best and
# last checkpoints, AutoAttack on 1,000 at the best. Checkpoints are not committed, so AutoAttack
# runs here only where this machine still holds them; phase 7 trains the rest again. Seeds 0-2 are
# trained and PGD/CW-tested (RESULTS 8.3), so the new questions (phases 4-6) come before retraining.
lad=(lad "defense.eta=$(eta_c lad)" "${S[@]}")
study $C --arm pgd "${S[@]}" --seeds 0 1 2 --eval best last & lane_1=$!
study $C --arm "${lad[@]}" --seeds 0 1 2 --eval best last & lane_2=$!
lanes $lane_1 $lane_2
study $C --arm pgd "${S[@]}" --seeds 0 1 2 --eval best --attacks autoattack --n-examples 1000 & lane_1=$!
study $C --arm "${lad[@]}" --seeds 0 1 2 --eval best --attacks autoattack --n-examples 1000 & lane_2=$!
lanes $lane_1 $lane_2

# 4. Single step: FGSM-RS and FGSM-RS + LAD (eta on seed 0's validation over the same grid), about
# 45 minutes a run; lanes balanced so that each pair of runs ends together.
( study $C --arm fgsm_rs "${S[@]}" --seeds 0 --eval best
  study $C --arm lad_fgsm_rs defense.eta=0.001 "${S[@]}" ) & lane_1=$!
( study $C --arm lad_fgsm_rs defense.eta=0.0003 "${S[@]}"
  study $C --arm fgsm_rs "${S[@]}" --seeds 1 --eval best ) & lane_2=$!
lanes $lane_1 $lane_2
lad_fgsm=(lad_fgsm_rs "defense.eta=$(eta_c lad_fgsm_rs)" "${S[@]}")
study $C --arm "${lad_fgsm[@]}" --seeds 0 1 --eval best --retrain & lane_1=$!
study $C --arm fgsm_rs "${S[@]}" --seeds 2 --eval best & lane_2=$!
lanes $lane_1 $lane_2
# The odd run out gets both cores (about twice a lane's speed) rather than a lane beside an idle one.
OMP_NUM_THREADS=2 study $C --arm "${lad_fgsm[@]}" --seeds 2 --eval best --retrain

# 5. AWP on regime C (best and last checkpoints, like PGD-AT and LAD).
study $C --arm pgd_awp "${S[@]}" --seeds 0 2 --eval best last & lane_1=$!
study $C --arm pgd_awp "${S[@]}" --seeds 1 --eval best last & lane_2=$!
lanes $lane_1 $lane_2

# 6. Depth: ResNet-56 (27 blocks) on regime A's protocol, PGD-AT vs LAD, layer profiles.
study $A --arm pgd model=resnet56 --seeds 0 1 2 --eval best & lane_1=$!
( for e in $GRID_D; do study $A --arm lad defense.eta=$e model=resnet56; done ) & lane_2=$!
lanes $lane_1 $lane_2
deep=(lad "defense.eta=$(study --chosen-eta cpu_study lad $GRID_D -- model=resnet56)" model=resnet56)
study $A --arm "${deep[@]}" --seeds 0 1 2 --eval best --retrain & lane_1=$!
study $A --arm pgd model=resnet56 --seeds 0 1 2 --eval best --attacks "" --n-examples 1000 --eval-args layer_profile=true --retrain & lane_2=$!
lanes $lane_1 $lane_2
study $A --arm "${deep[@]}" --seeds 0 1 2 --eval best --attacks "" --n-examples 1000 --eval-args layer_profile=true --retrain

# 7. What phase 3 skipped for want of checkpoints, trained again: per seed and lane, the retrain
# (65-75 minutes), the missing PGD/CW checkpoint and AutoAttack on 1,000 (about 2.7 hours with the
# cores free), so that one seed finishes on the machine that trained it again. --retrain stops
# unless the retrained history equals the committed one.
for seed in 0 1 2; do
  ( study $C --arm pgd "${S[@]}" --seeds $seed --eval best last --retrain
    study $C --arm pgd "${S[@]}" --seeds $seed --eval best --attacks autoattack --n-examples 1000 --retrain ) & lane_1=$!
  ( study $C --arm "${lad[@]}" --seeds $seed --eval best last --retrain
    study $C --arm "${lad[@]}" --seeds $seed --eval best --attacks autoattack --n-examples 1000 --retrain ) & lane_2=$!
  lanes $lane_1 $lane_2
done
echo "CPU STUDY (FULL DATA, SINGLE STEP, DEPTH) PLAN DONE"
