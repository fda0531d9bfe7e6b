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
from ladlit.checks import check_positive_int
from ladlit.config import CONF_DIR, build
from ladlit.console import console, report_errors
from ladlit.evaluation import ExampleSet, ExtraEvaluation, Subject, add_evaluations, evaluate
from ladlit.records import WORST, evaluation_key
from ladlit.runs import describe_run, device_name
from ladlit.tables import accuracy_table


def evaluate_checkpoint(cfg: DictConfig) -> dict[str, Any]:
    """Evaluate `cfg.ckpt` under `cfg.attack` and `cfg.evaluations`; returns the entries added to
    metrics.json. Every attack and evaluation is built (and so checked) before any is run."""
    if cfg.n_examples is not None:
        check_positive_int("n_examples", cfg.n_examples)
    net, path, run_config, dataset_cfg = load_model(cfg)
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
    common = {"checkpoint": path.name, "device": device_name(device), "date": time.strftime("%Y-%m-%d")}
    attacked = {
        "eps": cfg.eps,
        "n_examples": n,
        "accuracy": accuracy,
        "seconds": seconds,
        "attacks": {k: repr(v) for k, v in attacks.items()},
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
    return entries


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="eval")
@report_errors
def main(cfg: DictConfig) -> None:
    evaluate_checkpoint(cfg)


if __name__ == "__main__":
    from ladlit.eval import main as entry_point  # the importable module's, as in ladlit.train

    entry_point()
