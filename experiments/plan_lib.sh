# Sourced by the study plans (experiments/cpu_study*_plan.sh, which run under set -euo pipefail).

study() { python experiments/cpu_study.py "$@"; }   # one step: skipped if its records are committed

# lanes <pid> <pid>: wait for both lanes, then stop the plan if either failed. A bare
# `wait $lane_1; wait $lane_2` under set -e left lane 2 running when lane 1 failed, so a plan
# restarted at once could train lane 2's run twice, into the same directory.
lanes() {
  local failed=0
  wait "$1" || failed=1
  wait "$2" || failed=1
  if ((failed)); then echo "a lane failed (its error is above); both lanes have stopped, so does the plan" >&2; return 1; fi
}
