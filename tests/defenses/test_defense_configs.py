"""Each defense config builds what its name and comments say: the base, the splitting scheme, AWP,
and the documented defaults (test_configs checks that the shared eps and steps reach them)."""

from __future__ import annotations

import pytest
from helpers import compose_config
from hydra.utils import instantiate

from ladlit.defenses import FGSMRS, MART, TRADES, LayerwiseDefense, LieTrotter, Natural, PGDTraining, StrangMarchuk

# config -> (base class, AWP on it, scheme class or None for a defense that is not layer-wise)
DEFENSES = {
    "none": (Natural, False, None),
    "pgd": (PGDTraining, False, None),
    "pgd_awp": (PGDTraining, True, None),
    "fgsm_rs": (FGSMRS, False, None),
    "trades": (TRADES, False, None),
    "trades_awp": (TRADES, True, None),
    "mart": (MART, False, None),
    "lad": (PGDTraining, False, LieTrotter),
    "lad_awp": (PGDTraining, True, LieTrotter),
    "lad_fgsm_rs": (FGSMRS, False, LieTrotter),
    "lad_trades": (TRADES, False, LieTrotter),
    "lad_mart": (MART, False, LieTrotter),
    "lad_sm": (PGDTraining, False, StrangMarchuk),
    "lad_sm_awp": (PGDTraining, True, StrangMarchuk),
    "lad_sm_trades": (TRADES, False, StrangMarchuk),
    "lad_sm_mart": (MART, False, StrangMarchuk),
}


def test_every_defense_config_is_in_the_table():
    from helpers import CONF

    assert sorted(DEFENSES) == sorted(p.stem for p in (CONF / "defense").glob("*.yaml"))


@pytest.mark.parametrize("name", DEFENSES)
def test_each_defense_config_builds_its_base_scheme_and_documented_defaults(name):
    base_type, awp, scheme = DEFENSES[name]
    cfg = compose_config("train", [f"defense={name}", "eps=0.1", "train_attack_steps=4"])
    built = instantiate(cfg.defense)
    base = built.base if scheme else built
    assert type(base) is base_type
    if scheme:
        assert isinstance(built, LayerwiseDefense) and type(built.scheme) is scheme
        assert (built.eta, built.normalize, built.block_indices) == ([0.0003], "rms", None)
        assert (built.inject_during_attack, built.detach, built.eta_warmup_epochs) == (True, True, 0)
    if base_type is Natural:
        return
    assert (base.awp is not None) is awp
    if awp:
        assert (base.awp.gamma, base.awp.warmup_epochs) == (5e-3, 0)
    if base_type is FGSMRS:
        assert base.step_ratio == 1.25 and base.alpha == pytest.approx(0.125)
        return
    assert base.alpha == pytest.approx(2.5 * 0.1 / 4)  # alpha null: 2.5 eps / steps
    if base_type is PGDTraining:
        assert base.random_start is True
    else:
        assert base.beta == 6.0
