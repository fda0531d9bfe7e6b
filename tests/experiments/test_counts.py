"""The counts the prose states agree with the committed records they are counted from.

Each test recomputes one count from experiments/results/ (JSON reads only) and finds the sentence
that states it in experiments/RESULTS.md by a pattern; line breaks read as spaces. A pattern that
no longer matches fails too: rephrase the sentence and the pattern together. README.md and
docs/*.md are checked wherever they state the same count (they need not state it).
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest
from helpers import REPO

RECORDS = REPO / "experiments" / "results"
REGIME_C = RECORDS / "cpu_study" / "cpu_study_full"


def prose(text: str) -> str:
    return " ".join(text.split())


RESULTS_MD = prose((REPO / "experiments" / "RESULTS.md").read_text())
ELSEWHERE_RAW = {p.name: p.read_text() for p in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]}
ELSEWHERE = {name: prose(text) for name, text in ELSEWHERE_RAW.items()}


def stated(pattern: str) -> tuple[str, ...]:
    """The groups of the one sentence of RESULTS.md that `pattern` matches."""
    found = [m.groups() for m in re.finditer(pattern, RESULTS_MD)]
    assert len(found) == 1, f"{pattern!r} matches {len(found)} sentences of RESULTS.md, not one"
    return found[0]


def stated_elsewhere(pattern: str) -> list[tuple[str, tuple[str, ...]]]:
    """(file, groups) for every match of `pattern` in README.md and docs/*.md."""
    return [(name, m.groups()) for name, text in ELSEWHERE.items() for m in re.finditer(pattern, text)]


def read(path: Path) -> dict:
    return json.loads(path.read_text())


def histories(pattern: str, root: Path = RECORDS) -> list[list[dict]]:
    return [read(p).get("history") or [] for p in sorted(root.glob(pattern))]


def one_decimal(value: float) -> str:
    return f"{value:.1f}"


# --- 4.1: the runs of regimes A and B --------------------------------------------------------------


def test_regimes_a_and_b_count_their_committed_runs():
    runs = [*RECORDS.glob("cpu_study/cpu_study/*/seed*/metrics.json")]
    runs += RECORDS.glob("cpu_study/cpu_study_overfit/*/seed*/metrics.json")
    assert stated(r"Regimes A and B's (\d+) runs") == (str(len(runs)),)


# --- 9.1: the label-leak guard's tally -------------------------------------------------------------


def condition(history: list[dict], classes: int = 10) -> str:
    """How a guarded run ended: "stalled" (clean accuracy under twice chance), "collapsed" (robust
    validation accuracy under half its best) or "healthy"."""
    validated = [r for r in history if "val/label_leak" in r]
    robust = [r["val/robust_acc"] for r in validated]
    if validated[-1]["val/acc_clean"] < 2 / classes:
        return "stalled"
    return "collapsed" if robust[-1] < max(robust) / 2 else "healthy"


def tally(runs: list[list[dict]]) -> dict[str, int]:
    validations = [r for h in runs for r in h if "val/label_leak" in r]
    conditions = [condition(h) for h in runs]
    counts = {c: conditions.count(c) for c in ("healthy", "stalled", "collapsed")}
    return {
        "runs": len(runs),
        **counts,
        "validations": len(validations),
        "flagged": sum(bool(r.get("val/leaking")) for r in validations),
    }


def guarded(runs: list[list[dict]]) -> list[list[dict]]:
    return [h for h in runs if any("val/label_leak" in r for r in h)]


def test_the_guard_tally_counts_every_guarded_run_and_validation():
    search = tally(guarded(histories("eta_search/regime_b/trial*/metrics.json")))
    regime_c = tally(guarded(histories("*/seed*/metrics.json", REGIME_C)))
    quick = tuple(map(int, stated(r"quickstart (\d+) runs \((\d+) healthy, (\d+) stalled, (\d+) validations")))
    assert stated(r"regime B search (\d+) trials \((\d+) healthy, (\d+) stalled, (\d+) validations\)") == tuple(
        str(search[k]) for k in ("runs", "healthy", "stalled", "validations")
    )
    assert stated(r"regime C (\d+) runs \((\d+) healthy, (\d+) collapsed, (\d+) validations") == tuple(
        str(regime_c[k]) for k in ("runs", "healthy", "collapsed", "validations")
    )
    assert search["collapsed"] == regime_c["stalled"] == 0  # the prose's categories cover every run
    flagged = search["flagged"] + regime_c["flagged"]
    quickstart_record = RECORDS / "label_leak_guard" / "quickstart.json"
    if quickstart_record.is_file():  # experiments/leak_guard_check.py --json (until committed, the prose's own count)
        counted = tally([run["history"] for run in read(quickstart_record)["runs"]])
        assert quick == tuple(counted[k] for k in ("runs", "healthy", "stalled", "validations"))
        flagged += counted["flagged"]
    total = quick[3] + search["validations"] + regime_c["validations"]
    assert stated(r"False alarms: (\d+) of (\d+) validations") == (str(flagged), str(total))


# --- 8.5: single-step training --------------------------------------------------------------------


def single_step() -> list[list[dict]]:
    return histories("*fgsm_rs*/seed*/metrics.json", REGIME_C)


def largest_gap(history: list[dict]) -> float:
    return max(100 * (r["val/acc_fgsm"] - r["val/acc_pgd10"]) for r in history)


