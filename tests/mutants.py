"""`make mutants`: prove the tests by mutation. Each mutant is one deliberate bug, applied to a
fresh copy of the project; the tests named for it run against the copy and must fail. Prints a
table: the bug, the first test that caught it, or SURVIVED (exit code 1 if any survived).

    python tests/mutants.py              # all mutants
    python tests/mutants.py restarts     # those whose name contains "restarts"
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutant:
    name: str
    file: str
    original: str
    mutated: str
    tests: tuple[str, ...]


MUTANTS = [
    Mutant(
        "the report pulls in torch for a name (every report waits seconds for an import it never uses)",
        "src/ladlit/tables.py",
        "from rich.table import Table\n",
        "import torch  # noqa: F401\nfrom rich.table import Table\n",
        ("tests/reporting/test_report.py::test_the_report_reads_records_without_importing_torch",),
    ),
    Mutant(
        "the report pairs every row with PGD-AT, FGSM-RS + LAD included",
        "src/ladlit/reporting/aggregate.py",
        'wanted = "pgd" if method == base else base',
        'wanted = "pgd" if True or method == base else base',
        ("tests/reporting/test_report.py",),
    ),
    Mutant(
        "the report's headings ignore an option that only some contexts record (two contexts, one heading)",
        "src/ladlit/reporting/aggregate.py",
        "return [k for k in keys if len({repr(m.get(k, _ABSENT)) for m in contexts}) > 1]",
        "return [k for k in keys if len({repr(m[k]) for m in contexts if k in m}) > 1]",
        ("tests/reporting/test_report.py",),
    ),
    Mutant(
        "the study evaluates a retrained run without checking it repeats the committed one",
        "experiments/cpu_study.py",
        'if "seconds" not in key and key not in redefined and a[key] != b.get(key):',
        "if False:",
        ("tests/experiments/test_cpu_study.py",),
    ),
    Mutant(
        "a refused start deletes the whole folder, the user's own files with it",
        "src/ladlit/resume.py",
        "out_dir.rmdir()  # only if empty",
        "shutil.rmtree(out_dir)",
        ("tests/test_resume.py",),
    ),
    Mutant(
        "has_evaluation ignores the checkpoint (the study would skip last.ckpt once best.ckpt is evaluated)",
        "src/ladlit/records.py",
        "parts[:2] == [checkpoint, kind]",
        "parts[1] == kind",
        ("tests/test_records.py",),
    ),
    Mutant(
        "a refused start removes the directory another process is training in",
        "src/ladlit/train.py",
        "    with suppress(RunDirectoryBusyError), training_lock(out_dir):\n        discard_empty_run_dir(out_dir)",
        "    discard_empty_run_dir(out_dir)",
        ("tests/test_locks.py",),
    ),
    Mutant(
        "metrics.md drops the sections of records written before entries named their class",
        "src/ladlit/evaluation/extra.py",
        "target = entry.get(EVALUATION) or next((t for f, t in _BEFORE_NAMED.items() if entry.get(f)), None)",
        "target = entry.get(EVALUATION)",
        ("tests/evaluation/test_extra_evaluations.py",),
    ),
    Mutant(
        "a constructor's refusal loses its place in the config (eps must be ..., not defense.base.eps)",
        "src/ladlit/config.py",
        'if source else f"{where}.{err}")',
        "if source else str(err))",
        ("tests/test_errors.py",),
    ),
    Mutant(
        "values above 1 pass the unit-interval check (eps=2 trains)",
        "src/ladlit/checks.py",
        "lambda v: 0.0 <= v <= 1.0",
        "lambda v: 0.0 <= v",
        ("tests/test_errors.py",),
    ),
    Mutant(
        "attack output not projected onto the eps-ball and [0, 1]",
        "src/ladlit/attacks/core.py",
        "return torch.minimum(torch.maximum(x_adv, x - eps), x + eps).clamp_(0.0, 1.0)",
        "return x_adv",
        ("tests/attacks/test_attacks.py",),
    ),
    Mutant(
        "resume ignores the checkpoint (fresh start)",
        "src/ladlit/train.py",
        "trainer.fit(module, datamodule=datamodule, ckpt_path=resume)",
        "trainer.fit(module, datamodule=datamodule, ckpt_path=None)",
        ("tests/test_train.py",),
    ),
    Mutant(
        "report: training's test numbers win over ladlit.eval's",
        "src/ladlit/reporting/aggregate.py",
        "run.measurements[measured] = float(acc)",
        "run.measurements.setdefault(measured, float(acc))",
        ("tests/reporting/test_report.py",),
    ),
    Mutant(
        "CW margin flipped (true minus best other)",
        "src/ladlit/attacks/core.py",
        "return (other - true).sum()",
        "return (true - other).sum()",
        ("tests/attacks/test_attacks.py",),
    ),
    Mutant(
        "inject_during_attack ignored (always injects)",
        "src/ladlit/defenses/layerwise.py",
        "attack_forward = injector.forward(model, capture=True, inject=self.inject_during_attack)",
        "attack_forward = injector.forward(model, capture=True, inject=True)",
        ("tests/defenses/test_layerwise.py",),
    ),
    Mutant(
        "rms scale read from the adjoint's state instead of the injection point's",
        "src/ladlit/defenses/layerwise.py",
        "state.a[source], state.z[point], self.normalize",
        "state.a[source], state.z[source], self.normalize",
        ("tests/defenses/test_layerwise.py",),
    ),
    Mutant(
        "Strang-Marchuk takes full steps instead of half steps",
        "src/ladlit/defenses/schemes.py",
        'super().__init__("strang_marchuk", 0.5)',
        'super().__init__("strang_marchuk", 1.0)',
        ("tests/defenses/test_layerwise.py",),
    ),
    Mutant(
        "Lie-Trotter injects the output's own adjoint between blocks",
        "src/ladlit/defenses/schemes.py",
        'return {"out": "out" if transition else "in"}',
        'return {"out": "out"}',
        ("tests/defenses/test_layerwise.py",),
    ),
    Mutant(
        "PGD restarts keep the last restart instead of the first that fools",
        "src/ladlit/attacks/pgd.py",
        "best = torch.where(robust[:, None, None, None], x_adv, best)",
        "best = x_adv",
        ("tests/attacks/test_attacks.py",),
    ),
    Mutant(
        "detach=false without a graph through the adjoints",
        "src/ladlit/defenses/layerwise.py",
        "create_graph=True",
        "create_graph=False",
        ("tests/defenses/test_layerwise.py",),
    ),
    Mutant(
        "bn_mode ignored in the inner maximisation",
        "src/ladlit/defenses/base.py",
        'model.train(self.bn_mode == "train")',
        "model.train(was_training)",
        ("tests/defenses/test_input_adversarial.py",),
    ),
    Mutant(
        "validation and test batches augmented",
        "src/ladlit/data/base.py",
        "if self.trainer is not None and self.trainer.training:",
        "if self.trainer is not None:",
        ("tests/data/test_data.py",),
    ),
    Mutant(
        "checkpoint monitor is the first attack, not the per-example worst case",
        "src/ladlit/module.py",
        'robust = accs.get(WORST, accs["clean"])',
        'robust = accs[next(iter(self.val_attacks), "clean")]',
        ("tests/evaluation/test_worst_case.py", "tests/test_train.py"),
    ),
    Mutant(
        "worst case over attacks is any attack's survival, not every attack's",
        "src/ladlit/attacks/outcome.py",
        "return torch.stack([clean, *masks]).all(0)",
        "return torch.stack([clean, *masks]).any(0)",
        ("tests/evaluation/test_worst_case.py",),
    ),
    Mutant(
        "worst case leaves the clean prediction out (an attack that repairs a misclassified example makes it robust)",
        "src/ladlit/attacks/outcome.py",
        "return torch.stack([clean, *masks]).all(0)",
        "return torch.stack(masks).all(0)",
        ("tests/evaluation/test_worst_case.py",),
    ),
    Mutant(
        "validation with one attack selects by that attack's accuracy, not the worst case with clean",
        "src/ladlit/module.py",
        'names = ["clean", *self.val_attacks, *([WORST] if self.val_attacks else [])]',
        'names = ["clean", *self.val_attacks, *([WORST] if len(self.val_attacks) >= 2 else [])]',
        ("tests/evaluation/test_worst_case.py",),
    ),
    Mutant(
        "without a validation split the test set validates (and selects) instead",
        "src/ladlit/data/base.py",
        "return self._loader(self.val_set, self.eval_batch_size, shuffle=False) if self.val_size else []",
        "return self._loader(self.val_set if self.val_size else self.test_set, self.eval_batch_size, shuffle=False)",
        ("tests/test_selection.py::test_without_a_validation_split_the_last_epoch_is_tested_and_the_record_says_so",),
    ),
    Mutant(
        "an optimising sweep starts without a validation split",
        "src/ladlit/sweeps.py",
        'if optimising and OmegaConf.select(cfg, "dataset.val_size", default=None) == 0:',
        "if False:",
        ("tests/test_selection.py::test_an_optimising_sweep_without_a_validation_split_is_refused_before_any_trial",),
    ),
    Mutant(
        "the checkpoint rule is asked after every epoch, validated or not (Lightning warns each time)",
        "src/ladlit/callbacks.py",
        "if self.monitor in metrics and not float(metrics.get(LEAKING, 0.0)) > 0:",
        "if not float(metrics.get(LEAKING, 0.0)) > 0:",
        (
            "tests/test_selection.py::test_validating_every_few_epochs_asks_the_checkpoint_rule_only_where_validation_ran",
        ),
    ),
    Mutant(
        "an epoch the label-leak guard flagged can become best.ckpt",
        "src/ladlit/callbacks.py",
        "if self.monitor in metrics and not float(metrics.get(LEAKING, 0.0)) > 0:",
        "if self.monitor in metrics:",
        ("tests/test_selection.py",),
    ),
    Mutant(
        "a run's recorded best epoch may be one the label-leak guard flagged",
        "src/ladlit/records.py",
        "return SELECTS_CHECKPOINT in record and not record.get(LEAKING, 0) > 0",
        "return SELECTS_CHECKPOINT in record",
        ("tests/test_selection.py::test_the_best_epoch_of_a_history_skips_flagged_epochs",),
    ),
    Mutant(
        "the leak probe draws its random starts from whatever the global generator holds",
        "src/ladlit/defenses/leak.py",
        "        torch.manual_seed(seed)\n",
        "",
        ("tests/test_selection.py::test_the_leak_probe_gives_the_same_figure_whatever_the_global_generator_holds",),
    ),
    Mutant(
        "a stopped sweep trial hands Optuna its truncated value (and can become its best)",
        "src/ladlit/train.py",
        'if _in_multirun() and (pruned := (read_json(Path(cfg.output_dir) / "metrics.json") or {}).get("pruned")):',
        "if False:",
        ("tests/test_sweeps.py::test_a_search_optimises_validation_prunes_summarises_and_resumes",),
    ),
    Mutant(
        "an evaluation entry does not say which weights it measured",
        "src/ladlit/eval.py",
        '        "checkpoint_identity": identity,  # which weights: a best.ckpt replaced since is another model\n',
        "",
        ("tests/evaluation/test_identity.py",),
    ),
    Mutant(
        "an evaluation entry keeps its attacks as repr strings, not their settings",
        "src/ladlit/eval.py",
        '"attacks": {k: v.settings() for k, v in attacks.items()},',
        '"attacks": {k: repr(v) for k, v in attacks.items()},',
        ("tests/evaluation/test_identity.py",),
    ),
    Mutant(
        "the report averages an attack with one run under other settings",
        "src/ladlit/reporting/aggregate.py",
        "if (signature := run.signatures.get(measured)) and signature != usual.get(attack):",
        "if False:",
        ("tests/evaluation/test_identity.py",),
    ),
    Mutant(
        "the report keeps entries that measured a checkpoint replaced since",
        "src/ladlit/reporting/aggregate.py",
        "if stale := _replaced_since(run_dir, train, entry):",
        "if False:",
        ("tests/evaluation/test_identity.py",),
    ),
    Mutant(
        "an evaluation reads a checkpoint while training may be replacing it",
        "src/ladlit/checkpoints.py",
        "    with checkpoint_lock(path.parent, reading=True):\n        data = path.read_bytes()",
        "    if True:\n        data = path.read_bytes()",
        ("tests/evaluation/test_identity.py",),
    ),
    Mutant(
        "training writes a checkpoint without the folder's lock",
        "src/ladlit/callbacks.py",
        "with checkpoint_lock(Path(filepath).parent) if writing else contextlib.nullcontext():",
        "with contextlib.nullcontext():",
        ("tests/evaluation/test_identity.py",),
    ),
    Mutant(
        "the retrain check compares the worst case across records that define it differently",
        "experiments/cpu_study.py",
        'WORST_CASE_KEYS if committed.get("worst_includes_clean") != retrained.get("worst_includes_clean") else ()',
        "()",
        ("tests/experiments/test_cpu_study.py",),
    ),
    Mutant(
        "a make target the README and docs name is renamed (`make mutants` stops working)",
        "Makefile",
        "mutants: $(STAMP)",
        "mutation: $(STAMP)",
        ("tests/test_docs.py::test_every_make_target_named_exists",),
    ),
    Mutant(
        "a key a documented command sets is gone from its config (the DDP line stops composing)",
        "conf/trainer/ddp.yaml",
        "sync_batchnorm: false\n",
        "",
        ("tests/test_docs.py::test_every_training_command_composes_and_builds",),
    ),
    Mutant(
        "evaluation PGD starts at random even with random_start=false",
        "src/ladlit/attacks/pgd.py",
        "start = uniform_start(x, self.eps) if self.random_start else x",
        "start = uniform_start(x, self.eps)",
        (
            "tests/attacks/test_attack_options.py::test_pgd_takes_steps_signed_steps_of_alpha_on_its_loss_from_its_start",
        ),
    ),
    Mutant(
        "evaluation PGD never starts at random",
        "src/ladlit/attacks/pgd.py",
        "start = uniform_start(x, self.eps) if self.random_start else x",
        "start = x",
        (
            "tests/attacks/test_attack_options.py::test_pgd_takes_steps_signed_steps_of_alpha_on_its_loss_from_its_start",
        ),
    ),
    Mutant(
        "evaluation PGD runs one step whatever steps says",
        "src/ladlit/attacks/pgd.py",
        "LOSSES[self.loss](y), self.eps, self.alpha, self.steps)",
        "LOSSES[self.loss](y), self.eps, self.alpha, 1)",
        (
            "tests/attacks/test_attack_options.py::test_pgd_takes_steps_signed_steps_of_alpha_on_its_loss_from_its_start",
        ),
    ),
    Mutant(
        "evaluation PGD ignores its alpha (always eps/4)",
        "src/ladlit/attacks/pgd.py",
        "LOSSES[self.loss](y), self.eps, self.alpha, self.steps)",
        "LOSSES[self.loss](y), self.eps, self.eps / 4, self.steps)",
        (
            "tests/attacks/test_attack_options.py::test_pgd_takes_steps_signed_steps_of_alpha_on_its_loss_from_its_start",
        ),
    ),
    Mutant(
        "the CW attack ascends the cross-entropy",
        "src/ladlit/attacks/pgd.py",
        "LOSSES[self.loss](y)",
        "cross_entropy_sum(y)",
        (
            "tests/attacks/test_attack_options.py::test_pgd_takes_steps_signed_steps_of_alpha_on_its_loss_from_its_start",
        ),
    ),
    Mutant(
        "PGD's restarts share one random start",
        "src/ladlit/attacks/pgd.py",
        "        for _ in range(self.restarts):\n            start = uniform_start(x, self.eps) if self.random_start else x\n",
        "        start = uniform_start(x, self.eps) if self.random_start else x\n        for _ in range(self.restarts):\n",
        ("tests/attacks/test_attack_options.py::test_each_restart_draws_its_own_random_start",),
    ),
    Mutant(
        "PGD runs one restart whatever restarts says",
        "src/ladlit/attacks/pgd.py",
        "for _ in range(self.restarts):",
        "for _ in range(1):",
        ("tests/attacks/test_attacks.py::test_restarts_keep_per_example_the_first_restart_that_fools",),
    ),
    Mutant(
        "attacks run the model in its training mode (BatchNorm statistics move)",
        "src/ladlit/attacks/base.py",
        "        model.eval()\n",
        "",
        ("tests/attacks/test_attacks.py::test_attacks_run_batchnorm_in_eval_mode",),
    ),
    Mutant(
        "an attack leaves the model in eval mode",
        "src/ladlit/attacks/base.py",
        "            model.train(was_training)",
        "            pass",
        ("tests/attacks/test_attacks.py::test_model_mode_and_parameter_gradients_untouched",),
    ),
    Mutant(
        "an attack called under no_grad finds no gradient",
        "src/ladlit/attacks/base.py",
        "with torch.enable_grad():",
        "with torch.set_grad_enabled(torch.is_grad_enabled()):",
        ("tests/attacks/test_attack_options.py::test_an_attack_called_under_no_grad_still_differentiates",),
    ),
    Mutant(
        "an attack under inference_mode fails without saying how to run it",
        "src/ladlit/attacks/base.py",
        "if torch.is_inference_mode_enabled():",
        "if False:",
        ("tests/attacks/test_attack_options.py::test_an_attack_under_inference_mode_says_how_to_run_it",),
    ),
    Mutant(
        "the uniform start leaves [0, 1]",
        "src/ladlit/attacks/core.py",
        "    return (x + noise).clamp_(0.0, 1.0)",
        "    return x + noise",
        ("tests/attacks/test_attack_options.py::test_the_random_starts_stay_in_the_unit_box",),
    ),
    Mutant(
        "the Gaussian start (TRADES, MART) leaves [0, 1]",
        "src/ladlit/attacks/core.py",
        "return (x + sigma * torch.randn(x.shape, dtype=x.dtype, device=x.device)).clamp_(0.0, 1.0)",
        "return x + sigma * torch.randn(x.shape, dtype=x.dtype, device=x.device)",
        ("tests/attacks/test_attack_options.py::test_the_random_starts_stay_in_the_unit_box",),
    ),
    Mutant(
        "the uniform start drawn in the input's memory format (channels-last lands on other pixels)",
        "src/ladlit/attacks/core.py",
        "noise = torch.empty(x.shape, dtype=x.dtype, device=x.device).uniform_(-eps, eps)",
        "noise = torch.empty_like(x).uniform_(-eps, eps)",
        (
            "tests/attacks/test_attack_options.py::test_the_uniform_start_lands_on_the_same_pixels_in_either_memory_format",
        ),
    ),
    Mutant(
        "the attacks' cross-entropy averaged over the batch (per-example gradients shrink with it)",
        "src/ladlit/attacks/core.py",
        'F.cross_entropy(logits, y, reduction="sum")',
        "F.cross_entropy(logits, y)",
        (
            "tests/attacks/test_attack_options.py::test_the_summed_cross_entropy_gives_each_example_a_gradient_free_of_the_batch_size",
        ),
    ),
    Mutant(
        "APGD-CE ascends the DLR loss",
        "src/ladlit/attacks/apgd.py",
        'loss="ce"',
        'loss="dlr"',
        ("tests/attacks/test_attack_options.py::test_apgd_ce_and_square_run_with_the_budget_they_were_given",),
    ),
    Mutant(
        "APGD-CE ignores its restarts",
        "src/ladlit/attacks/apgd.py",
        "n_restarts=self.restarts",
        "n_restarts=1",
        ("tests/attacks/test_attack_options.py::test_apgd_ce_and_square_run_with_the_budget_they_were_given",),
    ),
    Mutant(
        "Square ignores its query budget",
        "src/ladlit/attacks/square.py",
        "n_queries=self.n_queries",
        "n_queries=1000",
        ("tests/attacks/test_attack_options.py::test_apgd_ce_and_square_run_with_the_budget_they_were_given",),
    ),
    Mutant(
        "rand AutoAttack without expectation over transformations",
        "src/ladlit/attacks/autoattack.py",
        "EOT_ITERATIONS = 20",
        "EOT_ITERATIONS = 1",
        (
            "tests/attacks/test_attack_options.py::test_the_rand_version_is_apgd_ce_and_apgd_dlr_with_expectation_over_20_draws",
        ),
    ),
    Mutant(
        "rand AutoAttack's second attack on the cross-entropy",
        "src/ladlit/attacks/autoattack.py",
        '("apgd-dlr", "dlr")',
        '("apgd-dlr", "ce")',
        (
            "tests/attacks/test_attack_options.py::test_the_rand_version_is_apgd_ce_and_apgd_dlr_with_expectation_over_20_draws",
        ),
    ),
    Mutant(
        "AutoAttack's components ignore its seed",
        "src/ladlit/attacks/autoattack.py",
        '"seed": self.seed}',
        '"seed": 0}',
        (
            "tests/attacks/test_attack_options.py::test_the_rand_version_is_apgd_ce_and_apgd_dlr_with_expectation_over_20_draws",
        ),
    ),
    Mutant(
        "AutoAttack targets 9 classes of a 4-class model",
        "src/ladlit/attacks/autoattack.py",
        "targets = min(TARGET_CLASSES, n_classes - 1)",
        "targets = TARGET_CLASSES",
        (
            "tests/attacks/test_attack_options.py::test_the_rand_version_is_apgd_ce_and_apgd_dlr_with_expectation_over_20_draws",
        ),
    ),
    Mutant(
        "AutoAttack accepts an unknown version (and runs the standard one)",
        "src/ladlit/attacks/autoattack.py",
        'if version not in ("standard", "rand"):',
        "if False:",
        (
            "tests/attacks/test_attack_options.py::test_the_rand_version_is_apgd_ce_and_apgd_dlr_with_expectation_over_20_draws",
        ),
    ),
    Mutant(
        "AutoAttack attacks examples the model already gets wrong",
        "src/ladlit/attacks/autoattack.py",
        "robust, n_classes, x_adv = logits.argmax(1) == y,",
        "robust, n_classes, x_adv = torch.ones_like(y, dtype=torch.bool),",
        (
            "tests/attacks/test_attack_options.py::test_autoattack_attacks_only_what_is_still_robust_and_adds_up_its_time",
        ),
    ),
    Mutant(
        "AutoAttack's later components attack what the earlier ones broke",
        "src/ladlit/attacks/autoattack.py",
        "                robust[idx[fooled]] = False\n",
        "",
        (
            "tests/attacks/test_attack_options.py::test_autoattack_attacks_only_what_is_still_robust_and_adds_up_its_time",
        ),
    ),
    Mutant(
        "AutoAttack keeps only the last call's time per component",
        "src/ladlit/attacks/autoattack.py",
        "self.seconds[name] += time.perf_counter() - start",
        "self.seconds[name] = time.perf_counter() - start",
        (
            "tests/attacks/test_attack_options.py::test_autoattack_attacks_only_what_is_still_robust_and_adds_up_its_time",
        ),
    ),
    Mutant(
        "AutoAttack assumes 10 classes",
        "src/ladlit/attacks/autoattack.py",
        "self.n_classes or logits.shape[1]",
        "self.n_classes or 10",
        ("tests/attacks/test_attack_options.py::test_autoattack_reads_the_number_of_classes_off_the_model",),
    ),
    Mutant(
        "the fast attack copy is left in train mode",
        "src/ladlit/attacks/fast_forward.py",
        "    return AttackForward(net).eval()",
        "    return AttackForward(net)",
        (
            "tests/attacks/test_attack_options.py::test_the_fast_copy_of_a_training_model_is_the_eval_mode_function_with_frozen_weights",
        ),
    ),
    Mutant(
        "the fast copy of a model in train mode is not folded",
        "src/ladlit/attacks/fast_forward.py",
        "net = copy.deepcopy(model).eval()",
        "net = copy.deepcopy(model)",
        (
            "tests/attacks/test_attack_options.py::test_the_fast_copy_of_a_training_model_is_the_eval_mode_function_with_frozen_weights",
        ),
    ),
    Mutant(
        "the fast copy's weights are trainable",
        "src/ladlit/attacks/fast_forward.py",
        "parameter.requires_grad_(False)",
        "parameter.requires_grad_(True)",
        (
            "tests/attacks/test_attack_options.py::test_the_fast_copy_of_a_training_model_is_the_eval_mode_function_with_frozen_weights",
        ),
    ),
    Mutant(
        "the fast copy passes no gradient to its input",
        "src/ladlit/attacks/fast_forward.py",
        "return self.net(x.contiguous(memory_format=torch.channels_last))",
        "return self.net(x.contiguous(memory_format=torch.channels_last)).detach()",
        ("tests/attacks/test_autoattack_speed.py::test_the_fast_copy_computes_the_models_logits_and_input_gradients",),
    ),
    Mutant(
        "cw.yaml attacks the cross-entropy",
        "conf/attack/cw.yaml",
        "  loss: margin\n",
        "",
        ("tests/attacks/test_attack_options.py::test_the_attack_configs_are_what_their_names_say",),
    ),
    Mutant(
        "pgd20.yaml runs 10 steps",
        "conf/attack/pgd20.yaml",
        "  steps: 20\n",
        "  steps: 10\n",
        ("tests/attacks/test_attack_options.py::test_the_attack_configs_are_what_their_names_say",),
    ),
    Mutant(
        "training PGD starts at random even with random_start=false",
        "src/ladlit/defenses/pgd.py",
        "return uniform_start(x, self.eps) if self.random_start else x",
        "return uniform_start(x, self.eps)",
        ("tests/defenses/test_input_adversarial.py::test_pgd_training_takes_steps_signed_steps_from_its_start",),
    ),
    Mutant(
        "the inner maximisation runs one step whatever steps says",
        "src/ladlit/defenses/base.py",
        "self.eps, self.alpha, self.steps, tap)",
        "self.eps, self.alpha, 1, tap)",
        ("tests/defenses/test_input_adversarial.py::test_pgd_training_takes_steps_signed_steps_from_its_start",),
    ),
    Mutant(
        "the inner maximisation leaves the model in bn_mode",
        "src/ladlit/defenses/base.py",
        "            model.train(was_training)",
        "            pass",
        ("tests/defenses/test_input_adversarial.py::test_inner_max_restores_training_mode",),
    ),
    Mutant(
        "an unknown bn_mode attacks in eval mode",
        "src/ladlit/defenses/base.py",
        'if bn_mode not in ("train", "eval"):',
        "if False:",
        ("tests/defenses/test_input_adversarial.py::test_an_unknown_bn_mode_is_refused",),
    ),
    Mutant(
        "PGD-AT attacks on running statistics by default",
        "src/ladlit/defenses/pgd.py",
        'bn_mode: str = "train",',
        'bn_mode: str = "eval",',
        (
            "tests/defenses/test_input_adversarial.py::test_batchnorm_mode_during_the_attack_follows_each_reference_code",
        ),
    ),
    Mutant(
        "TRADES attacks on batch statistics by default",
        "src/ladlit/defenses/trades.py",
        'bn_mode: str = "eval",',
        'bn_mode: str = "train",',
        (
            "tests/defenses/test_input_adversarial.py::test_batchnorm_mode_during_the_attack_follows_each_reference_code",
        ),
    ),
    Mutant(
        "MART attacks on batch statistics by default",
        "src/ladlit/defenses/mart.py",
        'bn_mode: str = "eval",',
        'bn_mode: str = "train",',
        ("tests/defenses/test_mart.py",),
    ),
    Mutant(
        "MART's inner maximisation descends the cross-entropy",
        "src/ladlit/defenses/mart.py",
        "        return cross_entropy_sum(y)",
        "        return lambda logits: -cross_entropy_sum(y)(logits)",
        ("tests/defenses/test_mart.py",),
    ),
    Mutant(
        "MART's attack starts at x, not x + 0.001 N(0, I)",
        "src/ladlit/defenses/mart.py",
        "        return gaussian_start(x)",
        "        return x",
        ("tests/defenses/test_mart.py",),
    ),
    Mutant(
        "MART's clean branch runs the perturbed forward",
        "src/ladlit/defenses/mart.py",
        "mart_loss(model(x), adv_logits, y, self.beta)",
        "mart_loss(forward(x), adv_logits, y, self.beta)",
        ("tests/defenses/test_mart.py",),
    ),
    Mutant(
        "TRADES' attack starts at x, where its KL gradient is rounding noise",
        "src/ladlit/defenses/trades.py",
        "        return gaussian_start(x)",
        "        return x",
        ("tests/defenses/test_input_adversarial.py::test_trades_inner_max_ascends_the_kl_from_a_gaussian_start",),
    ),
    Mutant(
        "FGSM-RS starts at x (plain FGSM training)",
        "src/ladlit/defenses/fgsm_rs.py",
        "steps=1, random_start=True",
        "steps=1, random_start=False",
        (
            "tests/defenses/test_fgsm_rs.py::test_one_signed_step_of_one_and_a_quarter_eps_from_a_uniform_start_then_projection",
        ),
    ),
    Mutant(
        "AWP perturbs BatchNorm weights and biases too",
        "src/ladlit/defenses/awp.py",
        "p.requires_grad and p.dim() > 1",
        "p.requires_grad",
        ("tests/defenses/test_awp.py::test_awp_perturbs_weight_matrices_by_gamma_and_restores_them",),
    ),
    Mutant(
        "AWP's step not relative to each weight's norm",
        "src/ladlit/defenses/awp.py",
        "v = self.gamma * w.norm() * grad",
        "v = self.gamma * grad",
        ("tests/defenses/test_awp.py::test_awp_perturbs_weight_matrices_by_gamma_and_restores_them",),
    ),
    Mutant(
        "AWP ascends on the model itself (its BatchNorm statistics see a second forward)",
        "src/ladlit/defenses/awp.py",
        "proxy = self._proxy_of(model)",
        "proxy = model",
        ("tests/defenses/test_awp.py::test_awp_step_equals_the_papers_update",),
    ),
    Mutant(
        "AWP's ascent runs BatchNorm on running statistics",
        "src/ladlit/defenses/awp.py",
        "proxy.train()",
        "proxy.eval()",
        ("tests/defenses/test_awp.py::test_awp_step_equals_the_papers_update",),
    ),
    Mutant(
        "AWP never hears the epoch (its warm-up never ends)",
        "src/ladlit/defenses/base.py",
        "self.awp.epoch = epoch",
        "self.awp.epoch = 0",
        ("tests/defenses/test_awp.py::test_awp_composes_with_lad_and_waits_for_its_warmup",),
    ),
    Mutant(
        "the normalize option ignored (always rms)",
        "src/ladlit/defenses/layerwise.py",
        "state.a[source], state.z[point], self.normalize",
        'state.a[source], state.z[point], "rms"',
        ("tests/defenses/test_layerwise.py::test_transition_block_uses_its_output_adjoint_under_lie_trotter",),
    ),
    Mutant(
        "l2 normalisation over the whole batch, not per sample",
        "src/ladlit/defenses/layerwise.py",
        "return a / a.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *[1] * len(dims))",
        "return a / a.norm().clamp_min(1e-12)",
        ("tests/defenses/test_layerwise.py::test_l2_and_sign_normalisations_are_their_formulas",),
    ),
    Mutant(
        "sign normalisation not scaled by the state's rms",
        "src/ladlit/defenses/layerwise.py",
        "return a.sign() * rms_z",
        "return a.sign()",
        ("tests/defenses/test_layerwise.py::test_l2_and_sign_normalisations_are_their_formulas",),
    ),
    Mutant(
        "the blocks option ignored (every block perturbed)",
        "src/ladlit/defenses/layerwise.py",
        "selected = self.block_indices if self.block_indices is not None else list(range(len(states)))",
        "selected = list(range(len(states)))",
        ("tests/defenses/test_layerwise.py::test_eta_per_stage_and_block_selection",),
    ),
    Mutant(
        "per-stage eta read as per-block",
        "src/ladlit/defenses/layerwise.py",
        "values = [self.eta[stages[i]] for i in selected]",
        "values = [self.eta[i] for i in selected]",
        ("tests/defenses/test_layerwise.py::test_per_stage_and_per_block_eta_on_a_net_with_several_blocks_per_stage",),
    ),
    Mutant(
        "eta warm-up one epoch late (zero in the first epoch)",
        "src/ladlit/defenses/layerwise.py",
        "(self.epoch + 1) / self.eta_warmup_epochs",
        "self.epoch / self.eta_warmup_epochs",
        ("tests/defenses/test_layerwise.py::test_eta_warmup_is_linear",),
    ),
    Mutant(
        "inject_during_attack=true ignored (never injects)",
        "src/ladlit/defenses/layerwise.py",
        "attack_forward = injector.forward(model, capture=True, inject=self.inject_during_attack)",
        "attack_forward = injector.forward(model, capture=True, inject=False)",
        ("tests/defenses/test_layerwise.py::test_inject_during_attack_false_leaves_the_inner_loop_unperturbed",),
    ),
    Mutant(
        "detach=false ignored (the adjoints stay constants)",
        "src/ladlit/defenses/layerwise.py",
        "        if not self.detach:\n",
        "        if False:\n",
        ("tests/defenses/test_layerwise.py::test_detach_false_gradient_equals_the_hand_written_second_order_gradient",),
    ),
    Mutant(
        "LAD accepts a base without an inner maximisation",
        "src/ladlit/defenses/layerwise.py",
        "if base is not None and not isinstance(base, InputAdversarial):",
        "if False:",
        ("tests/defenses/test_layerwise.py::test_a_base_that_is_not_an_input_space_defense_is_refused",),
    ),
    Mutant(
        "the hooks' shape-finding pass runs in train mode (BatchNorm statistics move)",
        "src/ladlit/defenses/hooks.py",
        "model.eval().forward(x[:1])",
        "model.forward(x[:1])",
        ("tests/defenses/test_layerwise.py::test_eta_zero_reproduces_the_base_step_exactly",),
    ),
    Mutant(
        "the label-leak probe trains the network itself, not a copy",
        "src/ladlit/defenses/leak.py",
        "defense.training_loss(copy.deepcopy(net).train(), x, y)",
        "defense.training_loss(net.train(), x, y)",
        ("tests/test_label_leak_guard.py::test_the_probe_leaves_the_network_and_the_rng_as_they_were",),
    ),
    Mutant(
        "the label-leak probe moves the global RNG",
        "src/ladlit/defenses/leak.py",
        'with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []):',
        "if True:",
        ("tests/test_label_leak_guard.py::test_the_probe_leaves_the_network_and_the_rng_as_they_were",),
    ),
    Mutant(
        "lad_sm.yaml runs Lie-Trotter",
        "conf/defense/lad_sm.yaml",
        "scheme: strang_marchuk\n",
        "",
        ("tests/defenses/test_defense_configs.py",),
    ),
    Mutant(
        "pgd.yaml attacks from the clean input",
        "conf/defense/pgd.yaml",
        "random_start: true",
        "random_start: false",
        ("tests/defenses/test_defense_configs.py",),
    ),
    Mutant(
        "an old record's base is read by the name it was written with (FGSMRS and fgsm_rs: one arm split in two)",
        "src/ladlit/runs.py",
        'run["base"], run["scheme"] = DEFENSE_TARGETS.get(base, base), scheme',
        'run["base"], run["scheme"] = base, scheme',
        (  # the copy leaves experiments/results out: the tests over fake records
            "tests/test_run_names.py::test_an_old_record_reads_as_a_new_one",
            "tests/test_run_names.py::test_the_report_reads_a_record_without_config_by_its_canonical_name",
        ),
    ),
    Mutant(
        "bench_autoattack leaves torch's threads as they were (--threads ignored)",
        "experiments/benchlib.py",
        "        torch.set_num_threads(threads)\n",
        "",
        ("tests/experiments/test_bench_autoattack.py",),
    ),
    Mutant(
        "bench_autoattack times each implementation cold (no warm-up)",
        "experiments/bench_autoattack.py",
        "    if warmup:\n",
        "    if False:\n",
        ("tests/experiments/test_bench_autoattack.py",),
    ),
    Mutant(
        "the determinism check trains the whole run instead of the epochs it compares",
        "experiments/determinism_check.py",
        "            trainer.should_stop = True",
        "            pass",
        ("tests/experiments/test_determinism_check.py",),
    ),
    Mutant(
        "seed=abc reaches Lightning's seeding (a traceback, a run directory left behind)",
        "src/ladlit/train.py",
        '    check_seed("seed", cfg.seed)\n    for key in ("force_resume", "one_gpu_per_job"):',
        '    for key in ("force_resume", "one_gpu_per_job"):',
        (
            "tests/test_errors.py::test_a_top_level_key_is_refused_by_its_own_name",
            "tests/test_errors.py::test_bad_input_gives_one_message_exit_2_and_writes_nothing",
        ),
    ),
    Mutant(
        "a value set through an interpolation is refused under the key it lands in (eps=2 as defense.eps)",
        "src/ladlit/config.py",
        'source = interpolated_from(node, f"{where}.{cause.key}")',
        "source = None",
        ("tests/test_errors.py::test_a_top_level_key_is_refused_by_its_own_name",),
    ),
    Mutant(
        "a switch takes any word (force_resume=maybe resumes, speed.compile=maybe compiles)",
        "src/ladlit/checks.py",
        "    if not isinstance(value, bool):\n",
        "    if value is None:\n",
        (
            "tests/test_errors.py::test_a_top_level_key_is_refused_by_its_own_name",
            "tests/test_errors.py::test_an_eval_key_is_refused_by_its_own_name",
        ),
    ),
    Mutant(
        "a group of settings set to one value (ema=null) reaches a traceback",
        "src/ladlit/train.py",
        "if key in cfg and not isinstance(cfg[key], DictConfig):",
        "if False:",
        ("tests/test_errors.py::test_a_top_level_key_is_refused_by_its_own_name",),
    ),
    Mutant(
        "name and data_dir take null (a run under outputs/None)",
        "src/ladlit/checks.py",
        'if isinstance(value, bool) or not isinstance(value, (str, int, float)) or str(value) == "":',
        "if False:",
        (
            "tests/test_errors.py::test_a_top_level_key_is_refused_by_its_own_name",
            "tests/test_errors.py::test_an_eval_key_is_refused_by_its_own_name",
        ),
    ),
    Mutant(
        "output_dir set by hand parts the run from Hydra's log",
        "src/ladlit/config.py",
        'if top == "output_dir":',
        "if False:",
        (
            "tests/test_errors.py::test_bad_input_gives_one_message_exit_2_and_writes_nothing[top-level output_dir=elsewhere]",
        ),
    ),
    Mutant(
        "choices set by hand mislabel the run in reports",
        "src/ladlit/config.py",
        'if top == "choices":',
        "if False:",
        (
            "tests/test_errors.py::test_bad_input_gives_one_message_exit_2_and_writes_nothing[top-level choices.dataset=cifar10]",
        ),
    ),
    Mutant(
        "eval's seed=abc reaches Lightning's seeding (a traceback)",
        "src/ladlit/eval.py",
        '    check_seed("seed", cfg.seed)\n',
        "",
        ("tests/test_errors.py::test_an_eval_key_is_refused_by_its_own_name",),
    ),
    Mutant(
        "eval's batch_size=0 falls back to the dataset's batch size unsaid",
        "src/ladlit/eval.py",
        '    check_positive_int("batch_size", cfg.batch_size)\n',
        "",
        ("tests/test_errors.py::test_an_eval_key_is_refused_by_its_own_name",),
    ),
    Mutant(
        "eval's evaluations=5 reaches a traceback",
        "src/ladlit/eval.py",
        'if not isinstance(cfg.get("evaluations") or {}, DictConfig | dict):',
        "if False:",
        ("tests/test_errors.py::test_an_eval_key_is_refused_by_its_own_name",),
    ),
    Mutant(
        "eval's ckpt=null reaches a traceback instead of saying what to evaluate",
        "src/ladlit/checkpoints.py",
        'if OmegaConf.is_missing(cfg, "ckpt") or cfg.ckpt is None:',
        'if OmegaConf.is_missing(cfg, "ckpt"):',
        ("tests/test_errors.py::test_an_eval_key_is_refused_by_its_own_name",),
    ),
    Mutant(
        "a list key given a word is read letter by letter (eps_sweep=abc)",
        "src/ladlit/checks.py",
        "if isinstance(value, str) or not isinstance(value, Sequence):",
        "if not isinstance(value, Sequence):",
        ("tests/test_errors.py::test_an_eval_key_is_refused_by_its_own_name",),
    ),
    Mutant(
        "a sweep job's directory keeps `=` (ckpt=<it> is a Hydra grammar error)",
        "src/ladlit/config.py",
        'NOT_IN_JOB_DIR = re.compile(r"[^A-Za-z0-9_.+@-]+")',
        'NOT_IN_JOB_DIR = re.compile(r"[^A-Za-z0-9_.+@=-]+")',
        (
            "tests/test_configs.py::test_a_job_directory_has_no_character_the_override_grammar_parses",
            "tests/test_configs.py::test_a_sweep_names_its_jobs_readably_and_eval_takes_them_unquoted",
        ),
    ),
    Mutant(
        "a long job directory's hash follows a `~` (ckpt=<it> is a Hydra grammar error)",
        "src/ladlit/config.py",
        'return f"{name[: JOB_DIR_CHARS - 10]}+{digest}"',
        'return f"{name[: JOB_DIR_CHARS - 10]}~{digest}"',
        ("tests/test_configs.py::test_a_job_directory_has_no_character_the_override_grammar_parses",),
    ),
    Mutant(
        "the nested layer-wise refusal prints the base's object repr",
        "src/ladlit/defenses/layerwise.py",
        "got {type(base).__name__}{nested}",
        "got {base!r}{nested}",
        ("tests/defenses/test_layerwise.py::test_a_layerwise_base_is_refused_naming_the_config_choice_and_every_base",),
    ),
    Mutant(
        "the nested layer-wise refusal leaves a base option out",
        "src/ladlit/defenses/layerwise.py",
        'BASE_OPTIONS = ("pgd", "pgd_awp", "trades", "trades_awp", "mart", "fgsm_rs")',
        'BASE_OPTIONS = ("pgd", "pgd_awp", "trades", "trades_awp", "mart")',
        ("tests/defenses/test_layerwise.py::test_a_layerwise_base_is_refused_naming_the_config_choice_and_every_base",),
    ),
    Mutant(
        "the nested layer-wise refusal does not name defense.base",
        "src/ladlit/defenses/layerwise.py",
        '                key="base",\n',
        "",
        ("tests/defenses/test_layerwise.py::test_a_layerwise_base_is_refused_naming_the_config_choice_and_every_base",),
    ),
    Mutant(
        "an evaluation goes to a new W&B run instead of the training run's own",
        "src/ladlit/wandb_results.py",
        '        id=run_id,\n        resume="allow" if run_id else None,',
        "        id=None,\n        resume=None,",
        ("tests/test_wandb.py::test_an_evaluation_lands_in_the_training_runs_own_wandb_run",),
    ),
    Mutant(
        "the worst case never reaches W&B",
        "src/ladlit/wandb_results.py",
        'for attack, acc in (entry.get("accuracy") or {}).items()}',
        'for attack, acc in (entry.get("accuracy") or {}).items() if attack != "worst"}',
        ("tests/test_wandb.py::test_an_evaluation_lands_in_the_training_runs_own_wandb_run",),
    ),
    Mutant(
        "logger=csv on the evaluation still sends it to the run's W&B",
        "src/ladlit/wandb_results.py",
        "    if (logger is not None and node is None) or (node is None and run_id is None):",
        "    if node is None and run_id is None:",
        ("tests/test_wandb.py::test_an_evaluation_lands_in_the_training_runs_own_wandb_run",),
    ),
    Mutant(
        "the report's W&B table lands outside the sweep's group",
        "src/ladlit/wandb_results.py",
        "        group=group,",
        "        group=None,",
        ("tests/test_wandb.py::test_the_report_puts_one_table_of_the_sweeps_runs_into_its_group",),
    ),
    Mutant(
        "every seed trains on the same batch order",
        "src/ladlit/data/base.py",
        "self.order_seed = seed if order_seed is None else order_seed",
        "self.order_seed = 0 if order_seed is None else order_seed",
        ("tests/data/test_data.py",),
    ),
    Mutant(
        "the validation split moves with the run seed",
        "src/ladlit/data/base.py",
        "rng = np.random.default_rng(self.split_seed)",
        "rng = np.random.default_rng(self.order_seed)",
        ("tests/data/test_data.py",),
    ),
    Mutant(
        "training leaves its W&B run open (the next job of a multirun logs into it)",
        "src/ladlit/train.py",
        "    finish_loggers(loggers)\n    return metrics",
        "    return metrics",
        ("tests/test_wandb.py::test_each_run_trained_in_one_process_gets_a_w_and_b_run_of_its_own",),
    ),
    Mutant(
        "zero_init_residual leaves the residual branches as they were",
        "src/ladlit/models/cifar_resnet.py",
        "                nn.init.zeros_(block.bn2.weight)",
        "                pass",
        ("tests/models/test_models.py::test_zero_init_residual_starts_every_block_as_the_identity_map",),
    ),
    Mutant(
        "He initialisation scaled by fan-in instead of fan-out",
        "src/ladlit/models/cifar_resnet.py",
        'nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")',
        'nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")',
        ("tests/models/test_models.py::test_he_init_draws_convolutions_with_std_sqrt_2_over_fan_out",),
    ),
    Mutant(
        "the schedule after a warm-up runs over the whole run, not the epochs left",
        "src/ladlit/schedules.py",
        "    return max_epochs - warmup_epochs",
        "    return max_epochs",
        ("tests/test_formulas.py",),
    ),
    Mutant(
        "the warm-up starts at the full learning rate",
        "src/ladlit/schedules.py",
        "LinearLR(optimizer, start_factor=warmup_start, end_factor=1.0, total_iters=warmup_epochs)",
        "LinearLR(optimizer, start_factor=1.0, end_factor=1.0, total_iters=warmup_epochs)",
        ("tests/test_formulas.py",),
    ),
    Mutant(
        "example fingerprint ignores the pixels",
        "src/ladlit/evaluation/accuracy.py",
        "self._digest.update(x.detach().cpu().contiguous().numpy().tobytes())",
        "pass",
        ("tests/evaluation/test_worst_case.py",),
    ),
    Mutant(
        "report averages numbers measured on other examples",
        "src/ladlit/reporting/aggregate.py",
        "                if known != mine:",
        "                if False:",
        ("tests/evaluation/test_worst_case.py",),
    ),
    Mutant(
        "evaluation records merged without the lock",
        "src/ladlit/evaluation/results.py",
        "    with record_lock(path):",
        "    if True:",
        ("tests/test_locks.py",),
    ),
    Mutant(
        "AutoAttack's components at torchattacks' 10-iteration defaults",
        "src/ladlit/attacks/autoattack.py",
        "ITERATIONS = 100",
        "ITERATIONS = 10",
        ("tests/test_formulas.py", "tests/attacks/test_autoattack_reference.py"),
    ),
    Mutant(
        "FGSM-RS steps eps instead of 1.25 eps",
        "src/ladlit/defenses/fgsm_rs.py",
        "alpha=min(1.0, step_ratio * eps)",
        "alpha=eps",
        ("tests/defenses/test_fgsm_rs.py",),
    ),
    Mutant(
        "catastrophic over-fitting declared without FGSM accuracy rising",
        "src/ladlit/callbacks.py",
        "return pgd < self.ratio * self.best_pgd and fgsm > self.fgsm_at_best",
        "return pgd < self.ratio * self.best_pgd",
        ("tests/defenses/test_fgsm_rs.py",),
    ),
    Mutant(
        "testing uses the last weights, not best.ckpt",
        "src/ladlit/train.py",
        "ckpt_path=best_path or None, verbose=False",
        "ckpt_path=None, verbose=False",
        ("tests/test_train.py",),
    ),
    Mutant(
        "eta warm-up never reaches the defense",
        "src/ladlit/module.py",
        "self.defense.on_train_epoch_start(self.current_epoch)",
        "self.defense.on_train_epoch_start(0)",
        ("tests/test_train.py",),
    ),
    Mutant(
        "AWP never takes its weight perturbation back",
        "src/ladlit/defenses/awp.py",
        "w.sub_(v)",
        "w.sub_(0 * v)",
        ("tests/defenses/test_awp.py",),
    ),
    Mutant(
        "a rerun with another config resumes silently",
        "src/ladlit/resume.py",
        "        check_same_config(stored, run_config, path)",
        "        pass",
        ("tests/test_resume.py",),
    ),
    Mutant(
        "PGD ascent steps down the gradient",
        "src/ladlit/attacks/core.py",
        "x_adv = project(x_adv.detach() + alpha * grad.sign(), x, eps)",
        "x_adv = project(x_adv.detach() - alpha * grad.sign(), x, eps)",
        ("tests/test_formulas.py",),
    ),
    Mutant(
        "PGD ascent steps by half of alpha",
        "src/ladlit/attacks/core.py",
        "x_adv = project(x_adv.detach() + alpha * grad.sign(), x, eps)",
        "x_adv = project(x_adv.detach() + alpha / 2 * grad.sign(), x, eps)",
        ("tests/test_formulas.py",),
    ),
    Mutant(
        "random start one-sided (U(0, eps))",
        "src/ladlit/attacks/core.py",
        ".uniform_(-eps, eps)",
        ".uniform_(0, eps)",
        ("tests/test_formulas.py",),
    ),
    Mutant(
        "random start Gaussian instead of uniform",
        "src/ladlit/attacks/core.py",
        ".uniform_(-eps, eps)",
        ".normal_(0, eps / 2).clamp_(-eps, eps)",
        ("tests/test_formulas.py",),
    ),
    Mutant(
        "TRADES' start ten times wider",
        "src/ladlit/attacks/core.py",
        "def gaussian_start(x: Tensor, sigma: float = 0.001)",
        "def gaussian_start(x: Tensor, sigma: float = 0.01)",
        ("tests/test_formulas.py",),
    ),
    Mutant(
        "evaluation PGD's default step eps/2",
        "src/ladlit/attacks/pgd.py",
        'self.alpha = check_pixel_budget("alpha", eps / 4 if alpha is None else alpha)',
        'self.alpha = check_pixel_budget("alpha", eps / 2 if alpha is None else alpha)',
        ("tests/test_formulas.py",),
    ),
    Mutant(
        "training PGD's default step 2 eps / steps",
        "src/ladlit/defenses/base.py",
        "2.5 * eps / steps if alpha is None else alpha",
        "2 * eps / steps if alpha is None else alpha",
        ("tests/test_formulas.py",),
    ),
    Mutant(
        "FGSM with a random start",
        "src/ladlit/attacks/pgd.py",
        'super().__init__(eps=eps, alpha=eps, steps=1, restarts=1, random_start=False, loss="ce")',
        'super().__init__(eps=eps, alpha=eps, steps=1, restarts=1, random_start=True, loss="ce")',
        ("tests/test_formulas.py",),
    ),
    Mutant(
        "TRADES' inner objective is the KL in the other direction",
        "src/ladlit/defenses/trades.py",
        'return lambda logits: kl_to(clean_probs, logits, reduction="sum")',
        'return lambda logits: F.kl_div(clean_probs.log(), F.softmax(logits, 1), reduction="sum")',
        ("tests/test_formulas.py",),
    ),
    Mutant(
        "piecewise decay's milestones a third of an epoch late",
        "src/ladlit/schedules.py",
        "sorted({max(1, round(m * epochs)) for m in milestones})",
        "sorted({max(1, int(m * epochs) + 1) for m in milestones})",
        ("tests/test_formulas.py",),
    ),
    Mutant(
        "cosine annealed over one epoch more than the run",
        "src/ladlit/schedules.py",
        "T_max=max(1, epochs)",
        "T_max=epochs + 1",
        ("tests/test_formulas.py",),
    ),
    Mutant(
        "EMA warm-up (1 + t) / (2 + t)",
        "src/ladlit/callbacks.py",
        "(1 + num_averaged) / (10 + num_averaged)",
        "(1 + num_averaged) / (2 + num_averaged)",
        ("tests/test_formulas.py",),
    ),
    Mutant(
        "EMA weighs the current weights by the decay",
        "src/ladlit/callbacks.py",
        "return decay * averaged + (1 - decay) * current",
        "return (1 - decay) * averaged + decay * current",
        ("tests/test_formulas.py",),
    ),
    Mutant(
        "the defense keeps hooking the first model it saw, not the one it trains",
        "src/ladlit/defenses/layerwise.py",
        "if found is None or self.injector is not found:",
        "if self.injector is None:",
        ("tests/defenses/test_layerwise.py",),
    ),
    Mutant(
        "the layer-wise hooks act outside the defense's passes (validation sees perturbed states)",
        "src/ladlit/defenses/hooks.py",
        "        if not self.injector.active:\n            return None",
        "        if False:\n            return None",
        ("tests/defenses/test_layerwise.py",),
    ),
    Mutant(
        "a compiled model that skips the hooks trains silently as its base defense",
        "src/ladlit/defenses/hooks.py",
        "if self._leaves and all(grad is None for grad in grads):",
        "if False:",
        ("tests/test_compile.py",),
    ),
    Mutant(
        "label-leak guard compares with the true labels",
        "src/ladlit/defenses/leak.py",
        "followed = (training_predictions(defense, net, x, other) == other).float().mean().item()",
        "followed = (training_predictions(defense, net, x, other) == y).float().mean().item()",
        ("tests/test_label_leak_guard.py",),
    ),
    Mutant(
        "AWP ignores its warm-up",
        "src/ladlit/defenses/awp.py",
        "if self.epoch < self.warmup_epochs or self.gamma == 0:",
        "if self.gamma == 0:",
        ("tests/defenses/test_awp.py",),
    ),
    Mutant(
        "AutoAttack keeps breaks that fool only its fast copy of the model",
        "src/ladlit/attacks/autoattack.py",
        "return candidate, model(candidate).argmax(1) != y",
        "return candidate, attacked(candidate).argmax(1) != y",
        ("tests/attacks/test_autoattack_speed.py",),
    ),
    Mutant(
        "AutoAttack's workers' answers merged in the wrong order",
        "src/ladlit/attacks/autoattack.py",
        "candidate, fooled = (torch.cat(column) for column in zip(*answers))",
        "candidate, fooled = (torch.cat(column) for column in zip(*answers[::-1]))",
        ("tests/attacks/test_autoattack_speed.py",),
    ),
    Mutant(
        "LAD keeps the epoch end from its base defense",
        "src/ladlit/defenses/layerwise.py",
        "        self.base.on_train_epoch_end(end)\n",
        "",
        ("tests/defenses/test_layerwise.py",),
    ),
    Mutant(
        "the best epoch is the last of a tie (best.ckpt keeps the first)",
        "src/ladlit/records.py",
        "return max(candidates, key=lambda record: record[SELECTS_CHECKPOINT]) if candidates else None",
        "return max(reversed(candidates), key=lambda record: record[SELECTS_CHECKPOINT]) if candidates else None",
        ("tests/test_records.py",),
    ),
    Mutant(
        "bf16 on a CPU without bf16 hardware starts without a word (runs 9x slower than fp32)",
        "src/ladlit/train.py",
        'if precision.startswith("bf16") and on_cpu and not native_bf16():',
        "if False:",
        ("tests/test_speed.py::test_bf16_without_bf16_hardware_is_announced_before_training",),
    ),
    Mutant(
        "the CPU study starts its bf16 plan on a CPU that emulates bf16",
        "experiments/cpu_study.py",
        'if native_bf16() or any(o.startswith("trainer.precision=")',
        'if True or any(o.startswith("trainer.precision=")',
        ("tests/experiments/test_cpu_study.py",),
    ),
    Mutant(
        "the depth plan evaluates without --retrain (a seed trained on another machine is skipped, the plan ends 'done')",
        "experiments/cpu_study_depth_plan.sh",
        "EVAL=(--eval best last --retrain)",
        "EVAL=(--eval best last)",
        ("tests/experiments/test_plans.py",),
    ),
    Mutant(
        "the depth plan takes test numbers from seed 0, which chose the start and eta",
        "experiments/cpu_study_depth_plan.sh",
        'study $D "$@" --seeds 2 3 "${EVAL[@]}"',
        'study $D "$@" --seeds 0 2 "${EVAL[@]}"',
        ("tests/experiments/test_plans.py",),
    ),
    Mutant(
        "the study's evaluation of a run retrained elsewhere replaces the committed record (earlier evaluations erased)",
        "experiments/cpu_study.py",
        'keep_committed_evaluations(result_dir / "checkpoints" / "metrics.json", ckpt.parent / "metrics.json")',
        "pass",
        ("tests/experiments/test_cpu_study.py",),
    ),
    Mutant(
        "a failed start leaves the empty folder Hydra made for it (outputs/<name>/)",
        "src/ladlit/resume.py",
        "            parent.rmdir()\n",
        "            pass\n",
        ("tests/test_resume.py::test_a_failed_start_removes_the_folder_hydra_made_for_it_and_nothing_above",),
    ),
    Mutant(
        "a failed start removes the working directory when the run sat directly in it",
        "src/ladlit/resume.py",
        "        if Path.cwd() in parent.parents:\n",
        "        if True:\n",
        ("tests/test_resume.py",),
    ),
    Mutant(
        "a failed choice of schedule lets the full-data plan run on under cosine",
        "experiments/cpu_study_full_plan.sh",
        "SCHEDULE=$(study --chosen-schedule cpu_study_full)   # a failure stops here (set -e), not in `read`\n"
        'read -r -a S <<< "$SCHEDULE"',
        'read -r -a S <<< "$(study --chosen-schedule cpu_study_full)"',
        ("tests/experiments/test_plans.py",),
    ),
    Mutant(
        "a study plan stops on a failed lane while the other lane still trains (a restart trains its run twice)",
        "experiments/plan_lib.sh",
        '  wait "$1" || failed=1\n  wait "$2" || failed=1\n',
        '  wait "$1"\n  wait "$2"\n',
        ("tests/experiments/test_plans.py",),
    ),
    Mutant(
        "the study takes an accuracy already measured for a layer profile never measured (the plan's profile step skipped)",
        "experiments/cpu_study.py",
        "        if evaluated(result_dir, which, attacks, n_examples, extra_eval):",
        "        if evaluated(result_dir, which, attacks, n_examples):",
        ("tests/experiments/test_cpu_study.py",),
    ),
    Mutant(
        "the eta-strength measurement gives PGD-AT and LAD different random starts (the excess is partly noise)",
        "experiments/depth_eta_strength.py",
        "            torch.manual_seed(i)\n",
        "",
        ("tests/experiments/test_depth_eta_strength.py",),
    ),
    Mutant(
        "a learning-rate factor out of range is explained in pixel units",
        "src/ladlit/schedules.py",
        'check_unit_interval("gamma", gamma, "the LR factor at each milestone, e.g. 0.1")',
        'check_unit_interval("gamma", gamma, "pixel units: 8/255 = 0.0314")',
        ("tests/test_errors.py",),
    ),
    Mutant(
        "the depth figure pairs seed 0, which chose the start and eta, into LAD - PGD-AT",
        "experiments/depth_figures.py",
        " and run.seed != SELECTION_SEED:",
        ":",
        ("tests/experiments/test_depth_figures.py",),
    ),
    Mutant(
        "a run trained on AVX-512 BF16 is retrained on an AMX CPU without the oneDNN cap (another model, found after the whole run)",
        "experiments/cpu_study.py",
        '        env["ONEDNN_MAX_CPU_ISA"] = "AVX512_CORE_BF16"',
        "        pass",
        ("tests/experiments/test_cpu_study.py",),
    ),
    Mutant(
        "a run trained on AMX is retrained where nothing rounds as AMX, refused only by the history check hours later",
        "experiments/cpu_study.py",
        "    elif trained != here:",
        "    elif False:",
        ("tests/experiments/test_cpu_study.py",),
    ),
    Mutant(
        "a run trained on AMX is retrained under the shell's oneDNN cap (a plan's AVX512_CORE_BF16), so not on AMX",
        "experiments/cpu_study.py",
        "        env.pop(cap, None)",
        "        pass",
        ("tests/experiments/test_cpu_study.py",),
    ),
    Mutant(
        "a retrain runs on the shell's threads, not the committed run's (other sums, another model)",
        "experiments/cpu_study.py",
        '        env["OMP_NUM_THREADS"] = str(kernels["threads"])',
        "        pass",
        ("tests/experiments/test_cpu_study.py",),
    ),
    Mutant(
        "a oneDNN cap it does not know is read as hiding AMX (oneDNN ignores it: the record would misname AMX)",
        "src/ladlit/runs.py",
        "    if torch.cpu._is_amx_tile_supported() and torch.cpu._init_amx():",
        '    if torch.cpu._is_amx_tile_supported() and torch.cpu._init_amx() and (cap is None or "AMX" in cap):',
        ("tests/test_speed.py",),
    ),
    Mutant(
        "a oneDNN cap that hides bf16 hardware is reported as a CPU without it",
        "src/ladlit/runs.py",
        '    if bf16_kernels(follow_cap=False) != "emulated":',
        "    if False:",
        ("tests/test_speed.py", "tests/experiments/test_cpu_study.py"),
    ),
    Mutant(
        "the depth plan trains on whatever bf16 kernels the CPU has (an AMX run cannot be retrained on an EPYC)",
        "experiments/cpu_study_depth_plan.sh",
        "export ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16\n",
        "",
        ("tests/experiments/test_plans.py",),
    ),
    Mutant(
        "a figure script draws differently from the figure committed in docs/figures",
        "experiments/depth_figures.py",
        '"recipe": "tab:green"',
        '"recipe": "tab:blue"',
        ("tests/experiments/test_figures_reproduce.py",),
    ),
    Mutant(
        "the label-leak probe leaves its hooked copy to the garbage collector (a LAD run grows every validation)",
        "src/ladlit/defenses/leak.py",
        "        defense.forget(probe)",
        "        pass",
        ("tests/test_label_leak_guard.py",),
    ),
    Mutant(
        "forget leaves the copy hooked (its hooks and injector stay a reference cycle)",
        "src/ladlit/defenses/layerwise.py",
        "        injector.close()\n        delattr(model, INJECTOR_ATTRIBUTE)",
        "        delattr(model, INJECTOR_ATTRIBUTE)",
        ("tests/test_label_leak_guard.py",),
    ),
]

IGNORED = shutil.ignore_patterns(
    ".git", ".venv", "outputs", "multirun", "results", "*.egg-info", "__pycache__", ".pytest_cache"
)


def run_mutant(mutant: Mutant) -> tuple[str, float]:
    """The first failing test's id ("" if every test passed) and the seconds it took."""
    with tempfile.TemporaryDirectory(prefix="ladlit-mutant-") as tmp:
        copy = Path(tmp) / "project"
        shutil.copytree(REPO, copy, ignore=IGNORED)
        if (REPO.parent / "shared").exists():  # tests find the data beside the project
            (copy.parent / "shared").symlink_to(REPO.parent / "shared", target_is_directory=True)
        path = copy / mutant.file
        source = path.read_text()
        if source.count(mutant.original) != 1:
            raise SystemExit(f"mutant {mutant.name!r}: {mutant.original!r} must occur once in {mutant.file}")
        path.write_text(source.replace(mutant.original, mutant.mutated))
        env = {**os.environ, "PYTHONPATH": str(copy / "src")}  # the copy, not the installed project
        start = time.time()
        cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *mutant.tests]
        result = subprocess.run(cmd, cwd=copy, env=env, capture_output=True, text=True, timeout=1800)
        failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", result.stdout, flags=re.M)
        return (
            failed[0] if failed else ("(collection error)" if result.returncode not in (0, 1) else "")
        ), time.time() - start


def main(argv: list[str]) -> int:
    selected = [m for m in MUTANTS if not argv or any(a in m.name for a in argv)]
    print("| mutation | caught by | seconds |")
    print("|---|---|---:|")
    survived = 0
    for mutant in selected:
        caught, seconds = run_mutant(mutant)
        survived += not caught
        print(f"| {mutant.name} | {caught or '**SURVIVED**'} | {seconds:.0f} |", flush=True)
    print(f"\n{len(selected) - survived} of {len(selected)} mutants caught.")
    return 1 if survived else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
