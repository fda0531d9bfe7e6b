"""docs/extending.md, run as written: its `# file:` blocks become a scratch project's files, the
defense trains, the evaluation is recorded and rendered, and the page's own tests pass."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest
from helpers import REPO, compose_config

from ladlit.config import build
from ladlit.errors import ConfigError
from ladlit.eval import evaluate_checkpoint
from ladlit.records import read_json
from ladlit.train import train

BLOCK = re.compile(r"```(?:python|yaml)\n# file: (\S+)[^\n]*\n(.*?)```", re.S)


def page_files() -> dict[str, str]:
    """path -> text of each `# file:` block of docs/extending.md."""
    return {path: text for path, text in BLOCK.findall((REPO / "docs" / "extending.md").read_text())}


@pytest.fixture
def example(tmp_path, monkeypatch):
    """The page's modules importable under their package names, its configs on Hydra's search path."""
    files = page_files()
    for path, text in files.items():
        target = tmp_path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        if path.startswith("src/"):
            name = path.removeprefix("src/").removesuffix(".py").replace("/", ".")
            spec = importlib.util.spec_from_file_location(name, target)
            module = importlib.util.module_from_spec(spec)
            monkeypatch.setitem(sys.modules, name, module)
            spec.loader.exec_module(module)
    return tmp_path, files


def test_the_page_has_a_defense_an_evaluation_and_a_test_for_each():
    files = page_files()
    assert {"src/ladlit/defenses/mixed.py", "conf/defense/mixed.yaml", "tests/defenses/test_mixed.py"} <= set(files)
    assert {"src/ladlit/evaluation/noise.py", "tests/evaluation/test_noise.py"} <= set(files)


def test_the_pages_own_tests_pass(example):
    root, files = example
    for path in (p for p in files if p.startswith("tests/")):
        namespace: dict = {}
        exec(compile(files[path], str(root / path), "exec"), namespace)
        tests = [f for name, f in namespace.items() if name.startswith("test_")]
        assert tests, path
        for test in tests:
            test()


def test_the_defense_trains_and_its_bad_value_is_refused_by_key(example, tmp_path):
    root, _ = example
    search = f"hydra.searchpath=[file://{root / 'conf'}]"
    cfg = compose_config(
        "train",
        ["experiment=quickstart", "defense=mixed", search, "trainer.fast_dev_run=true", "logger=csv"],
        tmp_path / "run",
    )
    assert type(build(cfg.defense)).__name__ == "MixedTraining"
    train(cfg)
    assert (tmp_path / "run" / "metrics.json").exists()
    bad = compose_config("train", ["experiment=quickstart", "defense=mixed", search, "defense.clean_weight=2"])
    with pytest.raises(ConfigError, match=re.escape("defense.clean_weight must be in [0, 1]")):
        build(bad.defense)


def test_the_evaluation_is_recorded_and_rendered(example, tmp_path, quickstart_run):
    line = example[1]["conf/eval.yaml"].strip()
    name, node = line.split(": ", 1)
    cfg = compose_config(
        "eval",
        [
            f"ckpt={quickstart_run}",
            "attack=[fgsm]",
            "n_examples=40",
            "sanity_examples=0",
            "eps_sweep=[]",
            f"+evaluations.{name}={node}",
        ],
    )
    entries = evaluate_checkpoint(cfg)
    (key,) = [k for k in entries if "| gaussian_noise |" in k]
    record = read_json(Path(quickstart_run) / "checkpoints" / "metrics.json")
    assert set(record["evaluations"][key]["gaussian_noise"]) == {"0.0", "0.05", "0.1"}
    assert "Accuracy under Gaussian noise" in (Path(quickstart_run) / "checkpoints" / "metrics.md").read_text()
