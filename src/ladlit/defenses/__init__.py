"""Training defenses. PGD-AT: pgd.py; FGSM-RS (single step): fgsm_rs.py; TRADES: trades.py; MART: mart.py; AWP (on any of them):
awp.py; LAD / LAD-SM: layerwise.py (algorithm), schemes.py (Lie-Trotter, Strang-Marchuk),
hooks.py (forward/tensor hooks)."""

from ladlit.defenses.awp import AWP
from ladlit.defenses.base import Defense, DefenseOutput, EpochEnd, InputAdversarial, Natural
from ladlit.defenses.fgsm_rs import FGSMRS
from ladlit.defenses.layerwise import LayerwiseDefense
from ladlit.defenses.mart import MART
from ladlit.defenses.pgd import PGDTraining
from ladlit.defenses.schemes import LieTrotter, Scheme, StrangMarchuk
from ladlit.defenses.trades import TRADES

__all__ = [
    "AWP",
    "MART",
    "Defense",
    "DefenseOutput",
    "EpochEnd",
    "FGSMRS",
    "InputAdversarial",
    "Natural",
    "PGDTraining",
    "TRADES",
    "LayerwiseDefense",
    "Scheme",
    "LieTrotter",
    "StrangMarchuk",
]
