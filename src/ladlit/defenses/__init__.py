"""Training defenses. PGD-AT: pgd.py; TRADES: trades.py; LAD / LAD-SM: layerwise.py (algorithm),
schemes.py (Lie-Trotter, Strang-Marchuk), hooks.py (forward/tensor hooks)."""

from ladlit.defenses.base import Defense, DefenseOutput, InputAdversarial, Natural
from ladlit.defenses.layerwise import LayerwiseDefense
from ladlit.defenses.pgd import PGDTraining
from ladlit.defenses.schemes import LieTrotter, Scheme, StrangMarchuk
from ladlit.defenses.trades import TRADES

__all__ = [
    "Defense",
    "DefenseOutput",
    "InputAdversarial",
    "Natural",
    "PGDTraining",
    "TRADES",
    "LayerwiseDefense",
    "Scheme",
    "LieTrotter",
    "StrangMarchuk",
]
