"""One name per arm: every committed record's `run` block, read through `canonical_run`, names its
base, scheme and method with today's names, so a tool grouping by them keeps each arm whole
(FGSM-RS's first regime-C runs recorded the class name "FGSMRS", the later ones "fgsm_rs")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import FGSM_RS, REPO, lad, write_run

from ladlit.reporting.aggregate import find_runs
from ladlit.runs import BASES, SCHEME_NAMES, SCHEMES, canonical_run, describe_run, method_name

RESULTS = REPO / "experiments" / "results"
RECORDS = sorted(RESULTS.rglob("metrics.json"))


def record_id(path: Path) -> str:
    return str(path.relative_to(RESULTS))


def test_the_committed_results_are_there():
    assert len(RECORDS) > 100


@pytest.mark.parametrize("path", RECORDS, ids=record_id)
def test_every_committed_record_reads_with_canonical_names(path):
    record = json.loads(path.read_text())
    run = canonical_run(record.get("run") or {})
    if not run:  # an evaluation record written without its run's config
        return
    assert run["base"] in BASES and run["scheme"] in SCHEMES
    parts = run["method"].split("+")
    assert parts[0] in BASES and set(parts[1:]) <= {"awp", "ema", *SCHEME_NAMES.values()}
    if record.get("config"):  # the record's own config names it the same way
        assert run["method"] == describe_run(record["config"])["method"]


@pytest.mark.parametrize(("arm", "method"), [("fgsm_rs", "fgsm_rs"), ("lad_fgsm_rs__eta-0.0003", "fgsm_rs+lad")])
def test_regime_c_single_step_seeds_share_one_name(arm, method):
    seeds = sorted((RESULTS / "cpu_study" / "cpu_study_full" / arm).glob("seed*/metrics.json"))
    assert len(seeds) == 3
    names = {(run["base"], run["method"]) for run in (canonical_run(json.loads(p.read_text())["run"]) for p in seeds)}
    assert names == {("fgsm_rs", method)}


def test_an_old_record_reads_as_a_new_one():
    new = describe_run({"defense": lad(0.001, base=FGSM_RS), "seed": 0})
    old = {**new, "base": "FGSMRS", "method": "FGSMRS+lad"}
    assert canonical_run(old) == canonical_run(new) == new
    oldest = {k: v for k, v in new.items() if k not in ("method", "awp", "ema")}  # before the method label
    assert canonical_run(oldest) == new
    assert method_name("trades", 0.005, "strang_marchuk", 0.99) == "trades+awp+lad_sm+ema"


def test_the_report_reads_a_record_without_config_by_its_canonical_name(tmp_path):
    path = write_run(tmp_path, "old", 0, FGSM_RS, 0.5, 0.2)
    record = json.loads((path / "metrics.json").read_text())
    del record["config"]
    record["run"] |= {"base": "FGSMRS", "method": "FGSMRS"}
    (path / "metrics.json").write_text(json.dumps(record))
    (run,) = find_runs([tmp_path], [])
    assert run.setting["method"] == "fgsm_rs"
