"""The CPU study: PGD-AT vs LAD vs LAD-SM on real CIFAR-10, one arm and seed at a time, resumable.

Each (regime, arm, seed) trains with `python -m ladlit.train experiment=<regime> ...` into
outputs/cpu_study/<regime>/<arm>/seed<k>/, optionally evaluates checkpoints with
`python -m ladlit.eval`, then copies the small results (metrics.json with the resolved config and
the per-epoch history, the evaluation record) to experiments/results/cpu_study/ and commits them,
so a study spread over several machines loses nothing. A (regime, arm, seed) whose results are
already committed is skipped, and so is an evaluation already in its committed record; its
checkpoints are only needed for evaluations not yet made. Checkpoints stay on the machine that
trained them; `--retrain` trains a committed run again where an evaluation needs a checkpoint this
machine lacks, and goes on only if the retrained run's per-epoch history equals the committed one
(seeded training on one thread repeats itself), so the new evaluation is of the committed model.

    python experiments/cpu_study.py --regime cpu_study --arm pgd --seeds 0 1 2 --eval best
    python experiments/cpu_study.py --regime cpu_study --arm lad defense.eta=0.001 --seeds 0
    python experiments/cpu_study.py --regime cpu_study_overfit --arm pgd --seeds 0 --eval best last
    python experiments/cpu_study.py ... --eval best --attacks autoattack --n-examples 1000
    python experiments/cpu_study.py ... --eval best --attacks autoattack --n-examples 1000 --retrain
    python experiments/cpu_study.py --chosen-eta cpu_study lad 0.0003 0.001 0.003   # on validation
    python experiments/cpu_study.py --chosen-schedule cpu_study_full                 # on validation
    python experiments/cpu_study.py --chosen-protocol cpu_study_depth                # on validation
    python -m ladlit.report experiments/results/cpu_study
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from ladlit.records import SELECTS_CHECKPOINT, best_epoch, has_evaluation, read_json, write_json
from ladlit.runs import bf16_kernels, cpu_kernels, native_bf16, why_bf16_is_emulated

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "experiments" / "results" / "cpu_study"
OUTPUTS = REPO / "outputs" / "cpu_study"


def arm_name(defense: str, overrides: list[str]) -> str:
    """A directory name for an arm: the defense and its overrides, e.g. `lad_sm__eta-0.001`,
    `lad__blocks-0-1-2` (no `=`, `[`, `,`, which Hydra's override grammar would read in
    `hydra.run.dir=` and git in a pathspec)."""
    keys = [
        re.sub(r"[/=,]+", "-", o.removeprefix("defense.")).translate(str.maketrans("", "", "[] ")) for o in overrides
    ]
    return "__".join([defense, *keys])


def run(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> None:
    """Run a CLI command (in `env`, else this process's) with its output appended to `log`; stop
    the study if it fails."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as f:
        f.write(f"\n$ {' '.join(cmd)}\n")
        f.flush()
        code = subprocess.call(cmd, cwd=REPO, stdout=f, stderr=subprocess.STDOUT, env=env)
    if code != 0:
        sys.exit(f"failed ({code}): {' '.join(cmd)}; see {log}")


def commit(paths: list[Path], message: str) -> None:
    """Commit just `paths`; retried, since another git command may hold the index lock."""
    rel = [str(p.relative_to(REPO)) for p in paths]
    for _ in range(10):
        subprocess.call(["git", "add", "--", *rel], cwd=REPO)
        if subprocess.call(["git", "commit", "-q", "-m", message, "--", *rel], cwd=REPO) == 0:
            return
        time.sleep(5)
    print(f"could not commit {rel}; commit them by hand", file=sys.stderr)


def finished(metrics: Path) -> bool:
    return bool((read_json(metrics) or {}).get("finished"))


def study_seed(
    regime: str,
    arm: str,
    defense: str,
    overrides: list[str],
    seed: int,
    evals: list[str],
    attacks: str,
    n_examples: int,
    extra_eval: list[str],
    retrain: bool = False,
) -> None:
    run_dir, result_dir = OUTPUTS / regime / arm / f"seed{seed}", RESULTS / regime / arm / f"seed{seed}"
    log = run_dir.parent / f"seed{seed}.log"
    train = [
        sys.executable,
        "-m",
        "ladlit.train",
        f"experiment={regime}",
        f"defense={defense}",
        *overrides,
        f"seed={seed}",
        f"hydra.run.dir={run_dir}",
    ]
    if not finished(result_dir / "metrics.json"):
        refuse_emulated_bf16(overrides)
        run(train, log)
        result_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(run_dir / "metrics.json", result_dir / "metrics.json")
        commit([result_dir], f"cpu_study: {regime} {arm} seed {seed} trained")
    for which in evals:
        ckpt = run_dir / "checkpoints" / f"{which}.ckpt"
        if evaluated(result_dir, which, attacks, n_examples, extra_eval):
            continue
        if not ckpt.is_file() and not retrain:
            print(f"skip eval of {ckpt}: not on this machine (--retrain trains it again)", file=sys.stderr)
            continue
        if not ckpt.is_file():
            retrain_as_committed(train, run_dir, result_dir, log)
        keep_committed_evaluations(result_dir / "checkpoints" / "metrics.json", ckpt.parent / "metrics.json")
        cmd = [
            sys.executable,
            "-m",
            "ladlit.eval",
            f"ckpt={ckpt}",
            f"attack=[{attacks}]",
            f"n_examples={n_examples}",
            "sanity_examples=0",
            "eps_sweep=[]",
            *extra_eval,
        ]
        run(cmd, log)
        (result_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
        for name in ("metrics.json", "metrics.md"):
            shutil.copy(ckpt.parent / name, result_dir / "checkpoints" / name)
        commit([result_dir], f"cpu_study: {regime} {arm} seed {seed} {which} evaluated ({attacks}, n={n_examples})")


def refuse_emulated_bf16(overrides: list[str]) -> None:
    """The study's regimes train in bf16-mixed. A CPU without bf16 hardware emulates it about 9x
    slower than fp32 (RESULTS 8.4: a regime-B ResNet-20 run ~6.5 h instead of ~15 min) and, for a
    retrain, rounds differently from the record; stop the plan with that said rather than crawl."""
    if native_bf16() or any(o.startswith("trainer.precision=") and "bf16" not in o for o in overrides):
        return
    sys.exit(
        f"{why_bf16_is_emulated()} (torch's ATen sees {cpu_kernels()['aten']}): the study's bf16-mixed "
        "runs would be emulated, about 9x slower "
        "(experiments/RESULTS.md 8.4). Run the study on an AMD EPYC with AVX-512 BF16 or an Intel Xeon "
        "with AMX; trainer.precision=32-true runs here but is not the committed protocol."
    )


def retrain_as_committed(train: list[str], run_dir: Path, result_dir: Path, log: Path) -> None:
    """Train a committed run again into `run_dir` (continuing from a `last.ckpt` there) and stop
    the study unless its history repeats the committed one."""
    refuse_emulated_bf16(train)
    env = retrain_env(read_json(result_dir / "metrics.json") or {}, result_dir)
    if finished(run_dir / "metrics.json"):  # finished here, its checkpoints since deleted: start over
        shutil.rmtree(run_dir)
    run(train, log, env)
    difference = history_difference(read_json(result_dir / "metrics.json"), read_json(run_dir / "metrics.json"))
    if difference:
        sys.exit(
            f"the retrained {run_dir} is not the committed run ({difference}): its checkpoints are another "
            f"model's, so evaluating them would mix two runs in {result_dir}; see {log}"
        )


def retrain_env(committed: dict, result_dir: Path) -> dict[str, str]:
    """The environment that trains a committed run again as it was trained: its threads and, for a
    bf16 run, its kernels, the two kinds of which round differently (RESULTS 11.3); or a stop before
    hours of training that could not repeat it. An AMX CPU computes as an AVX-512 BF16 one under a
    oneDNN cap; nothing makes another CPU compute as AMX. A record older than the kernels' name is
    retrained as it is and judged by its history alone."""
    kernels, env = committed.get("kernels") or {}, dict(os.environ)
    if kernels.get("threads"):
        env["OMP_NUM_THREADS"] = str(kernels["threads"])
    precision = str(((committed.get("config") or {}).get("trainer") or {}).get("precision", ""))
    trained = kernels.get("bf16")
    if not precision.startswith("bf16") or trained not in ("AMX", "AVX512_CORE_BF16"):
        return env
    for cap in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"):
        env.pop(cap, None)
    here = bf16_kernels(follow_cap=False)
    if trained == "AVX512_CORE_BF16" and here in ("AMX", "AVX512_CORE_BF16"):
        env["ONEDNN_MAX_CPU_ISA"] = "AVX512_CORE_BF16"
    elif trained != here:
        sys.exit(
            f"{result_dir} was trained with {trained} bf16 kernels and this CPU computes bf16 with {here} at "
            f"most: a retrain here would be another model (RESULTS 11.3). Retrain it on a CPU with {trained}."
        )
    return env


def keep_committed_evaluations(committed: Path, local: Path) -> None:
    """Give the record beside a checkpoint the committed evaluations it lacks before evaluating it, so
    that copying the record back adds the new evaluation and erases none. A run trained again on
    another machine starts with an empty record; copied back as it was, it erased what was committed."""
    old, new = read_json(committed) or {}, read_json(local) or {}
    merged = {**old.get("evaluations", {}), **new.get("evaluations", {})}
    if merged != new.get("evaluations", {}):
        local.parent.mkdir(parents=True, exist_ok=True)
        write_json(local, {**old, **new, "evaluations": merged})


# History keys whose definition changed when the worst case came to need the clean prediction
# right too: a record written before (no `worst_includes_clean`) is compared without them.
WORST_CASE_KEYS = ("val/robust_acc", "val/acc_worst")


def history_difference(committed: dict, retrained: dict) -> str:
    """The first difference between two runs' per-epoch histories ("" if none): every value the
    committed run logged, times left out, and the worst case unless the records define it differently
    (values only the retrained run logs, added to the logs since, are not compared)."""
    old, new = committed.get("history") or [], retrained.get("history") or []
    if len(old) != len(new):
        return f"{len(old)} epochs committed, {len(new)} retrained"
    redefined = (
        WORST_CASE_KEYS if committed.get("worst_includes_clean") != retrained.get("worst_includes_clean") else ()
    )
    for a, b in zip(old, new):
        for key in sorted(a):
            if "seconds" not in key and key not in redefined and a[key] != b.get(key):
                return f"epoch {a.get('epoch')}: {key} {a.get(key)} committed, {b.get(key)} retrained"
    return ""


# The ladlit.eval overrides --eval-args takes: switches of extra evaluations, each recorded under its
# own kind. Others (eps=, layer_profile_sizes=, ...) would change what is measured without changing
# the record's key, so a different measurement would pass for one already committed.
EXTRA_EVALUATIONS = ("layer_profile=true", "label_leak=true")


def check_eval_args(extra_eval: Sequence[str]) -> None:
    """Stop with a message on an --eval-args override the study cannot tell apart in its records."""
    if unknown := [arg for arg in extra_eval if arg not in EXTRA_EVALUATIONS]:
        sys.exit(
            f"--eval-args takes {' and '.join(EXTRA_EVALUATIONS)} only, got {' '.join(unknown)}: other overrides "
            "change what is measured but not the record's key; run python -m ladlit.eval directly for them"
        )


def evaluated(result_dir: Path, which: str, attacks: str, n_examples: int, extra_eval: Sequence[str] = ()) -> bool:
    """Whether the committed evaluation record already holds this checkpoint's evaluation under
    these attacks on this many examples, and each extra evaluation `extra_eval` switches on
    (`layer_profile=true` records its own kind): an accuracy already measured does not stand for a
    layer profile that was not."""
    check_eval_args(extra_eval)
    kinds = ["+".join(a for a in attacks.split(",") if a) or "clean"]
    kinds += [arg.removesuffix("=true") for arg in extra_eval]
    record = read_json(result_dir / "checkpoints" / "metrics.json")
    return all(has_evaluation(record, f"{which}.ckpt", kind, n_examples) for kind in kinds)


def validation_history(regime: str, arm: str, seed: int = 0) -> list[dict]:
    """The validated epochs of a committed run (empty if it is not committed)."""
    metrics = RESULTS / regime / arm / f"seed{seed}" / "metrics.json"
    history = (read_json(metrics) or {}).get("history") or []
    return [r for r in history if SELECTS_CHECKPOINT in r]


def chosen_eta(regime: str, defense: str, grid: list[str], extra: list[str] = ()) -> str:
    """The eta of `grid` whose seed-0 `<defense>__eta-<eta>[__<extra>]` run reaches the best robust
    validation accuracy (at its best epoch; ties: higher clean validation accuracy). The sweep is
    seed 0 only, so the seeds run after the choice never change it, and the grid is fixed in the
    plan before its runs, so an eta tried later never does either. Validation only: test numbers
    never choose eta."""
    scores = {}
    for eta in grid:
        if validated := validation_history(regime, arm_name(defense, [f"defense.eta={eta}", *extra])):
            best = best_epoch(validated)
            scores[eta] = (best["val/robust_acc"], best["val/acc_clean"])
    if not scores:
        sys.exit(f"no {defense} runs at eta {' '.join(grid)} under {RESULTS / regime}")
    return max(scores, key=scores.get)


OVERFIT_POINTS = 0.01  # a drop from the best to the last validation that counts as robust over-fitting


def chosen_schedule(regime: str) -> str:
    """The LR schedule of a regime, chosen on PGD-AT's seed-0 validation curves: piecewise decay
    (Rice et al. 2020's protocol) if under it PGD-AT robustly over-fits after the first decay (its
    best validation robust accuracy is after the decay and its last is more than OVERFIT_POINTS
    under it), else cosine. Prints the override to add to every arm ("" for cosine, the default)."""
    piecewise = validation_history(regime, arm_name("pgd", ["scheduler=piecewise"]))
    if not piecewise or not validation_history(regime, "pgd"):
        sys.exit(
            f"PGD-AT's seed-0 runs under cosine and piecewise decay are not both committed under {RESULTS / regime}"
        )
    first_decay = len(piecewise) // 2  # milestones at 50 % and 75 % of training (conf/scheduler/piecewise.yaml)
    best = piecewise.index(best_epoch(piecewise))
    overfits = (
        best >= first_decay and piecewise[-1]["val/robust_acc"] < piecewise[best]["val/robust_acc"] - OVERFIT_POINTS
    )
    return "scheduler=piecewise" if overfits else ""


# The deep-net starts issue 38 compares, fixed before their runs, as overrides of
# experiment=cpu_study_depth (whose own settings are the field's recipe): plain is the ResNet-20
# study's start, no_warmup the recipe without its LR warm-up. Order breaks ties: the simpler wins.
PROTOCOLS = {
    "plain": ["model.conv_init=pytorch", "model.zero_init_residual=false", "scheduler.warmup_epochs=0"],
    "no_warmup": ["scheduler.warmup_epochs=0"],
    "recipe": [],
}
PROTOCOL_DEPTHS = ("resnet56", "resnet110")


def chosen_protocol(regime: str) -> str:
    """The deep-net start of `regime`, chosen on PGD-AT's seed-0 validation: of the PROTOCOLS run at
    every depth in PROTOCOL_DEPTHS, the one whose best robust validation accuracy, averaged over
    those depths, is highest. Prints its overrides ("" for the regime's own settings)."""
    scores = {}
    for name, overrides in PROTOCOLS.items():
        runs = [validation_history(regime, arm_name("pgd", [f"model={m}", *overrides])) for m in PROTOCOL_DEPTHS]
        if all(runs):
            scores[name] = sum(best_epoch(r)[SELECTS_CHECKPOINT] for r in runs) / len(runs)
    if "recipe" not in scores or len(scores) < 2:
        sys.exit(
            f"PGD-AT's seed-0 runs of the recipe and another start at {PROTOCOL_DEPTHS} are not under {RESULTS / regime}"
        )
    return " ".join(PROTOCOLS[max(scores, key=scores.get)])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="\n".join(line for line in __doc__.splitlines() if line.startswith("    python")),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--regime", required=True, help="experiment config: cpu_study | cpu_study_overfit")
    parser.add_argument("--arm", required=True, help="defense config: pgd | lad | lad_sm | trades | ...")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument(
        "--eval", nargs="*", default=[], choices=["best", "last"], help="checkpoints to evaluate after training"
    )
    parser.add_argument("--attacks", default="pgd20,cw", help="attack configs for the evaluation")
    parser.add_argument("--n-examples", type=int, default=5000)
    parser.add_argument(
        "--eval-args", nargs="*", default=[], help="extra evaluations: layer_profile=true, label_leak=true"
    )
    parser.add_argument(
        "--retrain",
        action="store_true",
        help="train a committed run again where an evaluation needs a checkpoint this machine lacks",
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of the arm, e.g. defense.eta=0.001")
    if sys.argv[1:2] == ["--chosen-eta"]:  # ... --chosen-eta <regime> <defense> <eta> [<eta> ...] [-- <override> ...]
        rest = sys.argv[4:]
        cut = rest.index("--") if "--" in rest else len(rest)
        print(chosen_eta(sys.argv[2], sys.argv[3], rest[:cut], rest[cut + 1 :]))
        return
    if sys.argv[1:2] == ["--chosen-schedule"]:  # ... --chosen-schedule <regime>
        print(chosen_schedule(sys.argv[2]))
        return
    if sys.argv[1:2] == ["--chosen-protocol"]:  # ... --chosen-protocol <regime>
        print(chosen_protocol(sys.argv[2]))
        return
    args = parser.parse_args()
    check_eval_args(args.eval_args)  # before any training
    arm = arm_name(args.arm, args.overrides)
    for seed in args.seeds:
        study_seed(
            args.regime,
            arm,
            args.arm,
            args.overrides,
            seed,
            args.eval,
            args.attacks,
            args.n_examples,
            args.eval_args,
            args.retrain,
        )


if __name__ == "__main__":
    main()
