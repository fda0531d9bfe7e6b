"""Evaluating a checkpoint (what `python -m ladlit.eval` runs): rebuild the model from the run's
saved config (or from `model=` for a plain state_dict), evaluate the test set clean and under
each attack, and add the results to metrics.json and metrics.md beside the checkpoint (keyed by
checkpoint, attacks, eps and number of examples, so earlier evaluations are kept).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from ladlit.attacks import PGD, WORST
from ladlit.checkpoints import find_checkpoint, load_checkpoint, load_weights, net_state_dict
from ladlit.checks import check_positive_int
from ladlit.config import build
from ladlit.console import console
from ladlit.defenses import LayerwiseDefense
from ladlit.defenses.leak import label_leak
from ladlit.errors import CheckpointError, ConfigError
from ladlit.evaluation.accuracy import ExampleSet, evaluate, first_examples
from ladlit.evaluation.layer_profile import layer_profile
from ladlit.evaluation.model_zoo import load_zoo_model
from ladlit.evaluation.results import add_evaluations, evaluation_key
from ladlit.evaluation.sanity import format_report, sanity_report
from ladlit.runs import describe_run, device_name
from ladlit.tables import accuracy_table


def evaluate_checkpoint(cfg: DictConfig) -> dict[str, Any]:
    """Evaluate `cfg.ckpt` under `cfg.attack`; returns the entries added to metrics.json."""
    if cfg.n_examples is not None:
        check_positive_int("n_examples", cfg.n_examples)
    net, path, run_config, dataset_cfg = load_model(cfg)
    attacks = {name: build(node) for name, node in (cfg.get("attack") or {}).items()}
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
        **({"worst_of": list(attacks)} if WORST in accuracy else {}),
    }
    entries = {evaluation_key(path.name, "+".join(attacks) or "clean", cfg.eps, n): {**common, **attacked}}
    for kind, eps, result in diagnostics(cfg, net, loader, device, n, outcomes.get("autoattack"), run_config):
        entries[evaluation_key(path.name, kind, eps, result["n_examples"])] = {**common, **result}
    add_evaluations(path.parent / "metrics.json", describe_run(run_config) if run_config else {}, entries)
    console.print(f"added {len(entries)} result(s) to {path.parent / 'metrics.json'} and metrics.md")
    return entries


def diagnostics(
    cfg: DictConfig,
    net: torch.nn.Module,
    loader: Any,
    device: torch.device,
    n: int,
    autoattack: Any = None,
    run_config: dict[str, Any] | None = None,
) -> Iterator[tuple[str, float | None, dict[str, Any]]]:
    """The evaluations beyond accuracy that `cfg` asks for: eps sweep, gradient-masking checklist
    (given AutoAttack's per-example outcome on the first examples, it checks it too), layer
    profile, label-leak probe, as (kind, eps, result)."""
    if cfg.eps_sweep:
        sweep, _ = evaluate(net, loader, {f"{e:.6f}": PGD(eps=e, steps=20) for e in cfg.eps_sweep}, device, n)
        yield (
            "eps_sweep",
            None,
            {"n_examples": n, "eps_sweep": {float(e): a for e, a in sweep.items() if e not in ("clean", WORST)}},
        )
    if cfg.sanity_examples:
        x, y = first_examples(loader, min(cfg.sanity_examples, n), device)
        checks = sanity_report(
            net, x, y, eps=cfg.eps, autoattack=None if autoattack is None else autoattack[: len(y)].to(device)
        )
        console.print(format_report(checks), highlight=False, soft_wrap=True)
        yield "sanity", cfg.eps, {"eps": cfg.eps, "n_examples": len(y), "sanity": [vars(c) for c in checks]}
    if cfg.get("label_leak"):
        defense = build(
            OmegaConf.create((run_config or {}).get("defense") or {"_target_": "ladlit.defenses.Natural"}),
            key="defense",
        )
        if not isinstance(defense, LayerwiseDefense):
            raise ConfigError(
                f"label_leak=true probes a layer-wise defense's training forward; {cfg.ckpt} was trained with "
                f"{type(defense).__name__}"
            )
        x, y = first_examples(loader, n, device)
        num_classes = int(net.to(device)(x[:1]).shape[1])
        probe = label_leak(defense, net, x, y, num_classes)
        console.print(
            f"label leak: the training forward predicts a shifted label {100 * probe['shifted_given_shifted']:.1f}% "
            f"of the time (chance {100 / num_classes:.0f}%)"
        )
        yield "label_leak", cfg.eps, {"n_examples": len(y), "label_leak": probe}
    if cfg.layer_profile:
        yield (
            "layer_profile",
            None,
            {"n_examples": n, "layer_profile": layer_profile(net, loader, device, cfg.layer_profile_sizes, n)},
        )


def load_model(cfg: DictConfig) -> tuple[torch.nn.Module, Path, dict[str, Any], Any]:
    """The network of `cfg.ckpt` with its weights, the checkpoint's path, its run config and the
    dataset config to test on; fills `cfg.eps` and `cfg.dataset` from the run when not given."""
    if cfg.get("robustbench"):
        return load_robustbench(cfg)
    if OmegaConf.is_missing(cfg, "ckpt"):
        raise ConfigError(
            "say what to evaluate: ckpt=<run directory or .ckpt> (a plain state_dict also needs model=... dataset=...)"
            " or robustbench=<model name> dataset=..."
        )
    path = find_checkpoint(cfg.ckpt)
    ckpt = load_checkpoint(path)
    run_config = (ckpt.get("hyper_parameters") or {}).get("run_config") or {}
    model_cfg = cfg.get("model") or run_config.get("model")
    dataset_cfg = cfg.get("dataset") or run_config.get("dataset")
    if model_cfg is None or dataset_cfg is None:
        raise CheckpointError(
            f"{path} carries no ladlit run config: name the architecture and data, e.g. model=preact_resnet18 dataset=cifar10"
        )
    with open_dict(cfg):
        cfg.dataset = dataset_cfg  # a model= given here reads ${dataset.*}
        if cfg.eps is None:
            cfg.eps = run_config.get("eps", 8 / 255)
    net = build(OmegaConf.create(model_cfg) if isinstance(model_cfg, dict) else model_cfg, key="model")
    load_weights(net, net_state_dict(ckpt), source=str(path))
    return net, path, run_config, dataset_cfg


def load_robustbench(cfg: DictConfig) -> tuple[torch.nn.Module, Path, dict[str, Any], Any]:
    """`load_model` for `robustbench=<name>`: the zoo's model for the given dataset, RobustBench's
    eps (8/255) unless `eps=` says otherwise."""
    if cfg.get("dataset") is None:
        raise ConfigError(f"name the test data of robustbench={cfg.robustbench}: e.g. dataset=cifar10")
    net, path = load_zoo_model(cfg.robustbench, cfg.dataset.num_classes, Path(cfg.robustbench_dir))
    with open_dict(cfg):
        cfg.eps = 8 / 255 if cfg.eps is None else cfg.eps
    return net, path, {}, cfg.dataset
