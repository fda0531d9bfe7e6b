"""The CPU study chooses eta on seed 0's validation over the plan's grid, and nothing else moves it;
it evaluates a committed run on another machine only by retraining the same model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import experiment_script, pretend_cpu

from ladlit.records import evaluation_key, read_json

cpu_study = experiment_script("cpu_study")


def write_run(root, arm, seed, robust, clean=0.3, test_robust=0.0):
    """A finished run's metrics.json whose best validation epoch has these accuracies; its test
    accuracy is there to show it is never read."""
    history = [
        {"epoch": 0, "val/robust_acc": robust / 2, "val/acc_clean": clean},
        {"epoch": 1, "val/robust_acc": robust, "val/acc_clean": clean},
    ]
    path = root / "regime" / arm / f"seed{seed}" / "metrics.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"finished": True, "history": history, "test/robust_acc": test_robust}))


@pytest.fixture
def results(tmp_path, monkeypatch):
    monkeypatch.setattr(cpu_study, "RESULTS", tmp_path)
    write_run(tmp_path, "lad__eta-0.0003", 0, robust=0.22, test_robust=0.9)
    write_run(tmp_path, "lad__eta-0.001", 0, robust=0.23)
    return tmp_path


def test_the_best_validated_eta_of_the_grid_is_chosen(results):
    assert cpu_study.chosen_eta("regime", "lad", ["0.0003", "0.001"]) == "0.001"


def test_seeds_run_after_the_choice_do_not_move_it(results):
    write_run(results, "lad__eta-0.0003", 1, robust=0.30)
    assert cpu_study.chosen_eta("regime", "lad", ["0.0003", "0.001"]) == "0.001"


def test_an_eta_outside_the_grid_or_with_more_overrides_does_not_move_it(results):
    write_run(results, "lad__eta-0.003", 0, robust=0.30)
    write_run(results, "lad__eta-0.0003__eta_warmup_epochs-20", 0, robust=0.30)
    assert cpu_study.chosen_eta("regime", "lad", ["0.0003", "0.001"]) == "0.001"
    assert cpu_study.chosen_eta("regime", "lad", ["0.0003", "0.001", "0.003"]) == "0.003"


def test_a_tie_goes_to_higher_clean_accuracy(results):
    write_run(results, "lad__eta-0.003", 0, robust=0.23, clean=0.4)
    assert cpu_study.chosen_eta("regime", "lad", ["0.001", "0.003"]) == "0.003"


def test_no_run_of_the_grid_stops_with_a_message(results):
    with pytest.raises(SystemExit, match="no lad_sm runs at eta 0.001"):
        cpu_study.chosen_eta("regime", "lad_sm", ["0.001"])


def test_an_arm_directory_names_its_overrides_without_characters_hydra_or_git_would_parse():
    assert cpu_study.arm_name("lad_sm", ["defense.eta=0.001"]) == "lad_sm__eta-0.001"
    assert cpu_study.arm_name("lad", ["defense.eta=0.003", "defense.blocks=[0,1,2]"]) == "lad__eta-0.003__blocks-0-1-2"


def test_an_arm_with_extra_overrides_is_chosen_among_its_own_runs(results):
    write_run(results, "lad__eta-0.0003__scheduler-piecewise", 0, robust=0.30)
    write_run(results, "lad__eta-0.001__scheduler-piecewise", 0, robust=0.25)
    assert cpu_study.chosen_eta("regime", "lad", ["0.0003", "0.001"], ["scheduler=piecewise"]) == "0.0003"


def write_curve(root, arm, robust):
    history = [{"epoch": i, "val/robust_acc": r, "val/acc_clean": 0.5} for i, r in enumerate(robust)]
    path = root / "regime" / arm / "seed0" / "metrics.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"finished": True, "history": history}))


@pytest.mark.parametrize(
    ("piecewise", "chosen"),
    [
        ([0.20, 0.25, 0.30, 0.31, 0.36, 0.34], "scheduler=piecewise"),  # best after the decay (epoch 3), falls 2 points
        ([0.20, 0.25, 0.30, 0.31, 0.36, 0.355], ""),  # falls half a point: no over-fitting
        ([0.20, 0.40, 0.30, 0.31, 0.32, 0.30], ""),  # best before the decay
    ],
)
def test_piecewise_decay_is_chosen_only_if_pgd_at_over_fits_after_it(tmp_path, monkeypatch, piecewise, chosen):
    monkeypatch.setattr(cpu_study, "RESULTS", tmp_path)
    write_curve(tmp_path, "pgd", [0.1, 0.2, 0.3, 0.3, 0.3, 0.3])
    write_curve(tmp_path, "pgd__scheduler-piecewise", piecewise)
    assert cpu_study.chosen_schedule("regime") == chosen


class FakeCommands:
    """cpu_study's `run` and `commit` without processes: training writes a metrics.json with the
    given history and a best.ckpt; evaluating writes an evaluation record."""

    def __init__(self, history):
        self.history, self.calls, self.envs = history, [], []

    def run(self, cmd, log, env=None):
        tool = cmd[2]
        self.calls.append(tool)
        self.envs.append(env)
        if tool == "ladlit.train":
            run_dir = Path(next(a for a in cmd if a.startswith("hydra.run.dir=")).split("=", 1)[1])
            (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
            (run_dir / "checkpoints" / "best.ckpt").write_text("weights")
            (run_dir / "metrics.json").write_text(json.dumps({"finished": True, "history": self.history}))
        else:
            ckpt = Path(next(a for a in cmd if a.startswith("ckpt=")).split("=", 1)[1])
            entry = {"checkpoint": ckpt.name, "n_examples": 1000, "accuracy": {"clean": 0.5, "autoattack": 0.3}}
            record = read_json(ckpt.parent / "metrics.json") or {"run": {}, "evaluations": {}}  # ladlit.eval adds
            record["evaluations"][evaluation_key(ckpt.name, "autoattack", None, 1000)] = entry
            (ckpt.parent / "metrics.json").write_text(json.dumps(record))
            (ckpt.parent / "metrics.md").write_text("")


COMMITTED = [{"epoch": 0, "val/robust_acc": 0.2, "train_seconds": 100.0}]


@pytest.fixture
def committed_run(tmp_path, monkeypatch):
    """A committed regime-C run whose checkpoints are not on this machine."""
    monkeypatch.setattr(cpu_study, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(cpu_study, "OUTPUTS", tmp_path / "outputs")
    monkeypatch.setattr(cpu_study, "commit", lambda paths, message: None)
    monkeypatch.setattr(cpu_study, "native_bf16", lambda: True)  # the fake runs below train nothing
    result = tmp_path / "results" / "regime" / "pgd" / "seed0"
    result.mkdir(parents=True)
    (result / "metrics.json").write_text(json.dumps({"finished": True, "history": COMMITTED}))
    return result


def _evaluate(retrain: bool) -> None:
    cpu_study.study_seed("regime", "pgd", "pgd", [], 0, ["best"], "autoattack", 1000, [], retrain)


def test_an_evaluation_without_its_checkpoint_is_skipped_unless_retraining_is_asked(committed_run, monkeypatch):
    fake = FakeCommands(COMMITTED)
    monkeypatch.setattr(cpu_study, "run", fake.run)
    _evaluate(retrain=False)
    assert fake.calls == [] and not (committed_run / "checkpoints").exists()
    _evaluate(retrain=True)  # the same history, timings aside: the committed model, evaluated
    assert fake.calls == ["ladlit.train", "ladlit.eval"]
    assert cpu_study.evaluated(committed_run, "best", "autoattack", 1000)
    _evaluate(retrain=True)  # done: nothing runs again
    assert fake.calls == ["ladlit.train", "ladlit.eval"]


def test_evaluating_a_retrained_run_keeps_the_committed_evaluations(committed_run, monkeypatch):
    fake = FakeCommands(COMMITTED)
    monkeypatch.setattr(cpu_study, "run", fake.run)
    pgd = evaluation_key("best.ckpt", "pgd20+cw", None, 5000)
    (committed_run / "checkpoints").mkdir()
    (committed_run / "checkpoints" / "metrics.json").write_text(
        json.dumps({"run": {}, "evaluations": {pgd: {"checkpoint": "best.ckpt", "n_examples": 5000}}})
    )
    _evaluate(retrain=True)  # this machine's record of the retrained run starts empty
    assert fake.calls == ["ladlit.train", "ladlit.eval"]
    assert cpu_study.evaluated(committed_run, "best", "autoattack", 1000)
    assert cpu_study.evaluated(committed_run, "best", "pgd20,cw", 5000)


def test_an_accuracy_already_measured_does_not_stand_for_a_layer_profile_not_measured(committed_run, monkeypatch):
    clean = evaluation_key("best.ckpt", "clean", None, 1000)
    profile = evaluation_key("best.ckpt", "layer_profile", None, 1000)
    (committed_run / "checkpoints").mkdir()
    record = committed_run / "checkpoints" / "metrics.json"
    record.write_text(json.dumps({"evaluations": {clean: {}}}))
    assert cpu_study.evaluated(committed_run, "best", "", 1000)
    assert not cpu_study.evaluated(committed_run, "best", "", 1000, ["layer_profile=true"])
    record.write_text(json.dumps({"evaluations": {clean: {}, profile: {}}}))
    assert cpu_study.evaluated(committed_run, "best", "", 1000, ["layer_profile=true"])
    with pytest.raises(SystemExit, match="--eval-args takes layer_profile=true and label_leak=true only, got eps=0.1"):
        cpu_study.evaluated(committed_run, "best", "", 1000, ["layer_profile=true", "eps=0.1"])
    assert not cpu_study.evaluated(committed_run, "best", "", 5000, ["layer_profile=true"])
    record.write_text(json.dumps({"evaluations": {clean: {}}}))
    fake = FakeCommands(COMMITTED)
    monkeypatch.setattr(cpu_study, "run", fake.run)
    cpu_study.study_seed("regime", "pgd", "pgd", [], 0, ["best"], "", 1000, ["layer_profile=true"], True)
    assert fake.calls == ["ladlit.train", "ladlit.eval"]  # the plan's profile step runs


def test_a_retrained_run_that_differs_from_the_committed_one_is_not_evaluated(committed_run, monkeypatch):
    fake = FakeCommands([{"epoch": 0, "val/robust_acc": 0.21, "train_seconds": 100.0}])
    monkeypatch.setattr(cpu_study, "run", fake.run)
    with pytest.raises(SystemExit, match="epoch 0: val/robust_acc 0.2 committed, 0.21 retrained"):
        _evaluate(retrain=True)
    assert fake.calls == ["ladlit.train"] and not (committed_run / "checkpoints").exists()


def commit_kernels(committed_run, bf16: str, precision: str = "bf16-mixed", threads: int = 1) -> None:
    record = committed_run / "metrics.json"
    config = {"trainer": {"precision": precision}}
    kernels = {"bf16": bf16, "threads": threads}
    record.write_text(json.dumps({**read_json(record), "config": config, "kernels": kernels}))


def retrain(monkeypatch) -> FakeCommands:
    fake = FakeCommands(COMMITTED)
    monkeypatch.setattr(cpu_study, "run", fake.run)
    _evaluate(retrain=True)
    assert fake.calls == ["ladlit.train", "ladlit.eval"] and fake.envs[1] is None  # the evaluation: as it is
    return fake


@pytest.mark.parametrize(("amx", "cap"), [(True, None), (True, "AVX512_CORE_AMX"), (False, None), (False, "AVX2")])
def test_a_run_trained_on_avx512_bf16_is_retrained_so_on_either_cpu_kind(committed_run, monkeypatch, amx, cap):
    """An AMX CPU rounds bf16 as an AVX-512 BF16 one under the oneDNN cap (RESULTS 11.3); whatever cap
    this shell has, the retrain gets that one."""
    commit_kernels(committed_run, "AVX512_CORE_BF16")
    pretend_cpu(monkeypatch, amx=amx, avx512_bf16=True, cap=cap)
    assert retrain(monkeypatch).envs[0]["ONEDNN_MAX_CPU_ISA"] == "AVX512_CORE_BF16"


def test_a_run_trained_on_amx_is_retrained_uncapped_on_an_amx_cpu(committed_run, monkeypatch):
    commit_kernels(committed_run, "AMX")
    pretend_cpu(monkeypatch, amx=True, avx512_bf16=True, cap="AVX512_CORE_BF16")  # e.g. a plan's cap
    monkeypatch.setenv("DNNL_MAX_CPU_ISA", "AVX2")
    env = retrain(monkeypatch).envs[0]
    assert "ONEDNN_MAX_CPU_ISA" not in env and "DNNL_MAX_CPU_ISA" not in env


def test_a_retrain_runs_on_the_committed_runs_threads(committed_run, monkeypatch):
    commit_kernels(committed_run, "AVX512_CORE_BF16", threads=1)
    pretend_cpu(monkeypatch, avx512_bf16=True)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert retrain(monkeypatch).envs[0]["OMP_NUM_THREADS"] == "1"


def test_an_fp32_run_or_an_older_record_is_retrained_with_the_caps_as_they_are(committed_run, monkeypatch):
    pretend_cpu(monkeypatch, avx512_bf16=True, cap="AVX2")
    commit_kernels(committed_run, "AMX", precision="32-true")
    assert retrain(monkeypatch).envs[0]["ONEDNN_MAX_CPU_ISA"] == "AVX2"


def test_a_run_trained_on_amx_is_not_retrained_where_nothing_rounds_as_amx(committed_run, monkeypatch):
    """Refused before training: the history check would find the difference only after hours."""
    commit_kernels(committed_run, "AMX")
    pretend_cpu(monkeypatch, avx512_bf16=True)
    fake = FakeCommands(COMMITTED)
    monkeypatch.setattr(cpu_study, "run", fake.run)
    with pytest.raises(
        SystemExit, match="trained with AMX bf16 kernels and this CPU computes bf16 with AVX512_CORE_BF16"
    ):
        _evaluate(retrain=True)
    assert fake.calls == []


def test_the_history_check_compares_what_the_committed_run_logged_and_the_worst_case_only_if_defined_alike():
    """A run committed before the worst case needed the clean prediction (no `worst_includes_clean`)
    retrains with another val/robust_acc and a new val/acc_worst: the same model all the same."""
    committed = {"history": [{"epoch": 0, "val/robust_acc": 0.30, "val/acc_pgd10": 0.30, "train_seconds": 1.0}]}
    logged = {"epoch": 0, "val/robust_acc": 0.29, "val/acc_worst": 0.29, "val/acc_pgd10": 0.30, "train_seconds": 2.0}
    retrained = {"worst_includes_clean": True, "history": [logged]}
    assert cpu_study.history_difference(committed, retrained) == ""
    assert "val/robust_acc" in cpu_study.history_difference({**committed, "worst_includes_clean": True}, retrained)
    retrained["history"] = [{**logged, "val/acc_pgd10": 0.31}]
    assert "val/acc_pgd10 0.3 committed, 0.31 retrained" in cpu_study.history_difference(committed, retrained)
    retrained["history"] = [{k: v for k, v in logged.items() if k != "val/acc_pgd10"}]
    assert "val/acc_pgd10 0.3 committed, None retrained" in cpu_study.history_difference(committed, retrained)


@pytest.mark.parametrize(
    ("native", "cap", "why"),
    [(True, None, ""), (False, None, "this CPU has no bf16 hardware"), (True, "AVX2", "ONEDNN_MAX_CPU_ISA=AVX2 hides")],
)
def test_the_study_refuses_to_emulate_bf16_for_days(native, cap, why, monkeypatch):
    pretend_cpu(monkeypatch, avx512_bf16=native, cap=cap)
    cpu_study.refuse_emulated_bf16(["trainer.precision=32-true"])  # fp32 is never refused
    if not why:
        cpu_study.refuse_emulated_bf16(["defense.eta=0.001"])
    else:
        with pytest.raises(SystemExit, match=why):
            cpu_study.refuse_emulated_bf16(["defense.eta=0.001"])
