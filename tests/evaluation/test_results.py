"""The evaluation record beside a checkpoint: evaluations add up and never erase each other."""

from __future__ import annotations

import json

from helpers import compose_config

from ladlit.eval import evaluate_checkpoint


def test_evaluations_add_up_and_never_erase_each_other(quickstart_run):
    tmp_path = quickstart_run

    def evaluate(*overrides):
        return evaluate_checkpoint(
            compose_config("eval", [f"ckpt={tmp_path}", "sanity_examples=0", "eps_sweep=[]", *overrides])
        )

    evaluate("attack=[fgsm,cw]", "n_examples=40", "eps_sweep=[0.0,0.1]")
    evaluate("attack=[pgd20]", "n_examples=40")
    evaluate("attack=[pgd20]", "n_examples=40", "eps=0.05")
    evaluate("attack=[pgd20]", "n_examples=40")  # measured again: replaces only its own entry
    record = json.loads((tmp_path / "checkpoints" / "metrics.json").read_text())["evaluations"]
    kinds = sorted(k.split(" | ")[1:] for k in record)
    assert kinds == [
        ["eps_sweep", "eps=-", "n=40"],
        ["fgsm+cw", "eps=25.5/255", "n=40"],
        ["pgd20", "eps=12.75/255", "n=40"],
        ["pgd20", "eps=25.5/255", "n=40"],
    ]
    table = (tmp_path / "checkpoints" / "metrics.md").read_text()
    assert "| best.ckpt | cw | 25.5/255 | 40 |" in table and "| best.ckpt | pgd20 | 12.75/255 | 40 |" in table
    (two_attacks,) = [e for k, e in record.items() if "| fgsm+cw |" in k]
    accuracy = two_attacks["accuracy"]
    assert two_attacks["worst_of"] == ["fgsm", "cw"] and accuracy["worst"] <= min(accuracy["fgsm"], accuracy["cw"])
    assert "| best.ckpt | worst(fgsm+cw) | 25.5/255 | 40 |" in table
    fingerprints = {
        (e["examples"]["split"], e["examples"]["first"], e["examples"]["sha1"])
        for e in record.values()
        if "examples" in e
    }
    assert len(fingerprints) == 1 and next(iter(fingerprints))[:2] == ("test", 40)  # the same 40 test images each time
