"""Robust accuracy as the field defines it: an example counts as robust only if it is classified
correctly clean and survives every attack that was run (per example), never the weakest attack's
accuracy; and numbers are only compared when they were measured on the same examples."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from helpers import PGD, write_eval, write_run
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from ladlit.attacks import Attack, worst_case
from ladlit.defenses import Natural
from ladlit.evaluation.accuracy import ExampleSet, evaluate
from ladlit.evaluation.sanity import gradient_masking_checklist
from ladlit.module import AdversarialTraining
from ladlit.records import WORST
from ladlit.reporting.aggregate import find_runs, summarize

N = 8


class PixelClassifier(nn.Module):
    """Predicts the class written into the first pixel (class k as k / 9)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.one_hot((x[:, 0, 0, 0] * 9).round().long().clamp(0, 9), 10).float()


class FoolSome(Attack):
    """Rewrites the first pixel of the examples at positions `fooled` of each batch to another class."""

    def __init__(self, fooled: slice) -> None:
        super().__init__(eps=0.0)
        self.fooled = fooled

    def perturb(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        x_adv = x.clone()
        x_adv[self.fooled, 0, 0, 0] = ((y[self.fooled] + 1) % 10).float() / 9
        return x_adv


class Repair(Attack):
    """What a label-leaking attack does: writes the true class into the first pixel of every example."""

    def __init__(self) -> None:
        super().__init__(eps=0.0)

    def perturb(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        x_adv = x.clone()
        x_adv[:, 0, 0, 0] = y.float() / 9
        return x_adv


def batches(misclassified: int = 0) -> list[tuple[Tensor, Tensor]]:
    """N examples the PixelClassifier gets right, but for the last `misclassified`."""
    y = torch.arange(N) % 10
    x = torch.zeros(N, 3, 4, 4)
    x[:, 0, 0, 0] = y.float() / 9
    if misclassified:
        x[N - misclassified :, 0, 0, 0] = ((y[N - misclassified :] + 1) % 10).float() / 9
    return [(x, y)]


DISJOINT = {"first_half": FoolSome(slice(0, N // 2)), "second_half": FoolSome(slice(N // 2, N))}
NESTED = {"first_half": FoolSome(slice(0, N // 2)), "first_quarter": FoolSome(slice(0, N // 4))}


def test_attacks_fooling_disjoint_halves_leave_no_example_robust():
    accuracy, n = evaluate(PixelClassifier(), batches(), DISJOINT, torch.device("cpu"))
    assert n == N and accuracy == {"clean": 1.0, "first_half": 0.5, "second_half": 0.5, WORST: 0.0}


def test_when_one_attack_dominates_the_worst_case_is_its_number():
    accuracy, _ = evaluate(PixelClassifier(), batches(), NESTED, torch.device("cpu"))
    assert accuracy[WORST] == accuracy["first_half"] == 0.5 and accuracy["first_quarter"] == 0.75


def test_an_attack_that_repairs_misclassified_examples_does_not_make_them_robust():
    # one attack: its worst case still differs from its accuracy
    accuracy, _ = evaluate(PixelClassifier(), batches(misclassified=2), {"repair": Repair()}, torch.device("cpu"))
    assert accuracy == {"clean": 0.75, "repair": 1.0, WORST: 0.75}


def test_worst_case_is_the_per_example_and_of_clean_and_every_attack():
    clean = torch.tensor([True, True, True, False])
    hits = [torch.tensor([True, True, False, True]), torch.tensor([True, False, True, True])]
    assert worst_case(clean, hits).tolist() == [True, False, False, False]


def validate(attacks: dict[str, Attack], misclassified: int = 0) -> dict[str, float]:
    module = AdversarialTraining(
        PixelClassifier(), Natural(), optimizer=lambda p: torch.optim.SGD(p, lr=0.1), val_attacks=attacks
    )
    trainer = pl.Trainer(logger=False, enable_progress_bar=False, enable_checkpointing=False, inference_mode=False)
    loader = DataLoader(TensorDataset(*batches(misclassified)[0]), batch_size=N)
    trainer.validate(module, dataloaders=loader, verbose=False)
    return {k: float(v) for k, v in trainer.callback_metrics.items()}


@pytest.mark.parametrize(("attacks", "robust"), [(DISJOINT, 0.0), (NESTED, 0.5)])
def test_validation_selects_checkpoints_by_the_per_example_worst_case(attacks, robust):
    metrics = validate(attacks)
    assert metrics["val/robust_acc"] == metrics["val/acc_worst"] == robust
    assert min(metrics[f"val/acc_{name}"] for name in attacks) == 0.5


def test_validation_with_one_attack_selects_by_correct_clean_and_under_it():
    metrics = validate({"repair": Repair()}, misclassified=2)
    assert (metrics["val/acc_clean"], metrics["val/acc_repair"]) == (0.75, 1.0)
    assert metrics["val/robust_acc"] == metrics["val/acc_worst"] == 0.75


def test_an_attack_cannot_take_the_worst_case_name():
    with pytest.raises(Exception, match="worst"):
        AdversarialTraining(PixelClassifier(), Natural(), optimizer=None, val_attacks={WORST: DISJOINT["first_half"]})


def test_the_example_fingerprint_follows_the_images_and_labels():
    (x, y), prints = batches()[0], []
    for images, labels in ((x, y), (x, y), (x + 1 / 255, y), (x, y.roll(1))):
        examples = ExampleSet("test")
        examples.add(images, labels)
        prints.append(examples.record())
    assert prints[0] == prints[1] and prints[0]["first"] == N
    assert len({p["sha1"] for p in prints[1:]}) == 3


def evaluation(accuracy: dict, sha1: str, worst_of=("pgd20", "cw")) -> dict:
    return {
        "checkpoint": "best.ckpt",
        "n_examples": 1000,
        "eps": 0.03,
        "accuracy": accuracy,
        "worst_of": list(worst_of),
        "examples": {"split": "test", "first": 1000, "sha1": sha1},
    }


def test_the_report_keeps_the_worst_case_in_a_column_of_its_own_named_by_its_attacks(tmp_path):
    run = write_run(tmp_path, "a", 0, PGD, clean=0.5, pgd20=0.3)
    write_eval(run, [evaluation({"clean": 0.5, "pgd20": 0.30, "cw": 0.28, WORST: 0.25}, "aaaa")])
    rows = [r for r in summarize(find_runs([tmp_path], [])) if r.n == 1000]
    assert rows[0].cell("worst(pgd20+cw)")[0] == 0.25 and rows[0].cell("cw")[0] == 0.28
    assert WORST not in rows[0].per_seed


def test_the_report_averages_only_numbers_measured_on_the_same_examples(tmp_path):
    notes: list[str] = []
    for seed, sha1 in enumerate(["aaaa", "aaaa", "bbbb"]):
        run = write_run(tmp_path, f"s{seed}", seed, PGD, clean=0.5, pgd20=0.3)
        write_eval(run, [evaluation({"clean": 0.5, "autoattack": [0.20, 0.21, 0.22][seed]}, sha1)])
    (row,) = [r for r in summarize(find_runs([tmp_path], []), notes) if r.n == 1000]
    assert sorted(row.per_seed["autoattack"].values()) == [0.20, 0.21]
    assert any("other examples" in note and "s2" in note for note in notes)


def test_the_checklist_flags_an_autoattack_more_than_a_point_above_the_white_box_worst_case(trained_digits_net):
    net, x, y = trained_digits_net
    x, y = x[:100], y[:100]
    fast = {"square_queries": 20, "long_steps": 20, "restarts": 2}
    fooled_everywhere = torch.zeros_like(y, dtype=torch.bool)
    never_fooled = torch.ones_like(y, dtype=torch.bool)
    checks = {
        name: {c.name: c for c in gradient_masking_checklist(net, x, y, eps=0.1, autoattack=aa, **fast)}
        for name, aa in (("strong", fooled_everywhere), ("weak", never_fooled))
    }
    check = "AutoAttack no weaker than the white-box worst case"
    assert checks["strong"][check].passed and not checks["weak"][check].passed
    assert "white-box worst case (per example" in checks["weak"][check].detail
    assert check not in {c.name for c in gradient_masking_checklist(net, x, y, eps=0.1, **fast)}


def test_the_first_n_examples_are_cut_from_the_loaders_batches_in_order():
    import torch

    from ladlit.evaluation.accuracy import first_batches

    loader = [(torch.arange(4) * 10, torch.arange(4)), (torch.arange(4, 8) * 10, torch.arange(4, 8))]
    assert [y.tolist() for _, y in first_batches(loader, 6)] == [[0, 1, 2, 3], [4, 5]]
    assert [y.tolist() for _, y in first_batches(loader, 4)] == [[0, 1, 2, 3]]
    assert [y.tolist() for _, y in first_batches(loader, None)] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert [x.tolist() for x, _ in first_batches(loader, 5)][1] == [40]
