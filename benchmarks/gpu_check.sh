#!/usr/bin/env bash
# The GPU check, one script: CUDA tests, then the machine and training benchmarks on CUDA and on the CPU.
#
#     bash benchmarks/gpu_check.sh [OUT_DIR]        # default OUT_DIR = gpu-check/
#
# Needs a CUDA build of torch and a GPU; takes about 3 minutes on an H100 host. Writes into OUT_DIR:
#   cuda_tests.log          pytest tests/test_cuda.py (CUDA against the CPU and the integer machine)
#   bench_machine_*.jsonl   benchmarks/bench_machine.py on cuda and on cpu (ms per timestep, fwd+bwd)
#   bench_train.jsonl       benchmarks/bench_train.py: training steps/s and examples/s per device and batch
#   bench_population.jsonl  benchmarks/bench_population.py --device cuda: seed-steps/s of populations up to 4,096
set -uo pipefail
out=${1:-gpu-check}
mkdir -p "$out"
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
py=${PYTHON:-python3}

"$py" - <<'EOF' | tee "$out/device.txt"
import platform, torch
print("python", platform.python_version(), "torch", torch.__version__, "cuda", torch.version.cuda)
print("gpu", torch.cuda.get_device_name() if torch.cuda.is_available() else "none", "cpu threads", torch.get_num_threads())
EOF

"$py" -m pytest -q -p no:cacheprovider tests/test_cuda.py 2>&1 | tee "$out/cuda_tests.log" | tail -3

"$py" benchmarks/bench_machine.py --device cuda --sizes 16 64 256 | tee "$out/bench_machine_cuda.jsonl"
"$py" benchmarks/bench_machine.py --device cpu --sizes 16 64 256 | tee "$out/bench_machine_cpu.jsonl"

for spec in copy swap listk; do
  "$py" benchmarks/bench_train.py --spec "examples/$spec.nram" --devices cuda --batch 32 256 2048 --steps 20
  "$py" benchmarks/bench_train.py --spec "examples/$spec.nram" --devices cpu --batch 32 256 --steps 10 --threads 1
done | tee "$out/bench_train.jsonl"

for spec in copy swap; do
  "$py" benchmarks/bench_population.py --spec "examples/$spec.nram" --device cuda --population 1 64 256 1024 4096 --steps 10
done | tee "$out/bench_population.jsonl"
