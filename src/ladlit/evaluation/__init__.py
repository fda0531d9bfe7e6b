"""Evaluation: accuracy under attack, the gradient-masking checklist, the layer-wise robustness
profile, evaluating a checkpoint and the record of results it adds to, and the report that
aggregates those records (report.py) and writes its files (report_files.py)."""

from ladlit.evaluation.accuracy import correct, evaluate, first_examples
from ladlit.evaluation.checkpoint import evaluate_checkpoint, load_model
from ladlit.evaluation.layer_profile import layer_profile
from ladlit.evaluation.results import add_evaluations, evaluation_key
from ladlit.evaluation.sanity import Check, format_report, sanity_report
from ladlit.records import read_json, write_json

__all__ = [
    "Check",
    "add_evaluations",
    "correct",
    "evaluate",
    "evaluate_checkpoint",
    "evaluation_key",
    "first_examples",
    "format_report",
    "layer_profile",
    "load_model",
    "read_json",
    "sanity_report",
    "write_json",
]
