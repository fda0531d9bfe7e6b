"""Evaluation: accuracy under attack, the gradient-masking checklist, the layer-wise robustness
profile, and the record of results each evaluation adds to (the report aggregates them)."""

from ladlit.evaluation.accuracy import correct, evaluate, first_examples
from ladlit.evaluation.layer_profile import layer_profile
from ladlit.evaluation.results import add_evaluations, evaluation_key, read_json, write_json
from ladlit.evaluation.sanity import Check, format_report, sanity_report

__all__ = [
    "Check",
    "add_evaluations",
    "correct",
    "evaluate",
    "evaluation_key",
    "first_examples",
    "format_report",
    "layer_profile",
    "read_json",
    "sanity_report",
    "write_json",
]
