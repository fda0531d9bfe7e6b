"""`python -m ladlit.report <run dirs or folders above them> [--out DIR] [--reference KEY=VALUE,...]`

Tables across runs, like a paper's: one table per context (data, model, budget), a row per
defense setting x checkpoint x number of test examples, cells mean ± std over distinct seeds,
then each row's paired difference to the reference (default: the row's base defense alone in the
same table, FGSM-RS for FGSM-RS + LAD, PGD-AT for the rest) with its standard error. Reads the
metrics.json files `ladlit.train` and `ladlit.eval` write (evaluation wins for the same
measurement). Writes report.md, report.csv, attacks.png and eps_sweep.png; with `--wandb`, also a
table of the runs in their W&B group (`ladlit.wandb_results`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ladlit.reporting import find_runs, plot, summarize, write_report


def parse_reference(text: str | None) -> dict[str, str] | None:
    """ "method=pgd,eta=0.001" -> {"method": "pgd", "eta": "0.001"}."""
    if not text:
        return None
    pairs = [p.split("=", 1) for p in text.split(",")]
    if any(len(p) != 2 for p in pairs):
        raise argparse.ArgumentTypeError(f"--reference takes KEY=VALUE[,KEY=VALUE], got {text!r}")
    return dict(pairs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ladlit.report", description="Tables and plots across runs.")
    parser.add_argument(
        "runs", nargs="+", type=Path, help="run directories, multirun directories or any folder above them"
    )
    parser.add_argument("--out", type=Path, default=None, help="where to write (default: the first path)")
    parser.add_argument(
        "--reference",
        type=parse_reference,
        default=None,
        help="the row paired differences are taken to, e.g. method=trades (default: PGD-AT)",
    )
    parser.add_argument(
        "--wandb",
        nargs="?",
        const="",
        default=None,
        metavar="GROUP",
        help="also put a table of the runs into W&B group GROUP (default: the first path's name, a sweep's group)",
    )
    args = parser.parse_args(argv)
    missing = [str(p) for p in args.runs if not p.exists()]
    if missing:
        parser.error(f"no such directory: {', '.join(missing)}")
    notes: list[str] = []
    runs = find_runs(args.runs, notes)
    rows = summarize(runs, notes)
    for note in notes:
        print(f"note: {note}")
    if not rows:
        parser.error(
            "no finished run with test metrics found: train runs write metrics.json, `python -m ladlit.eval ckpt=<run>` adds to it"
        )
    out = args.out or args.runs[0]
    out.mkdir(parents=True, exist_ok=True)
    print(write_report(rows, out, args.reference))
    plots = plot(rows, runs, out)
    print(f"{len(runs)} runs -> {out / 'report.md'}, {out / 'report.csv'}, " + ", ".join(str(p) for p in plots))
    if args.wandb is not None:
        from ladlit.wandb_results import log_report

        print(f"W&B table of the runs: {log_report(runs, args.wandb or args.runs[0].resolve().name, out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
