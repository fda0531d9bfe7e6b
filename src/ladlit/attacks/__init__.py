"""Evaluation attacks (L-inf, inputs in [0, 1]), one family per file, and the PGD core shared
with the defenses (core.py)."""

from ladlit.attacks.apgd import APGDCE
from ladlit.attacks.autoattack import AutoAttack
from ladlit.attacks.base import Attack
from ladlit.attacks.pgd import FGSM, PGD
from ladlit.attacks.square import Square

__all__ = ["Attack", "APGDCE", "AutoAttack", "FGSM", "PGD", "Square"]
