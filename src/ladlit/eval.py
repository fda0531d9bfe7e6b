"""`python -m ladlit.eval ckpt=<run dir or .ckpt> attack=[fgsm,pgd20,cw] n_examples=1000`

Rebuilds the model from the run's saved config (or from `model=` for a plain state_dict),
evaluates the test set clean and under each attack, writes metrics.json and metrics.md beside
the checkpoint and prints a table.
"""

from __future__ import annotations

from typing import Any

import hydra
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from ladlit.checkpoints import find_checkpoint, load_checkpoint, load_weights, net_state_dict
from ladlit.checks import validate_config
from ladlit.cli import accuracy_table, console, markdown_table, report_errors, write_json
from ladlit.errors import CheckpointError
from ladlit.attacks import PGD
from ladlit.evaluation import evaluate, first_examples
from ladlit.runs import describe_run
from ladlit.sanity import format_report, sanity_report


def evaluate_checkpoint(cfg: DictConfig) -> dict[str, Any]:
    """Evaluate `cfg.ckpt` under `cfg.attack`; returns what is written to metrics.json."""
    validate_config(cfg)
    path = find_checkpoint(cfg.ckpt)
    ckpt = load_checkpoint(path)
    run_config = (ckpt.get("hyper_parameters") or {}).get("run_config") or {}
    model_cfg, dataset_cfg = cfg.get("model") or run_config.get("model"), cfg.get("dataset") or run_config.get("dataset")
    if model_cfg is None or dataset_cfg is None:
        raise CheckpointError(f"{path} carries no ladlit run config: name the architecture and data, e.g. model=preact_resnet18 dataset=cifar10")
    if cfg.eps is None:
        with open_dict(cfg):
            cfg.eps = run_config.get("eps", 8 / 255)
    net = instantiate(OmegaConf.create(model_cfg) if isinstance(model_cfg, dict) else model_cfg)
    load_weights(net, net_state_dict(ckpt), source=str(path))
    datamodule = instantiate(dataset_cfg, eval_batch_size=cfg.batch_size)
    datamodule.setup("test")
    attacks = {name: instantiate(node) for name, node in (cfg.get("attack") or {}).items()}
    pl.seed_everything(cfg.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    loader = datamodule.test_dataloader()
    seconds: dict[str, float] = {}
    accuracy, n = evaluate(net, loader, attacks, device, cfg.n_examples, seconds)
    console.print(accuracy_table(accuracy, title=f"{path.name}: {n} test examples"))
    result: dict[str, Any] = {
        "checkpoint": str(path),
        "run": describe_run(run_config) if run_config else {},
        "n_examples": n,
        "eps": cfg.eps,
        "accuracy": accuracy,
        "attacks": {k: repr(v) for k, v in attacks.items()},
        "seconds": seconds,
        "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
    }
    report = markdown_table(accuracy, n)
    if cfg.eps_sweep:
        sweep_attacks = {f"{e:.6f}": PGD(eps=e, steps=20) for e in cfg.eps_sweep}
        sweep, _ = evaluate(net, loader, sweep_attacks, device, cfg.n_examples)
        result["eps_sweep"] = {float(e): acc for e, acc in sweep.items() if e != "clean"}
        report += "\nPGD-20 accuracy vs eps: " + ", ".join(f"{e * 255:.0f}/255: {100 * a:.1f}%" for e, a in result["eps_sweep"].items()) + "\n"
    if cfg.sanity_examples:
        x, y = first_examples(loader, cfg.sanity_examples, device)
        checks = sanity_report(net, x, y, eps=cfg.eps)
        result["sanity"] = [vars(c) for c in checks]
        report += f"\n## Gradient-masking checks ({len(y)} examples)\n\n" + format_report(checks)
        console.print(format_report(checks), highlight=False, soft_wrap=True)
    write_json(path.parent / "metrics.json", result)
    (path.parent / "metrics.md").write_text(report)
    console.print(f"wrote {path.parent / 'metrics.json'} and metrics.md")
    return result


@hydra.main(version_base="1.3", config_path="../../conf", config_name="eval")
@report_errors
def main(cfg: DictConfig) -> None:
    evaluate_checkpoint(cfg)


if __name__ == "__main__":
    main()
