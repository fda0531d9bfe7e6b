"""Evaluation attacks (L-inf, inputs in [0, 1]), one family per file, the PGD core shared with
the defenses (core.py), and what an attack does to each example (outcome.py)."""

from ladlit.attacks.apgd import APGDCE
from ladlit.attacks.autoattack import AutoAttack
from ladlit.attacks.base import Attack
from ladlit.attacks.outcome import correct, worst_case
from ladlit.attacks.pgd import FGSM, PGD
from ladlit.attacks.square import Square

__all__ = ["Attack", "APGDCE", "AutoAttack", "FGSM", "PGD", "Square", "correct", "worst_case"]
