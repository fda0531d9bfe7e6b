"""How much the clean prediction changes the per-example worst case (issue 36 §1): PGD-20 and CW-20
on a checkpoint's first n test images, the share correct under both attacks with and without the
clean prediction also right, and how many images an attack "repaired" (wrong clean, right under
every attack). The attacks run as `ladlit.eval` runs them (its seed, its example order). With
`--margins`, no attack runs: which committed study runs validated with one attack and have a
runner-up epoch within `margin` of their best, i.e. could select another epoch under the new rule.

    ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16 OMP_NUM_THREADS=1 python experiments/worst_case_rule.py \\
        outputs/determinism/regime_b_pgd_seed1/checkpoints/best.ckpt 5000 > experiments/results/worst_case_rule.json
    python experiments/worst_case_rule.py --margins 0.003
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytorch_lightning as pl
import torch

from ladlit.checkpoints import load_model
from ladlit.config import build, compose_config
from ladlit.data import to_unit_float
from ladlit.evaluation.accuracy import evaluate, first_batches


def main(checkpoint: str, n: int) -> dict:
    cfg = compose_config("eval", [f"ckpt={checkpoint}", "attack=[pgd20,cw]", f"n_examples={n}"])
    net, path, _, dataset_cfg, identity = load_model(cfg)
    attacks = {name: build(node) for name, node in cfg.attack.items()}
    datamodule = build(dataset_cfg, key="dataset", eval_batch_size=cfg.batch_size)
    datamodule.setup("test")
    pl.seed_everything(cfg.seed)
    outcomes: dict[str, torch.Tensor] = {}
    accuracy, seen = evaluate(net, datamodule.test_dataloader(), attacks, torch.device("cpu"), n, {}, None, outcomes)
    with torch.no_grad():
        batches = first_batches(datamodule.test_dataloader(), n)
        clean = torch.cat([net.eval()(to_unit_float(x)).argmax(1) == y for x, y in batches])
    survived = outcomes["pgd20"] & outcomes["cw"]
    return {
        "checkpoint": str(path),
        "identity": identity,
        "n": seen,
        "accuracy": accuracy,
        "worst_attacks_only": survived.float().mean().item(),
        "worst_with_clean": (survived & clean).float().mean().item(),
        "repaired": int((survived & ~clean).sum()),
    }


def close_selections(margin: float, root: Path = Path(__file__).parent / "results" / "cpu_study") -> dict:
    """The committed runs validated with one attack (no `val/acc_worst` in their history), and those
    whose second-best validation is within `margin` of their best."""
    single, close = [], []
    for record in sorted(root.rglob("metrics.json")):
        history = [r for r in (json.loads(record.read_text()).get("history") or []) if "val/robust_acc" in r]
        if record.parent.name == "checkpoints" or not history or "val/acc_worst" in history[0]:
            continue
        single.append(str(record.parent.relative_to(root)))
        ranked = sorted((r["val/robust_acc"] for r in history), reverse=True)
        if len(ranked) > 1 and ranked[0] - ranked[1] <= margin + 1e-6:  # accuracies are float32 multiples of 1/n
            close.append(single[-1])
    return {"margin": margin, "validated_with_one_attack": len(single), "runner_up_within_margin": close}


if __name__ == "__main__":
    if sys.argv[1] == "--margins":
        print(json.dumps(close_selections(float(sys.argv[2])), indent=1))
    else:
        print(json.dumps(main(sys.argv[1], int(sys.argv[2])), indent=1))
