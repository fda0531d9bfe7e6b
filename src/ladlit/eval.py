"""`python -m ladlit.eval ckpt=<run dir or .ckpt> attack=[fgsm,pgd20,cw] n_examples=1000`

Evaluates a checkpoint clean and under each attack and adds the results to metrics.json and
metrics.md beside it; the work is `ladlit.evaluation.evaluate_checkpoint`.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from ladlit.config import CONF_DIR
from ladlit.console import report_errors
from ladlit.evaluation import evaluate_checkpoint

__all__ = ["evaluate_checkpoint", "main"]


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="eval")
@report_errors
def main(cfg: DictConfig) -> None:
    evaluate_checkpoint(cfg)


if __name__ == "__main__":
    from ladlit.eval import main as entry_point  # the importable module's, as in ladlit.train

    entry_point()
