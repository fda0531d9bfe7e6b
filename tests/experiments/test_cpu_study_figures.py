"""The study's derived tables: layer profiles are paired seed by seed against PGD-AT, and a
`normalize=none` run is placed at the rms eta that injects the same perturbation norm."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import experiment_script

from ladlit.reporting.aggregate import Run

figures = experiment_script("cpu_study_figures")


def run(method: str, seed: int, eta: float | None = None, normalize: str = "rms", **extra) -> Run:
    setting = {"choices.experiment": "cpu_study_overfit", "method": method}
    if eta is not None:
        setting |= {"lad.eta": eta, "lad.normalize": normalize}
    return Run(path=Path(f"{method}/{seed}"), seed=seed, setting=setting, **extra)


def profile(clean: float, *pushed: float) -> dict[str, dict[str, dict[str, float]]]:
    """A best checkpoint's profile: each block keeps `pushed[i]` at r = 0.05."""
    return {"best.ckpt": {f"block{i:02d}": {"0.0": clean, "0.05": p} for i, p in enumerate(pushed)}}


def test_layer_profiles_are_differenced_seed_by_seed_against_pgd_at():
    runs = [
        run("pgd", 0, layer_profiles=profile(0.40, 0.20, 0.30)),
        run("pgd", 1, layer_profiles=profile(0.40, 0.10, 0.30)),
        run("pgd+lad", 0, 0.001, layer_profiles=profile(0.40, 0.22, 0.30)),
        run("pgd+lad", 1, 0.001, layer_profiles=profile(0.40, 0.16, 0.30)),
    ]
    table = figures.layer_profile_table(runs)
    # block 0: differences +2 and +6 points -> +4.0, standard error 2.0; block 1: none
    assert "| LAD eta=0.001 - PGD-AT, points | 2 | | +4.0 ± 2.0 | +0.0 ± 0.0 |" in table
    assert "| PGD-AT | 2 | 40.0 | 15.0 | 30.0 |" in table


def test_a_seed_pgd_at_lacks_is_left_out_of_the_pairing():
    runs = [
        run("pgd", 0, layer_profiles=profile(0.4, 0.20)),
        run("pgd", 1, layer_profiles=profile(0.4, 0.20)),
        run("pgd+lad", 0, 0.001, layer_profiles=profile(0.4, 0.21)),
        run("pgd+lad", 1, 0.001, layer_profiles=profile(0.4, 0.23)),
        run("pgd+lad", 2, 0.001, layer_profiles=profile(0.4, 0.90)),
    ]
    assert "| LAD eta=0.001 - PGD-AT, points | 2 | | +2.0 ± 1.0 |" in figures.layer_profile_table(runs)


def norms(*values: float) -> list[dict[str, float]]:
    return [{"epoch": i, "train/lad/perturbation_norm/block00": v} for i, v in enumerate(values)]


def test_a_raw_adjoint_eta_is_placed_at_the_rms_eta_of_equal_perturbation_norm():
    rms = [run("pgd+lad", 0, 0.001, history=norms(0.1, 0.1)), run("pgd+lad", 0, 0.003, history=norms(0.3))]
    raw = run("pgd+lad", 0, 2.0, normalize="none", history=norms(0.1, 0.3))
    assert figures.rms_equivalent_eta(raw, [*rms, raw]) == pytest.approx(0.002)
    assert figures.rms_equivalent_eta(raw, [raw]) is None


def test_a_tamer_run_is_no_sweep_point_and_does_not_set_the_scale():
    warmed = run("pgd+lad", 0, 0.001, history=norms(0.0, 0.01))
    warmed.setting["lad.eta_warmup_epochs"] = 20
    raw = run("pgd+lad", 0, 2.0, normalize="none", history=norms(0.2))
    assert figures.tamer(warmed) == "eta warm-up 20 epochs"
    assert figures.rms_equivalent_eta(raw, [run("pgd+lad", 0, 0.001, history=norms(0.1)), warmed, raw]) == (
        pytest.approx(0.002)
    )


