"""The cross-run report: comparable numbers only, eval over train, seeds counted, paired differences.

Most tests write metrics.json files by hand, as `ladlit.train` and `ladlit.eval` would, so every
expected number is known; one test goes from two tiny trainings through eval to the report.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
from helpers import FGSM_RS, PGD, compose_config, lad, quickstart_config, write_eval, write_run

from ladlit.eval import evaluate_checkpoint
from ladlit.records import read_json, write_json
from ladlit.report import main as report_main
from ladlit.reporting.aggregate import find_runs, summarize
from ladlit.train import train


def rows_by_label(tmp_path, *extra):
    assert report_main([str(tmp_path), *extra]) == 0
    return (tmp_path / "report.md").read_text()


def test_eval_numbers_take_precedence_over_training_test_metrics(tmp_path):
    run = write_run(tmp_path, "a", 0, PGD, clean=0.50, pgd20=0.30)
    write_eval(
        run,
        [
            {
                "checkpoint": "best.ckpt",
                "n_examples": 5000,
                "eps": 0.03,
                "accuracy": {"clean": 0.51, "pgd20": 0.25, "cw": 0.24},
            }
        ],
    )
    (row,) = summarize(find_runs([tmp_path], []))
    assert row.cell("pgd20")[0] == 0.25 and row.cell("clean")[0] == 0.51 and row.cell("cw")[0] == 0.24


def test_different_test_sets_are_separate_rows_with_their_n(tmp_path):
    run = write_run(tmp_path, "a", 0, PGD, clean=0.50, pgd20=0.30)
    write_eval(
        run,
        [
            {
                "checkpoint": "best.ckpt",
                "n_examples": 1000,
                "eps": 0.03,
                "accuracy": {"clean": 0.60, "autoattack": 0.20},
            },
            {"checkpoint": "last.ckpt", "n_examples": 5000, "eps": 0.03, "accuracy": {"clean": 0.55, "pgd20": 0.22}},
        ],
    )
    rows = summarize(find_runs([tmp_path], []))
    assert {(r.checkpoint, r.n): r.cell("clean")[0] for r in rows} == {
        ("best.ckpt", 5000): 0.50,
        ("best.ckpt", 1000): 0.60,
        ("last.ckpt", 5000): 0.55,
    }
    table = rows_by_label(tmp_path)
    assert "| pgd | best.ckpt | 1000 | 1 | 60.00 |" in table and "| pgd | last.ckpt | 5000 | 1 | 55.00 |" in table


def test_label_shows_every_defense_key_that_differs(tmp_path):
    write_run(tmp_path, "pgd", 0, PGD, 0.5, 0.3)
    write_run(tmp_path, "lad1", 0, lad(0.001), 0.48, 0.31)
    write_run(tmp_path, "lad2", 0, lad(0.003), 0.47, 0.32)
    write_run(tmp_path, "sm", 0, lad(0.001, "strang_marchuk"), 0.46, 0.33)
    table = rows_by_label(tmp_path)
    for line in (
        "| pgd | best.ckpt",
        "| pgd+lad eta=0.001 |",
        "| pgd+lad eta=0.003 |",
        "| pgd+lad_sm eta=0.001 |",
    ):
        assert line in table, table


def test_mean_std_over_distinct_seeds_and_no_std_for_one_seed(tmp_path):
    for seed, (c, r) in enumerate([(0.50, 0.30), (0.52, 0.34), (0.54, 0.32)]):
        write_run(tmp_path, f"pgd{seed}", seed, PGD, c, r)
    write_run(tmp_path, "pgd0-again", 0, PGD, 0.50, 0.30)  # the same seed rerun counts once
    write_run(tmp_path, "lad0", 0, lad(0.001), 0.40, 0.20)
    rows = {r.defense["method"]: r for r in summarize(find_runs([tmp_path], []))}
    assert rows["pgd"].seeds == 3
    mean, std, k = rows["pgd"].cell("pgd20")
    assert (k, round(mean, 6), round(std, 6)) == (3, 0.32, 0.02)
    assert rows["pgd+lad"].cell("pgd20")[1] is None
    table = rows_by_label(tmp_path)
    assert "| 3 | 52.00 ± 2.00 | 32.00 ± 2.00 |" in table and "| 1 | 40.00 | 20.00 |" in table


def test_paired_difference_to_pgd_at_with_standard_error(tmp_path):
    pgd = [(0.50, 0.30), (0.52, 0.34), (0.54, 0.32)]
    delta = [0.01, 0.03, 0.02]  # LAD - PGD-AT in PGD-20 accuracy, per seed
    for seed, ((c, r), d) in enumerate(zip(pgd, delta)):
        write_run(tmp_path, f"pgd{seed}", seed, PGD, c, r)
        write_run(tmp_path, f"lad{seed}", seed, lad(0.001), c - 0.01, r + d)
    table = rows_by_label(tmp_path)
    se = 100 * 0.01 / math.sqrt(3)
    assert f"| pgd+lad eta=0.001 | best.ckpt | 5000 | 3 | -1.00 ± 0.00 | +2.00 ± {se:.2f} |" in table, table
    assert "Paired difference to pgd" in table


def test_layerwise_defense_on_another_base_pairs_with_that_base_alone(tmp_path):
    """FGSM-RS + LAD measures what LAD adds to FGSM-RS, so it pairs with FGSM-RS; FGSM-RS alone and
    LAD on PGD-AT pair with PGD-AT; with two references in a table each row names its own."""
    for seed in (0, 1):
        write_run(tmp_path, f"pgd{seed}", seed, PGD, 0.50, 0.30)
        write_run(tmp_path, f"fgsm{seed}", seed, FGSM_RS, 0.55, 0.20 + seed / 100)
        write_run(tmp_path, f"fgsm_lad{seed}", seed, lad(0.001, base=FGSM_RS), 0.54, 0.25)
        write_run(tmp_path, f"lad{seed}", seed, lad(0.001), 0.49, 0.31)
    table = rows_by_label(tmp_path)
    assert "Paired difference to each row's reference" in table, table
    fgsm, pgd = "fgsm_rs", "pgd"
    assert f"| fgsm_rs+lad eta=0.001 | best.ckpt | 5000 | 2 | {fgsm} | -1.00 ± 0.00 | +4.50 ± 0.50 |" in table
    assert f"| {fgsm} | best.ckpt | 5000 | 2 | {pgd} | +5.00 ± 0.00 | -9.50 ± 0.50 |" in table
    assert f"| pgd+lad eta=0.001 | best.ckpt | 5000 | 2 | {pgd} | -1.00 ± 0.00 | +1.00 ± 0.00 |" in table
    csv = (tmp_path / "report.csv").read_text()
    assert csv.splitlines()[0].endswith(",paired with") and any(
        ",fgsm_rs+lad " in line and line.endswith(f",{fgsm}") for line in csv.splitlines()
    ), csv


def test_a_defense_is_named_from_its_config_not_from_an_older_record(tmp_path):
    """FGSM-RS's first runs recorded the class name ("FGSMRS") as their method; the report names
    every run from its config, so they join the runs written after FGSM-RS got its config name."""
    for seed in (0, 1):
        write_run(tmp_path, f"fgsm{seed}", seed, FGSM_RS, 0.55, 0.20)
    old = read_json(tmp_path / "fgsm0" / "metrics.json")
    old["run"] |= {"base": "FGSMRS", "method": "FGSMRS"}
    write_json(tmp_path / "fgsm0" / "metrics.json", old)
    assert "| fgsm_rs | best.ckpt | 5000 | 2 |" in rows_by_label(tmp_path)


def test_reference_can_be_chosen(tmp_path):
    for seed in (0, 1):
        write_run(tmp_path, f"a{seed}", seed, lad(0.001), 0.50, 0.30 + seed / 100)
        write_run(tmp_path, f"b{seed}", seed, lad(0.003), 0.50, 0.32 + seed / 100)
    table = rows_by_label(tmp_path, "--reference", "eta=0.001")
    assert "Paired difference to pgd+lad eta=0.001" in table
    assert "| pgd+lad eta=0.003 | best.ckpt | 5000 | 2 | +0.00 ± 0.00 | +2.00 ± 0.00 |" in table


def test_contexts_are_never_averaged_together(tmp_path):
    write_run(tmp_path, "big", 0, PGD, 0.50, 0.30, subset=8192)
    write_run(tmp_path, "small", 1, PGD, 0.40, 0.20, subset=1000)
    rows = summarize(find_runs([tmp_path], []))
    assert sorted(r.cell("clean")[0] for r in rows) == [0.40, 0.50] and all(r.seeds == 1 for r in rows)
    table = rows_by_label(tmp_path)
    assert "## dataset.train_subset=1000" in table and "## dataset.train_subset=8192" in table


def test_bookkeeping_keys_do_not_split_a_setting(tmp_path):
    """Runs that differ only in how they were run (paths, force_resume: a key added after some runs
    were made) are one setting; their seeds are averaged in one row."""
    for seed, extra in [(0, {}), (1, {"force_resume": False}), (2, {"force_resume": True})]:
        run_dir = write_run(tmp_path, f"pgd{seed}", seed, PGD, 0.40 + seed / 100, 0.20)
        data = json.loads((run_dir / "metrics.json").read_text())
        data["config"].update(extra)
        (run_dir / "metrics.json").write_text(json.dumps(data))
    (row,) = summarize(find_runs([tmp_path], []))
    assert row.seeds == 3 and row.cell("clean")[0] == pytest.approx(0.41)


def test_unfinished_fast_dev_run_and_truncated_runs_are_left_out_with_a_note(tmp_path, capsys):
    write_run(tmp_path, "ok", 0, PGD, 0.5, 0.3)
    write_run(tmp_path, "dev", 1, PGD, 0.1, 0.1, fast_dev_run=True)
    write_run(tmp_path, "cut", 2, PGD, 0.1, 0.1, finished=False, epochs=3)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "metrics.json").write_text('{"test/acc_clean": 0.5, "run"')
    notes: list[str] = []
    runs = find_runs([tmp_path], notes)
    assert [r.path.name for r in runs] == ["ok"]
    assert (
        any("fast_dev_run" in n for n in notes)
        and any("unfinished" in n for n in notes)
        and any("not readable" in n for n in notes)
    )
    assert report_main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "note: left out" in out and "Traceback" not in out


def test_train_eval_report_end_to_end(tmp_path):
    runs = tmp_path / "runs"
    short = [
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=2",
        "trainer.limit_val_batches=1",
        "dataset.test_subset=64",
        "train_attack_steps=2",
    ]
    results = {}
    for seed in (0, 1):
        run_dir = runs / f"seed{seed}"
        results[seed] = train(quickstart_config(run_dir, f"seed={seed}", *short))
        cfg = compose_config(
            "eval",
            [f"ckpt={run_dir}", "attack=[fgsm]", "n_examples=48", "sanity_examples=0", "eps_sweep=[0.0,0.1,0.2]"],
        )
        entries = evaluate_checkpoint(cfg)
        (fgsm,) = [e for k, e in entries.items() if "| fgsm |" in k]
        assert fgsm["eps"] == 0.1 and fgsm["n_examples"] == 48  # the run's own eps
    assert report_main([str(runs)]) == 0
    rows = {r.n: r for r in summarize(find_runs([runs], []))}
    assert set(rows) == {64, 48}  # training's test (64 images) and the evaluation (48) stay apart
    pgd20 = [results[s]["test/acc_pgd20"] for s in (0, 1)]
    assert rows[64].seeds == 2 and rows[64].cell("pgd20")[0] == pytest.approx(sum(pgd20) / 2)
    assert f"{100 * sum(pgd20) / 2:.2f} ±" in (runs / "report.md").read_text()
    for png in ("eps_sweep.png", "attacks.png"):
        assert (runs / png).read_bytes()[:4] == b"\x89PNG"


def test_the_report_reads_records_without_importing_torch():
    """A report is JSON in, tables out: it should not wait seconds for torch and every attack to import."""
    code = "import sys, ladlit.report; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_contexts_that_differ_by_an_option_older_runs_lack_get_distinct_headings(tmp_path):
    """A later option (the deep-net start) is absent from runs that left it at its default: its
    presence alone tells the two contexts apart, so it must reach the headings."""
    write_run(tmp_path, "plain", 0, PGD, 0.40, 0.20)
    recipe = write_run(tmp_path, "recipe", 0, PGD, 0.50, 0.25)
    data = json.loads((recipe / "metrics.json").read_text())
    data["config"]["model"] = {"conv_init": "he"}
    (recipe / "metrics.json").write_text(json.dumps(data))
    headings = [line for line in rows_by_label(tmp_path).splitlines() if line.startswith("## ")]
    assert len(headings) == 2 and len(set(headings)) == 2
    assert sum("model.conv_init=he" in h for h in headings) == 1
