"""Evaluation attacks (L-inf, inputs in [0, 1]) and the PGD core shared with the defenses."""

from ladlit.attacks.autoattack import AutoAttack
from ladlit.attacks.base import Attack
from ladlit.attacks.pgd import FGSM, PGD

__all__ = ["Attack", "AutoAttack", "FGSM", "PGD"]
