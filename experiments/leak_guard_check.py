"""Does the label-leak guard flag runs that leak, and only those? LAD on the quickstart protocol
(digits, tiny net, 15 epochs) over etas from healthy to collapsed, one row per run: the guard's
largest excess and the epochs it flagged, clean validation accuracy at its best and at the end,
and the last epoch's training-forward accuracy (a leaking run's climbs above its clean one).

    python experiments/leak_guard_check.py --etas 0.001 0.01 0.1 0.3 1 --seeds 0 1
    python experiments/leak_guard_check.py --json experiments/results/label_leak_guard/quickstart.json   # RESULTS 9
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from benchlib import machine, pick_device, write_record
from ladlit.records import read_json

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--etas", nargs="+", default=["0.001", "0.01", "0.1", "0.3", "1"])
    parser.add_argument("--seeds", nargs="+", default=["0"])
    parser.add_argument("--out", type=Path, default=REPO / "outputs" / "leak_guard_check")
    parser.add_argument("--json", type=Path, default=None, help="also write each run's guard readings here")
    parser.add_argument("overrides", nargs="*", help="more Hydra overrides, e.g. defense.normalize=none")
    args = parser.parse_args()
    rows = []
    print("| eta | seed | largest excess | flagged epochs | clean val best / last (%) | train acc last (%) |")
    print("|---:|---:|---:|---|---|---:|")
    for eta in args.etas:
        for seed in args.seeds:
            run = args.out / f"eta{eta}_seed{seed}"
            if not (run / "metrics.json").is_file():
                cmd = [
                    sys.executable,
                    "-m",
                    "ladlit.train",
                    "experiment=quickstart",
                    "defense=lad",
                    f"defense.eta={eta}",
                ]
                cmd += [f"seed={seed}", *args.overrides, f"hydra.run.dir={run}"]
                subprocess.run(cmd, cwd=REPO, check=True, capture_output=True)
            history = (read_json(run / "metrics.json") or {}).get("history") or []
            flagged = [r["epoch"] + 1 for r in history if r.get("val/leaking")]
            clean = [100 * r["val/acc_clean"] for r in history]
            rows.append({"eta": float(eta), "seed": int(seed), "overrides": args.overrides, "history": history})
            print(
                f"| {eta} | {seed} | {max(r['val/label_leak'] for r in history):+.3f} | {flagged or '-'} "
                f"| {max(clean):.1f} / {clean[-1]:.1f} | {100 * history[-1]['train/acc']:.1f} |",
                flush=True,
            )
    if args.json:  # the histories hold every validation's excess, its flag, clean and training accuracy
        write_record(args.json, machine(pick_device()), {"protocol": "experiment=quickstart defense=lad", "runs": rows})


if __name__ == "__main__":
    main()
