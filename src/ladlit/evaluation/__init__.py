"""Measuring a model: accuracy under attack (`accuracy`), the record of results beside a
checkpoint (`results`), and the extra evaluations `ladlit.eval` runs through one protocol
(`extra`): eps sweep, gradient-masking checklist (`sanity`), label-leak probe, layer profile.
Evaluating a checkpoint end to end is the `ladlit.eval` entry point; reports across runs are
`ladlit.reporting`."""

from ladlit.evaluation.accuracy import ExampleSet, evaluate, first_examples
from ladlit.evaluation.extra import ExtraEvaluation, Subject
from ladlit.evaluation.results import add_evaluations
from ladlit.evaluation.sanity import Check, format_checklist, gradient_masking_checklist

__all__ = [
    "Check",
    "ExampleSet",
    "ExtraEvaluation",
    "Subject",
    "add_evaluations",
    "evaluate",
    "first_examples",
    "format_checklist",
    "gradient_masking_checklist",
]
