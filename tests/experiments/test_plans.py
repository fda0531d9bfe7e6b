"""The study plans (experiments/cpu_study*_plan.sh), run with a stand-in for cpu_study.py that
records each call. The depth plan takes test numbers from the paired seeds 1-3 only, each evaluated
where it was trained or retrained, never from seed 0, which chose the start and eta on validation
(RESULTS 10.4); a failed lane or choice stops a plan before anything runs on a wrong premise."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections import defaultdict

import pytest
from helpers import REPO

# Sourced by the plan in place of the virtualenv: `python experiments/cpu_study.py ...` is recorded
# (one write per call: the two lanes append to one file), the choices are answered, `python -c` runs.
# A call naming $FAIL_ON fails; one naming $SLOW_ON sleeps a second first.
FAKE_ACTIVATE = r"""
python() {
  if [ "$1" = -c ]; then command python3 "$@"; return; fi
  shift
  if [[ -n "${SLOW_ON:-}" && " $* " == *" $SLOW_ON "* ]]; then sleep 1; fi
  if [[ -n "${FAIL_ON:-}" && " $* " == *" $FAIL_ON "* ]]; then echo "failed: $*" >&2; return 1; fi
  case "$1" in
    --chosen-protocol|--chosen-schedule) echo "" ;;
    --chosen-eta) echo 0.001 ;;
    *) printf '%s\n' "$(printf '%q ' "$@")" >> "$PLAN_LOG"; echo "${ONEDNN_MAX_CPU_ISA:-}" >> "$PLAN_LOG.caps" ;;
  esac
}
"""


def option(args: list[str], name: str) -> list[str]:
    """The values after `name` up to the next option ([] if it is absent)."""
    if name not in args:
        return []
    rest = args[args.index(name) + 1 :]
    return rest[: next((i for i, a in enumerate(rest) if a.startswith("--")), len(rest))]


def run_plan(
    root, plan: str = "cpu_study_depth_plan.sh", **env: str
) -> tuple[subprocess.CompletedProcess, list[list[str]]]:
    """Run `plan` in `root` with the stand-in; its exit and the calls recorded by then."""
    (root / "experiments").mkdir()
    for script in (plan, "plan_lib.sh"):
        shutil.copy(REPO / "experiments" / script, root / "experiments")
    (root / ".venv" / "bin").mkdir(parents=True)
    (root / ".venv" / "bin" / "activate").write_text(FAKE_ACTIVATE)
    log = root / "calls.log"
    log.touch()
    with open(root / "out.txt", "w") as out:  # not a pipe: the run returns when the plan exits
        done = subprocess.run(
            ["bash", f"experiments/{plan}"],
            cwd=root,
            env={**os.environ, "PLAN_LOG": str(log), **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=120,
        )
    return done, [shlex.split(line) for line in log.read_text().splitlines()]


@pytest.fixture(scope="module")
def calls(tmp_path_factory) -> list[list[str]]:
    root = tmp_path_factory.mktemp("plan")
    done, calls = run_plan(root)
    assert done.returncode == 0 and "PLAN DONE" in (root / "out.txt").read_text(), calls
    return calls


def test_the_depth_series_trains_on_the_bf16_kernels_both_cpu_kinds_share(tmp_path):
    """From phase 1 on, every run is one an AMD EPYC or an AMX Xeon can retrain (RESULTS 10.4, 11.3):
    a test seed whose session ended between its steps continues on either kind."""
    done, calls = run_plan(tmp_path, ONEDNN_MAX_CPU_ISA="")
    caps = (tmp_path / "calls.log.caps").read_text().split()
    assert done.returncode == 0 and len(caps) == len(calls) > 0
    assert set(caps) == {"AVX512_CORE_BF16"}


def test_a_failed_lane_stops_the_plan_once_the_other_lane_has_finished(tmp_path):
    done, calls = run_plan(tmp_path, FAIL_ON="model=resnet56", SLOW_ON="model=resnet110")
    assert done.returncode != 0
    assert "a lane failed" in (tmp_path / "out.txt").read_text()
    # lane 2 ran its two phase-0 runs (the recipe, the plain start) to the end, and nothing after them started
    assert [c[-1] for c in calls] == ["model=resnet110", "scheduler.warmup_epochs=0"]


def test_a_failed_schedule_choice_stops_the_full_data_plan_before_any_run_under_a_schedule_not_chosen(tmp_path):
    done, calls = run_plan(tmp_path, "cpu_study_full_plan.sh", FAIL_ON="--chosen-schedule")
    assert done.returncode != 0
    assert sorted(c[-1] for c in calls) == ["pgd", "scheduler=piecewise"]  # phase 1's two runs, and nothing after


def test_a_failed_eta_choice_stops_the_first_plan_before_any_run_without_an_eta(tmp_path):
    done, calls = run_plan(tmp_path, "cpu_study_plan.sh", FAIL_ON="--chosen-eta")
    assert done.returncode != 0
    assert calls and not [c for c in calls if "defense.eta=" in c]  # the sweep ran; no run with an empty eta


def arm_and_depth(args: list[str]) -> tuple[str, str]:
    model = next(a for a in args if a.startswith("model=resnet"))
    eta = next((a for a in args if a.startswith("defense.eta=")), "")
    return option(args, "--arm")[0] + eta.removeprefix("defense.eta="), model.removeprefix("model=")


def test_every_evaluation_is_of_a_test_seed_and_may_retrain(calls):
    evaluations = [c for c in calls if "--eval" in c]
    assert evaluations
    for c in evaluations:
        assert "--retrain" in c, c  # a checkpoint gone with its machine is trained again, not skipped
        assert option(c, "--seeds") and "0" not in option(c, "--seeds"), c  # no --seeds means seed 0


def test_each_arm_at_each_depth_is_tested_on_seeds_1_to_3_and_seed_1_attacked_and_profiled(calls):
    tested, attacked, profiled = defaultdict(set), defaultdict(set), defaultdict(set)
    for c in calls:
        if "--eval" not in c:
            continue
        key, seeds = arm_and_depth(c), set(option(c, "--seeds"))
        if "autoattack" in option(c, "--attacks"):
            attacked[key] |= seeds
        elif "layer_profile=true" in option(c, "--eval-args"):
            profiled[key] |= seeds
        else:
            assert option(c, "--eval") == ["best", "last"] and option(c, "--attacks") == [], c
            tested[key] |= seeds
    arms = {(arm, depth) for arm in ("pgd", "lad0.001") for depth in ("resnet20", "resnet56", "resnet110")}
    assert set(tested) == set(attacked) == set(profiled) == arms
    assert all(tested[k] == {"1", "2", "3"} and attacked[k] == profiled[k] == {"1"} for k in arms)


def test_seed_1_is_attacked_and_profiled_after_its_evaluation_and_before_seeds_2_and_3_train(calls):
    keys = {arm_and_depth(c) for c in calls if "--eval" in c}
    assert len(keys) == 6  # PGD-AT and LAD at three depths
    for key in keys:
        own = [c for c in calls if "--eval" in c and arm_and_depth(c) == key]
        steps = [(option(c, "--seeds"), option(c, "--attacks"), option(c, "--eval-args")) for c in own]
        assert steps == [
            (["1"], [], []),
            (["1"], ["autoattack"], []),
            (["1"], [""], ["layer_profile=true"]),
            (["2", "3"], [], []),
        ], key
