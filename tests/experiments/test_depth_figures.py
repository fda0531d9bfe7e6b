"""The depth series' tables: each run is placed by its depth and deep-net start, and LAD is
differenced seed by seed against PGD-AT of the same depth and start."""

from __future__ import annotations

from pathlib import Path

from helpers import experiment_script

from ladlit.reporting.aggregate import Run

figures = experiment_script("depth_figures")

RECIPE = {"model.conv_init": "he", "model.zero_init_residual": True, "scheduler.warmup_epochs": 5}


def run(model: str, seed: int, worst: float, eta: float | None = None, start: dict = RECIPE, ckpt="best.ckpt") -> Run:
    setting = {"choices.model": model, **start, **({"lad.eta": eta} if eta is not None else {})}
    measured = {(ckpt, 5000, 0.031, figures.WORST): worst, (ckpt, 1000, 0.031, figures.WORST): 0.0}
    return Run(path=Path(f"{model}/{eta}/{seed}"), seed=seed, setting=setting, measurements=measured)


def test_runs_are_placed_by_their_start():
    assert figures.protocol(run("resnet56", 0, 0.2)) == "recipe"
    assert figures.protocol(run("resnet56", 0, 0.2, start={"scheduler.warmup_epochs": 0})) == "plain"
    assert figures.protocol(run("resnet56", 0, 0.2, start={**RECIPE, "scheduler.warmup_epochs": 0})) == "no_warmup"


def test_lad_is_differenced_seed_by_seed_against_pgd_at_of_its_depth_and_start():
    runs = [
        run("resnet56", 1, 0.20),
        run("resnet56", 2, 0.22),
        run("resnet56", 3, 0.30, start={"scheduler.warmup_epochs": 0}),  # another start: never paired
        run("resnet56", 1, 0.21, eta=0.001),
        run("resnet56", 2, 0.25, eta=0.001),
        run("resnet56", 3, 0.25, eta=0.001),  # no PGD-AT seed 3 under the recipe: no pair
        run("resnet56", 1, 0.50, eta=0.003),  # another eta, one seed: not the arm with most seeds
        run("resnet110", 1, 0.10, eta=0.001),  # no PGD-AT at depth 110: no row
    ]
    name, mean, se, pairs = figures.paired(runs, "best.ckpt", figures.WORST)[56]
    # +1 and +3 points -> +2, standard error 1
    assert (name, round(mean, 6), round(se, 6), pairs) == ("lad eta=0.001", 2.0, 1.0, 2)
    assert 110 not in figures.paired(runs, "best.ckpt", figures.WORST)
    assert figures.paired(runs, "last.ckpt", figures.WORST) == {}


def test_the_selection_seed_is_never_a_test_pair():
    """Seed 0 chose the start and eta on validation; its closing clean test number is in its record,
    but a pair of it would carry the choice's luck into LAD - PGD-AT."""
    runs = [
        run("resnet56", 0, 0.10),
        run("resnet56", 0, 0.40, eta=0.001),
        run("resnet56", 1, 0.20),
        run("resnet56", 1, 0.21, eta=0.001),
    ]
    name, mean, se, pairs = figures.paired(runs, "best.ckpt", figures.WORST)[56]
    assert (name, round(mean, 6), se, pairs) == ("lad eta=0.001", 1.0, None, 1)


def test_protocol_table_counts_epochs_from_one_like_the_log_and_the_figure():
    history = [
        {"epoch": 3, "val/robust_acc": 0.20, "val/acc_clean": 0.30},
        {"epoch": 7, "val/robust_acc": 0.25, "val/acc_clean": 0.35},  # best: the 8th epoch
        {"epoch": 11, "val/robust_acc": 0.22, "val/acc_clean": 0.40},
    ]
    pgd, pgd20 = run("resnet56", 0, 0.2), run("resnet20", 0, 0.2)
    pgd.history = pgd20.history = history
    table = figures.protocol_table([pgd, pgd20])
    assert "| 56 | recipe | 25.0 | 8 | 35.0 | 22.0 |" in table
    assert "| 20 |" not in table  # depth 20 takes the start chosen at 56 and 110; it did not choose


def test_eta_table_lists_seed_zero_of_each_arm_under_the_chosen_start_pgd_first_then_by_eta():
    history = [{"epoch": 3, "val/robust_acc": 0.20, "val/acc_clean": 0.30}]
    made = [
        run("resnet56", 0, 0.2, eta=0.003),
        run("resnet56", 0, 0.2, eta=0.0003),
        run("resnet56", 0, 0.2),
        run("resnet56", 1, 0.2, eta=0.001),  # seed 1: not a calibration run
        run("resnet56", 0, 0.2, eta=0.001, start={"scheduler.warmup_epochs": 0}),  # another start
    ]
    for r in made:
        r.history = history
    rows = [line.split(" | ")[1] for line in figures.eta_table(made).splitlines()[2:]]
    assert rows == ["pgd", "lad eta=0.0003", "lad eta=0.003"]