def test_a_raw_adjoint_run_that_runs_away_is_placed_by_its_norm_up_to_its_best_epoch():
    rms = run("pgd+lad", 0, 0.001, history=norms(0.1))
    history = norms(0.2, 9.0)
    history[0] |= {"val/robust_acc": 0.25, "val/acc_clean": 0.3}
    history[1] |= {"val/robust_acc": 0.08, "val/acc_clean": 0.1}
    raw = run("pgd+lad", 0, 6.0, normalize="none", history=history)
    assert figures.rms_equivalent_eta(raw, [rms, raw]) == pytest.approx(0.002)


def test_runs_that_differ_in_normalisation_or_tamer_are_never_one_arm():
    plain, raw = run("pgd+lad", 0, 0.003), run("pgd+lad", 0, 0.003, normalize="none")
    warmed = run("pgd+lad", 0, 0.003)
    warmed.setting["lad.eta_warmup_epochs"] = 20
    assert len({figures.arm_label(r) for r in (plain, raw, warmed)}) == 3


def test_the_full_data_figure_draws_every_regime_c_run_and_marks_catastrophic_over_fitting(tmp_path, monkeypatch):
    monkeypatch.setattr(figures, "FIGURES", tmp_path)
    runs = single_step_runs()
    drawn = []
    monkeypatch.setattr(figures.plt.Axes, "plot", lambda ax, *a, **k: drawn.append((a, k)), raising=True)
    assert figures.plot_full_data(runs) == tmp_path / "full_data.png" and (tmp_path / "full_data.png").is_file()
    assert sum(1 for a, _ in drawn if a[-1:] == ("rx",)) == 2  # one event per seed
    gaps = [list(a[1]) for a, _ in drawn if len(a) == 2]
    assert pytest.approx([1.0, 28.0]) in gaps  # seed 0's FGSM - PGD-10 gap opens from 1 point to 28
    assert figures.plot_full_data([run("pgd", 0, history=runs[0].history)]) is None  # no regime C run: no figure


def single_step_runs() -> list[Run]:
    """Two regime-C FGSM-RS seeds; seed 0 collapses at its second epoch, seed 1 at its third."""

    def epoch(e, pgd, fgsm, flagged=0.0):
        worst = min(pgd, fgsm)
        return {
            "epoch": e,
            "val/acc_pgd10": pgd,
            "val/acc_fgsm": fgsm,
            "val/robust_acc": worst,
            "val/acc_clean": 0.5 + e / 10,
            "val/catastrophic_overfit": flagged,
        }

    histories = [
        [epoch(0, 0.30, 0.31), epoch(1, 0.02, 0.30, 1.0)],
        [epoch(0, 0.28, 0.30), epoch(1, 0.31, 0.33), epoch(2, 0.05, 0.60, 1.0)],
    ]
    regime_c = {"choices.experiment": "cpu_study_full", "method": "fgsm_rs"}
    return [Run(path=Path(f"fgsm_rs/seed{s}"), seed=s, setting=regime_c, history=h) for s, h in enumerate(histories)]


def test_the_collapse_table_says_per_seed_which_epochs_were_flagged():
    table = figures.collapse_table(single_step_runs())
    assert "| fgsm_rs | 0 | 2 | 1 | 30.0 | 2.0 | 30.0 |" in table, table
    assert "| fgsm_rs | 1 | 3 | 2 | 31.0 | 5.0 | 60.0 |" in table, table
    assert figures.collapse_table([]) == ""


def test_a_deeper_model_on_regime_a_is_a_regime_of_its_own():
    shallow, deep = run("pgd", 0), run("pgd", 0)
    deep.setting |= {"choices.experiment": "cpu_study", "choices.model": "resnet56"}
    shallow.setting |= {"choices.experiment": "cpu_study", "choices.model": "resnet20"}
    assert (figures.regime(shallow), figures.regime(deep)) == ("cpu_study", "cpu_study+resnet56")
    assert "cpu_study+resnet56" in figures.REGIMES  # so its eta grid gets a panel of its own
