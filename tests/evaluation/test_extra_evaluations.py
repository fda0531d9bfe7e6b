"""The extra evaluations `ladlit.eval` runs (conf/eval.yaml `evaluations`): one protocol, one
class each, switched off by their keys, rendered from the record alone (old records too)."""

from __future__ import annotations

import pytest
import torch
from helpers import compose_config, tiny_net

from ladlit.config import build
from ladlit.evaluation.extra import EVALUATION, ExtraEvaluation, Subject, render
from ladlit.evaluation.results import record_markdown

ENTRIES = {  # one recorded entry of each, as ladlit.eval writes them (before entries named their class)
    "eps_sweep": {"n_examples": 8, "eps_sweep": {"0.0": 0.5, "0.03137254901960784": 0.25}},
    "sanity": {"eps": 0.1, "n_examples": 8, "sanity": [{"name": "FGSM >= PGD", "passed": False, "detail": "1 vs 2"}]},
    "label_leak": {
        "eps": 0.1,
        "n_examples": 8,
        "label_leak": {"clean": 0.5, "true_given_true": 0.9, "true_given_shifted": 0.2, "shifted_given_shifted": 0.7},
    },
    "layer_profile": {"n_examples": 8, "layer_profile": {"block00": {"0.0": 0.5, "0.1": 0.25}}},
}
SECTION = {
    "eps_sweep": "PGD-20 accuracy vs eps (k): 0/255: 50.0%, 8/255: 25.0%",
    "sanity": "| FGSM >= PGD | **FAIL** | 1 vs 2 |",
    "label_leak": "| 50.0 | 90.0 | 20.0 | 70.0 |",
    "layer_profile": "| block00 | 50.0 | 25.0 |",
}


def configured() -> dict[str, ExtraEvaluation]:
    cfg = compose_config("eval", ["ckpt=x", "layer_profile=true", "label_leak=true"])
    return {name: build(node) for name, node in cfg.evaluations.items()}


def test_each_configured_evaluation_is_one_class_of_the_protocol_named_as_its_node():
    for name, evaluation in configured().items():
        assert isinstance(evaluation, ExtraEvaluation) and evaluation.name == name


@pytest.mark.parametrize("kind", list(ENTRIES))
def test_an_entry_renders_from_the_record_alone_old_or_named(kind):
    old = ENTRIES[kind]
    named = {EVALUATION: f"{type(configured()[kind]).__module__}.{type(configured()[kind]).__name__}", **old}
    assert SECTION[kind] in render("k", old) and render("k", old) == render("k", named)
    assert SECTION[kind] in record_markdown({"evaluations": {"k": old}})


def test_an_accuracy_entry_has_no_extra_section():
    assert render("k", {"accuracy": {"clean": 1.0}, "n_examples": 8}) is None


def test_switched_off_they_record_nothing():
    cfg = compose_config("eval", ["ckpt=x", "sanity_examples=0", "eps_sweep=[]"])
    subject = Subject(
        tiny_net(), [(torch.rand(4, 3, 8, 8), torch.zeros(4, dtype=torch.long))], torch.device("cpu"), 4, 0.1
    )
    assert all(build(node).run(subject) is None for node in cfg.evaluations.values())


def test_a_run_entry_names_its_class_so_a_later_process_renders_it():
    subject = Subject(
        tiny_net(), [(torch.rand(4, 3, 32, 32), torch.zeros(4, dtype=torch.long))], torch.device("cpu"), 4, 0.1
    )
    entry = configured()["layer_profile"].run(subject)
    assert entry[EVALUATION] == "ladlit.evaluation.layer_profile.LayerProfile" and entry["n_examples"] == 4
    assert "## Layer profile (k)" in render("k", entry)


def test_an_entry_of_a_class_that_does_not_import_here_still_renders():
    entry = {EVALUATION: "somebody.elses.Evaluation", "n_examples": 8, "elses": {"x": 1}}
    assert "`somebody.elses.Evaluation`, which does not import here" in record_markdown({"evaluations": {"k": entry}})
