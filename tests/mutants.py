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
        "the report trusts a record's method over its config (FGSM-RS's early runs stay apart)",
        "src/ladlit/reporting/aggregate.py",
        'describe_run(config)["method"] if defense else _method(described)',
        "_method(described)",
        ("tests/reporting/test_report.py",),
    ),
    Mutant(
        "the report pairs every row with PGD-AT, FGSM-RS + LAD included",
        "src/ladlit/reporting/aggregate.py",
        'wanted = "pgd" if method == base else base',
        'wanted = "pgd" if True or method == base else base',
        ("tests/reporting/test_report.py",),
    ),
    Mutant(
        "the study evaluates a retrained run without checking it repeats the committed one",
        "experiments/cpu_study.py",
        'if "seconds" not in key and a.get(key) != b.get(key):',
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
        'return ConfigError(f"{where}.{err}")',
        "return ConfigError(str(err))",
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
        'robust = accs.get(WORST, accs[next(iter(self.val_attacks), "clean")])',
        'robust = accs[next(iter(self.val_attacks), "clean")]',
        ("tests/evaluation/test_worst_case.py", "tests/test_train.py"),
    ),
    Mutant(
        "worst case over attacks is any attack's survival, not every attack's",
        "src/ladlit/attacks/outcome.py",
        "return torch.stack(masks).all(0)",
        "return torch.stack(masks).any(0)",
        ("tests/evaluation/test_worst_case.py",),
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
        'self.alpha = check_unit_interval("alpha", eps / 4 if alpha is None else alpha)',
        'self.alpha = check_unit_interval("alpha", eps / 2 if alpha is None else alpha)',
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
        "sorted({max(1, round(m * max_epochs)) for m in milestones})",
        "sorted({max(1, int(m * max_epochs) + 1) for m in milestones})",
        ("tests/test_formulas.py",),
    ),
    Mutant(
        "cosine annealed over one epoch more than the run",
        "src/ladlit/schedules.py",
        "T_max=max(1, max_epochs)",
        "T_max=max_epochs + 1",
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
        "return max(validated, key=lambda record: record[SELECTS_CHECKPOINT]) if validated else None",
        "return max(reversed(validated), key=lambda record: record[SELECTS_CHECKPOINT]) if validated else None",
        ("tests/test_records.py",),
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
