"""Models from the RobustBench model zoo (Croce et al. 2021), loaded through the `robustbench`
package, so a leaderboard model is evaluated by the same code as ours
(`python -m ladlit.eval robustbench=<model name> dataset=cifar10`)."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from ladlit.errors import CheckpointError, ConfigError

ZOO_DATASETS = {10: "cifar10", 100: "cifar100", 1000: "imagenet"}  # by number of classes
NO_PACKAGE = (
    "robustbench={name} needs the robustbench package, which does not import here ({error}). "
    "Without it, download the model's state_dict and evaluate that: "
    "ckpt=<file.pt> model=preact_resnet18|wide_resnet dataset=cifar10 (README, 'Evaluate')."
)


def load_zoo_model(name: str, num_classes: int, model_dir: Path) -> tuple[nn.Module, Path]:
    """RobustBench's L-inf model `name` for the dataset with `num_classes` classes, and the path of
    its weights (evaluations are recorded beside it). The model takes [0, 1] inputs."""
    if num_classes not in ZOO_DATASETS:
        raise ConfigError(
            f"RobustBench has no models for a {num_classes}-class dataset: use dataset=cifar10 or cifar100"
        )
    dataset = ZOO_DATASETS[num_classes]
    try:
        from robustbench.utils import load_model
    except Exception as error:  # ImportError, or a dependency that fails while importing
        raise ConfigError(NO_PACKAGE.format(name=name, error=f"{type(error).__name__}: {error}")) from None
    try:
        net = load_model(model_name=name, model_dir=str(model_dir), dataset=dataset, threat_model="Linf")
    except Exception as error:  # unknown name, no internet, interrupted download
        raise CheckpointError(
            f"could not load RobustBench model {name!r} ({dataset}, Linf): {type(error).__name__}: {error}. "
            f"Check the name on robustbench.github.io; its weights are downloaded into {model_dir} on first use, "
            "which needs internet."
        ) from None
    path = model_dir / dataset / "Linf" / f"{name}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    return net.eval(), path
