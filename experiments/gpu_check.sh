#!/usr/bin/env bash
# The GPU check for a short GPU window (about 8 minutes of GPU time), results in $OUT/gpu_check.md:
# s/epoch of PreActResNet-18 PGD-10 training on all 50,000 cifar10-jpeg images for pgd, lad and
# lad_sm under trainer=gpu_fast, compile off and on (a defense that refuses compile says so), the
# LAD/base ratio, AutoAttack's images per second on a briefly trained model, and a 2-process DDP
# step when more than one GPU is visible.
#
# Before the call, on the development machine (the device machine reaches nothing and has its own
# python3 with torch and pytorch-lightning, but not Hydra, OmegaConf or torchattacks):
#   mkdir -p .data && cp ../shared/data/cifar10-jpeg.tar.gz .data/          # .data/ is git-ignored
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux2014_x86_64 -d .whl hydra-core==1.3.2 omegaconf==2.3.0 torchattacks==3.5.1 \
#     antlr4-python3-runtime==4.9.3 || python3 -m pip download --no-deps -d .whl antlr4-python3-runtime==4.9.3
# then the device tool's run with carry [".data", ".whl"] and the command
#   bash experiments/gpu_check.sh
#
#   bash experiments/gpu_check.sh --dry-run     # tiny settings on a CPU, no data needed (make test runs it)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-outputs/gpu_check}
mkdir -p "$OUT"
REPORT="$OUT/gpu_check.md"
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
PY=python3
[ -x .venv/bin/python ] && PY="$PWD/.venv/bin/python"
export PYTHONUNBUFFERED=1

if [ "${1:-}" = "--dry-run" ]; then
  BENCH=(--presets cpu --model tiny --dataset digits --train-subset 64 --epochs 1)
  TRAIN=(experiment=quickstart trainer.max_epochs=1 train_attack_steps=1)
  STEPS=1 N_AA=4 COMPILES="false"   # compiling costs minutes on a CPU: the dry run checks the plumbing only
else
  export LADLIT_DATA_DIR=${LADLIT_DATA_DIR:-$PWD/.data}
  BENCH=(--presets gpu_fast --model preact_resnet18 --epochs 2)
  TRAIN=(dataset=cifar10_jpeg model=preact_resnet18 trainer=gpu_fast trainer.max_epochs=2 dataset.val_size=1000)
  STEPS=10 N_AA=500 COMPILES="false true"
fi

{
  echo "# experiments/gpu_check.sh $(date +%F) ${1:-}"
  echo
  (nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no GPU") | sed 's/^/device: /'
  $PY -c "import torch, pytorch_lightning as pl; print(f'torch {torch.__version__}, lightning {pl.__version__}, GPUs {torch.cuda.device_count()}')"
  echo
  echo "## s/epoch, PGD-$STEPS training (first and last epoch of each; ratios from the last)"
  echo
  for compile in $COMPILES; do
    echo "speed.compile=$compile"
    echo
    (cd experiments && $PY bench_epoch.py "${BENCH[@]}" --defenses pgd lad lad_sm -- \
      train_attack_steps=$STEPS speed.compile=$compile) | grep -v '^#'
    echo
  done
} | tee "$REPORT"

python3 - "$REPORT" <<'PY' | tee -a "$REPORT"
import re, sys
# (model | defense | preset | s/epoch | s/epoch | images/s) images/s of the last epoch: the ratio of throughputs is the inverse ratio of s/epoch, and it keeps
# its digits where a tiny dry-run epoch rounds to 0.0 s
rows = re.findall(r"^\| [\w.-]+ \| (\w+) \| \w+ \| [\d.]+ \| [\d.]+ \| ([\d,]+) \|", open(sys.argv[1]).read(), flags=re.M)
for i in range(0, len(rows), 3):
    block = {d: float(ips.replace(",", "")) for d, ips in rows[i : i + 3]}
    if "pgd" in block:
        ratios = ", ".join(f"{d}/pgd {block['pgd'] / block[d]:.2f}" for d in ("lad", "lad_sm") if block.get(d))
        print(f"LAD/base ratio ({'eager' if i == 0 else 'compiled'}): {ratios or 'n/a'}\n")
PY

RUN="$OUT/run"
rm -rf "$RUN"
$PY -m ladlit.train "${TRAIN[@]}" defense=pgd train_attack_steps=$STEPS logger=csv "hydra.run.dir=$RUN" > "$OUT/train.log" 2>&1
$PY -m ladlit.eval "ckpt=$RUN" "attack=[autoattack]" n_examples=$N_AA sanity_examples=0 "eps_sweep=[]" > "$OUT/eval.log" 2>&1
$PY - "$RUN" <<'PY' | tee -a "$REPORT"
import json, sys
record = json.load(open(f"{sys.argv[1]}/checkpoints/metrics.json"))
(entry,) = [e for k, e in record["evaluations"].items() if "| autoattack |" in k]
n, seconds = entry["n_examples"], entry["seconds"]["autoattack"]
print(f"## AutoAttack (standard)\n\n{n} test images in {seconds:.1f} s: {n / seconds:.1f} images/s; "
      f"robust {100 * entry['accuracy']['autoattack']:.1f} %, clean {100 * entry['accuracy']['clean']:.1f} %\n")
PY

GPUS=$($PY -c "import torch; print(torch.cuda.device_count())")
if [ "$GPUS" -gt 1 ]; then
  start=$(date +%s)
  $PY -m ladlit.train "${TRAIN[@]}" defense=lad trainer=ddp trainer.devices=2 trainer.max_epochs=1 \
    trainer.limit_train_batches=20 trainer.limit_val_batches=2 "hydra.run.dir=$OUT/ddp" > "$OUT/ddp.log" 2>&1 \
    && echo "## DDP: 2 processes, 20 LAD steps: passed in $(( $(date +%s) - start )) s" | tee -a "$REPORT" \
    || echo "## DDP: 2 processes: FAILED (ddp.log)" | tee -a "$REPORT"
else
  echo "## DDP: skipped ($GPUS GPU visible)" | tee -a "$REPORT"
fi
echo "written: $REPORT"
