#!/usr/bin/env bash
# train.py on one CUDA GPU, as prepared for a machine with no hub access and a 64 MiB copy of the working tree.
#
#     bash bench/gpu_train.sh DATA_FOLDER OUT_FOLDER
#
# DATA_FOLDER holds train.parquet and test.parquet (docs/performance.md says which slice was used). Three runs of
# the default recipe (learning rate 2e-5, batch 16, max length 512, bf16 autocast), each with its log in OUT_FOLDER:
#   minilm     the default model's architecture, one epoch over DATA_FOLDER's training reviews (less the 10 %
#              validation hold-out), started from the shipped weights in artifacts/ (the pre-trained copy does not
#              fit the 64 MiB), so its accuracy shows that training on CUDA does not break the model, not what a
#              fresh fine-tune reaches;
#   bert-base  bert-base-uncased's architecture (BertConfig's defaults) with random weights built here: its
#              throughput is that of the real checkpoint, its accuracy means nothing (no fairness probe);
#   minilm-b64 as minilm with batch 64, 200 steps: how much a bigger batch lifts throughput on the GPU.
# Then OUT_FOLDER/summary.json: per run real tokens/s, seconds, accuracies and model FLOP/s (counted as in
# bench/train_throughput.py) as a share of the GPU's bf16 matmul peak measured first; OUT_FOLDER/dmon.txt samples
# GPU use every 5 s with timestamps. DEVICE (default cuda) and EXTRA (more train.py flags) are for dry runs on a CPU.
set -u -o pipefail
data=$(realpath "${1:?usage: bash bench/gpu_train.sh DATA_FOLDER OUT_FOLDER}")
out=${2:?usage: bash bench/gpu_train.sh DATA_FOLDER OUT_FOLDER}
mkdir -p "$out" && out=$(realpath "$out")
cd "$(dirname "$0")/.." || exit 1  # the repository root: train.py, artifacts/, bench/
device=${DEVICE:-cuda}
work=$(mktemp -d)
dmon=
cleanup() {
    [ -n "$dmon" ] && kill "$dmon" 2> /dev/null
    rm -rf "$work"
}
trap cleanup EXIT
export PYTHONUNBUFFERED=1

{ date -u +"started %FT%TZ"; nvidia-smi -L 2>&1
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>&1; } > "$out/env.txt"
python3 - "$device" >> "$out/env.txt" 2>&1 <<'EOF'
import sys
import torch, transformers
sys.path.insert(0, "bench")
from train_throughput import matmul_peak
print(f"torch {torch.__version__}, transformers {transformers.__version__}, cuda {torch.version.cuda}")
cuda = sys.argv[1] == "cuda"
print(f"bf16_matmul_flops {matmul_peak(8192 if cuda else 512, 10, sys.argv[1]):.4g}")
EOF
if command -v nvidia-smi > /dev/null; then
    nvidia-smi dmon -s u -d 5 -o T > "$out/dmon.txt" 2>&1 &
    dmon=$!
fi

python3 - "$work/bert-base" <<'EOF'
import sys
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification
BertForSequenceClassification(BertConfig(num_labels=2)).save_pretrained(sys.argv[1])
AutoTokenizer.from_pretrained("artifacts").save_pretrained(sys.argv[1])  # bert-base-uncased's vocabulary
EOF

train() {  # NAME MODEL FLAGS...
    local name=$1 model=$2
    shift 2
    # shellcheck disable=SC2086  # EXTRA is a list of flags
    python3 train.py --data "$data" --model "$model" --epochs 1 --device "$device" --no-progress \
        --output-dir "$work/$name" --checkpoint-dir "$work/$name-checkpoints" "$@" $EXTRA > "$out/$name.log" 2>&1 \
        || echo "$name failed, see $name.log" >> "$out/env.txt"
}
EXTRA=${EXTRA:-}
train minilm artifacts
train bert-base "$work/bert-base" --no-fairness
train minilm-b64 artifacts --batch-size 64 --max-steps 200 --no-fairness

python3 - "$work" "$out" <<'EOF'
import json, re, sys
from pathlib import Path
from transformers import AutoModelForSequenceClassification
sys.path.insert(0, "bench")
from train_throughput import flops_per_token
work, out = Path(sys.argv[1]), Path(sys.argv[2])
peak = float(re.search(r"bf16_matmul_flops (\S+)", (out / "env.txt").read_text()).group(1))
summary = {"bf16_matmul_peak_flops": peak, "runs": {}}
for name in ("minilm", "bert-base", "minilm-b64"):
    if not (work / name / "history.json").is_file():
        summary["runs"][name] = "failed"
        continue
    history = json.loads((work / name / "history.json").read_text())["epochs"][-1]
    resolved = json.loads((work / name / "training_config.json").read_text())
    metrics = json.loads((work / name / "metrics.json").read_text())
    model = AutoModelForSequenceClassification.from_pretrained(work / name)
    tokens = history["train_tokens_per_second"] * history["train_seconds"]
    seq_len = tokens / (history["step"] * resolved["config"]["batch_size"])
    summary["runs"][name] = {
        "runtime": resolved["runtime"], "sizes": resolved["sizes"], "steps": history["step"],
        "batch_size": resolved["config"]["batch_size"], "real_tokens": round(tokens),
        "mean_real_tokens_per_review": round(seq_len, 1), "train_seconds": round(history["train_seconds"], 2),
        "real_tokens_per_second": round(history["train_tokens_per_second"]),
        "share_of_bf16_peak": round(flops_per_token(model, seq_len) * history["train_tokens_per_second"] / peak,
                                    4),
        "wall_seconds": round(resolved["wall_seconds"], 1), "validation_accuracy": round(history["eval_accuracy"], 4),
        "test_accuracy": round(metrics["accuracy"], 4), "test_roc_auc": round(metrics["roc_auc"], 4)}
(out / "summary.json").write_text(json.dumps(summary, indent=2))
print(json.dumps(summary, indent=2))
EOF
date -u +"ended %FT%TZ" >> "$out/env.txt"
