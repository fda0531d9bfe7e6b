"""`python -m ladlit.eval ckpt=<run dir or .ckpt> attack=[fgsm,pgd20,cw] n_examples=1000`

Evaluates a checkpoint clean and under each attack, then runs the extra evaluations the config
lists (`evaluations`: eps sweep, gradient-masking checklist, label-leak probe, layer profile),
and adds the results to metrics.json and metrics.md beside it, keyed by checkpoint, what was
measured, eps and number of examples, so earlier evaluations are kept.
"""

from __future__ import annotations

import time
from typing import Any

import hydra
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig

from ladlit.checkpoints import load_model
from ladlit.checks import check_path, check_positive_int, check_seed
from ladlit.config import CONF_DIR, build
from ladlit.console import console, report_errors
from ladlit.errors import ConfigError
from ladlit.evaluation import ExampleSet, ExtraEvaluation, Subject, add_evaluations, evaluate
from ladlit.records import WORST, evaluation_key
from ladlit.runs import describe_run, device_name
from ladlit.tables import accuracy_table
from ladlit.wandb_results import log_evaluations


def evaluate_checkpoint(cfg: DictConfig) -> dict[str, Any]:
    """Evaluate `cfg.ckpt` under `cfg.attack` and `cfg.evaluations`; returns the entries added to
    metrics.json. Every attack and evaluation is built (and so checked) before any is run."""
    check_eval_keys(cfg)
    net, path, run_config, dataset_cfg, identity = load_model(cfg)
    attacks = {name: build(node) for name, node in (cfg.get("attack") or {}).items()}
    extras: list[ExtraEvaluation] = [build(node) for node in (cfg.get("evaluations") or {}).values() if node]
    datamodule = build(dataset_cfg, key="dataset", eval_batch_size=cfg.batch_size)
    datamodule.setup("test")
    pl.seed_everything(cfg.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    loader = datamodule.test_dataloader()
    seconds: dict[str, float] = {}
    examples, outcomes = ExampleSet("test"), {}
    accuracy, n = evaluate(net, loader, attacks, device, cfg.n_examples, seconds, examples, outcomes)
    console.print(accuracy_table(accuracy, title=f"{path.name}: {n} test examples"))
    common = {
        "checkpoint": path.name,
        "checkpoint_identity": identity,  # which weights: a best.ckpt replaced since is another model
        "device": device_name(device),
        "date": time.strftime("%Y-%m-%d"),
    }
    attacked = {
        "eps": cfg.eps,
        "n_examples": n,
        "accuracy": accuracy,
        "seconds": seconds,
        "attacks": {k: v.settings() for k, v in attacks.items()},  # every setting: only like is compared with like
        "examples": examples.record(),
        **({"worst_of": list(attacks), "worst_includes_clean": True} if WORST in accuracy else {}),
    }
    entries = {evaluation_key(path.name, "+".join(attacks) or "clean", cfg.eps, n): {**common, **attacked}}
    subject = Subject(net, loader, device, n, cfg.eps, run_config or {}, outcomes)
    for extra in extras:
        result = extra.run(subject)
        if result is not None:
            entries[evaluation_key(path.name, extra.name, result.get("eps"), result["n_examples"])] = {
                **common,
                **result,
            }
    add_evaluations(path.parent / "metrics.json", describe_run(run_config) if run_config else {}, entries)
    console.print(f"added {len(entries)} result(s) to {path.parent / 'metrics.json'} and metrics.md")
    if (wandb_dir := log_evaluations(cfg.get("logger"), path, run_config or {}, entries)) is not None:
        console.print(f"and to the W&B run in {wandb_dir}")
    return entries


def check_eval_keys(cfg: DictConfig) -> None:
    """Refuse a bad value of a top-level key read here. Those that reach an attack or an evaluation
    whole through an interpolation (`eps`, `sanity_examples`, `layer_profile`, ...) are refused by
    its constructor under their own name (`ladlit.config.build`)."""
    if cfg.n_examples is not None:
        check_positive_int("n_examples", cfg.n_examples)
    check_positive_int("batch_size", cfg.batch_size)
    check_seed("seed", cfg.seed)
    for key in ("data_dir", "robustbench_dir"):
        check_path(key, cfg.get(key, "-"))
    if not isinstance(cfg.get("evaluations") or {}, DictConfig | dict):
        raise ConfigError(
            f"evaluations is a group of evaluations by name (conf/eval.yaml), not one value (got {cfg.evaluations!r}): "
            "switch one off with its own key (e.g. sanity_examples=0) or leave it out with ~evaluations.<name>"
        )


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="eval")
@report_errors
def main(cfg: DictConfig) -> None:
    evaluate_checkpoint(cfg)


if __name__ == "__main__":
    from ladlit.eval import main as entry_point  # the importable module's, as in ladlit.train

    entry_point()
