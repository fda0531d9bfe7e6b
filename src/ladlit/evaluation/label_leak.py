"""`label_leak=true`: does a layer-wise defense's training forward follow a shifted label?

The probe itself (`ladlit.defenses.leak.label_leak`) runs the defense's training forward with
the true and with a shifted label; this evaluation runs it on the test examples of a checkpoint
and records it (docs/method.md, the label-leak section)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omegaconf import OmegaConf

from ladlit.checks import check_bool
from ladlit.config import build
from ladlit.console import console
from ladlit.defenses import LayerwiseDefense
from ladlit.defenses.leak import label_leak
from ladlit.errors import ConfigError
from ladlit.evaluation.accuracy import first_examples
from ladlit.evaluation.extra import ExtraEvaluation, Subject
from ladlit.tables import markdown_table

COLUMNS = {
    "clean": "clean (%)",
    "true_given_true": "true label: predicts it",
    "true_given_shifted": "label shifted: predicts the true one",
    "shifted_given_shifted": "label shifted: predicts the shifted one",
}


class LabelLeakProbe(ExtraEvaluation):
    """The label-leak probe of the run's own layer-wise defense (off unless `enabled`)."""

    name = "label_leak"

    def __init__(self, enabled: bool = False) -> None:
        self.enabled = check_bool("enabled", enabled)

    def run(self, subject: Subject) -> dict[str, Any] | None:
        if not self.enabled:
            return None
        defense_cfg = subject.run_config.get("defense") or {"_target_": "ladlit.defenses.Natural"}
        defense = build(OmegaConf.create(defense_cfg), key="defense")
        if not isinstance(defense, LayerwiseDefense):
            raise ConfigError(
                f"label_leak=true probes a layer-wise defense's training forward; this checkpoint was trained with "
                f"{type(defense).__name__}"
            )
        x, y = first_examples(subject.batches, subject.n_examples, subject.device)
        num_classes = int(subject.net.to(subject.device)(x[:1]).shape[1])
        probe = label_leak(defense, subject.net, x, y, num_classes)
        console.print(
            f"label leak: the training forward predicts a shifted label {100 * probe['shifted_given_shifted']:.1f}% "
            f"of the time (chance {100 / num_classes:.0f}%)"
        )
        return self.entry(len(y), probe, eps=subject.eps)

    @classmethod
    def markdown(cls, key: str, entry: Mapping[str, Any]) -> str:
        leak = entry[cls.name]
        row = tuple(f"{100 * leak[k]:.1f}" for k in COLUMNS)
        return (
            f"## Label leak ({key}): the defense's training forward on {entry.get('n_examples', '?')} test images\n\n"
            + markdown_table(list(COLUMNS.values()), [row], right=range(len(COLUMNS)))
        )