def test_no_single_step_run_collapsed_and_the_gaps_are_the_records():
    runs = single_step()
    collapsed = sum(any(r.get("val/catastrophic_overfit") for r in h) for h in runs)
    assert stated(r"none, in (\d+) of (\d+) single-step runs") == (str(collapsed), str(len(runs)))
    gaps = sorted(largest_gap(h) for h in runs)
    pgd = sorted(largest_gap(h) for h in histories("pgd/seed*/metrics.json", REGIME_C))
    assert stated(r"FGSM - PGD-10 gap stayed at ([\d.]+)-([\d.]+) points \(PGD-AT's ([\d.]+)-([\d.]+)\)") == tuple(
        map(one_decimal, (gaps[0], gaps[-1], pgd[0], pgd[-1]))
    )
    for name, found in stated_elsewhere(r"catastrophically[^()]*\((\d+) of (\d+) runs"):
        assert found == (str(collapsed), str(len(runs))), name
    for name, (gap,) in stated_elsewhere(r"validation gap at most ([\d.]+) points"):
        assert gap == one_decimal(gaps[-1]), name


def test_the_last_epoch_falls_are_counted_from_the_histories():
    falls = [100 * (h[-2]["val/acc_pgd10"] - h[-1]["val/acc_pgd10"]) for h in single_step()]
    fell = sorted(f for f in falls if f > 0)
    assert stated(r"fell in the last epoch in (\d+) of (\d+) runs") == (str(len(fell)), str(len(falls)))
    assert stated(r"by ([\d.]+)-([\d.]+) points, within a validation's noise") == (
        one_decimal(fell[0]),
        one_decimal(fell[-1]),
    )


def extra_time(arm: str, base: str, seed: int) -> float:
    """LAD's extra time per epoch over its base, in percent (median training epochs, one seed)."""
    seconds = [read(REGIME_C / a / f"seed{seed}" / "metrics.json")["train_seconds_per_epoch"] for a in (arm, base)]
    return 100 * (seconds[0] / seconds[1] - 1)


def paragraphs(text: str) -> list[str]:
    """The paragraphs and list items of a markdown text, whitespace collapsed."""
    return [prose(p) for p in re.split(r"\n\s*\n|\n(?=[-*] )", text)]


def more_time_figures(paragraph: str) -> list[str]:
    """The percentages of a paragraph's "... % more time per epoch" clauses."""
    clauses = re.findall(r"[^,;:()]*more time per epoch", paragraph)
    return re.findall(r"(\d+(?:\.\d+)?) %", " ".join(clauses))


def test_lads_extra_time_on_fgsm_rs_is_the_records():
    per_seed = [one_decimal(extra_time("lad_fgsm_rs__eta-0.0003", "fgsm_rs", s)) for s in (0, 1)]
    assert list(stated(r"for \+([\d.]+) % and \+([\d.]+) % more time per epoch on seeds 0 and 1")) == per_seed
    for name, text in ELSEWHERE_RAW.items():
        for paragraph in paragraphs(text):
            for figure in more_time_figures(paragraph) if "FGSM-RS" in paragraph else []:
                assert figure in per_seed, f"{name}: {figure} % more time per epoch, records say {per_seed}"


def test_lads_extra_time_on_the_full_training_set_is_the_records():
    seconds = [
        read(REGIME_C / a / "seed2" / "metrics.json")["train_seconds_per_epoch"] for a in ("lad__eta-0.0003", "pgd")
    ]
    percent = f"{extra_time('lad__eta-0.0003', 'pgd', 2):.0f}"
    assert stated(r"LAD's median training epoch took (\d+) s against PGD-AT's (\d+) s on seed 2 .*?; \+(\d+) %\)") == (
        *(f"{s:.0f}" for s in seconds),
        percent,
    )
    for name, text in ELSEWHERE_RAW.items():
        for paragraph in paragraphs(text):
            if "49,000" in paragraph and "FGSM-RS" not in paragraph:
                assert set(more_time_figures(paragraph)) <= {percent}, f"{name}: records say {percent} %"


# --- 8.6: the budget the committed records account for -----------------------------------------------


def test_the_lane_hours_are_summed_from_the_records():
    training = sum(read(p).get("wall_seconds") or 0 for p in REGIME_C.glob("*/seed*/metrics.json")) / 3600
    evaluation = (
        sum(
            sum((entry.get("seconds") or {}).values())
            for p in REGIME_C.glob("*/seed*/checkpoints/metrics.json")
            for entry in read(p)["evaluations"].values()
        )
        / 3600
    )
    assert stated(r"about (\d+) lane-hours \(([\d.]+) of training, ([\d.]+) of evaluation") == (
        f"{training + evaluation:.0f}",
        one_decimal(training),
        one_decimal(evaluation),
    )


# --- the mutants ------------------------------------------------------------------------------------


@pytest.mark.parametrize("pattern", [r"(\d+) deliberate bugs", r"(\d+) mutants\b"])
def test_a_mutant_count_in_the_readme_or_docs_is_the_number_of_mutants(pattern, monkeypatch):
    spec = importlib.util.spec_from_file_location("mutants", REPO / "tests" / "mutants.py")
    mutants = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "mutants", mutants)  # its dataclass looks itself up there
    spec.loader.exec_module(mutants)
    for name, (count,) in stated_elsewhere(pattern):  # RESULTS 7 dates each of its counts: a log, not a claim
        assert int(count) == len(mutants.MUTANTS), f"{name} says {count}, tests/mutants.py has {len(mutants.MUTANTS)}"
