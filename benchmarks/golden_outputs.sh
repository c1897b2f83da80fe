#!/usr/bin/env bash
# Record the outputs a refactoring must not change, into folder $1; run it before and after, then diff:
#   bash benchmarks/golden_outputs.sh /tmp/before   (on the old commit)
#   bash benchmarks/golden_outputs.sh /tmp/after    (on the new one)
#   diff -r /tmp/before/json /tmp/after/json; diff <(sed 's/"wall": [0-9.]*//' /tmp/before/runs/copy-s0.metrics200) ...
# It writes: compile --emit json/summary/dot of every example, `check` of the error corpus, and for three
# training runs (one thread, float32) the first 200 metrics lines and `eval --json`.
set -euo pipefail
OUTD=$(realpath -m "$1")
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
mkdir -p $OUTD/json $OUTD/runs
for f in examples/*.nram; do
  b=$(basename $f .nram)
  nramdsl compile $f --emit json > $OUTD/json/$b.json 2>&1 || echo "rc=$?" >> $OUTD/json/$b.json
  nramdsl compile $f --emit summary > $OUTD/json/$b.summary 2>&1 || true
  nramdsl compile $f --emit dot > $OUTD/json/$b.dot 2>&1 || true
done
# error corpus
for f in tests/bad_specs/*.nram; do
  b=$(basename $f .nram)
  (cd tests/bad_specs && nramdsl check $(basename $f) > $OUTD/json/bad_$b.txt 2>&1; echo "rc=$?" >> $OUTD/json/bad_$b.txt) || true
done
for spec in "access 0" "copy 0" "swap 6"; do
  set -- $spec
  python - <<PY
import torch; torch.set_num_threads(1)
import sys
from nramdsl.cli import main
sys.exit(main(["train", "examples/$1.nram", "--seed", "$2", "--out", "$OUTD/runs/$1-s$2", "--no-eval"]))
PY
  python - <<PY > $OUTD/runs/$1-s$2.eval.json
import torch; torch.set_num_threads(1)
import sys
from nramdsl.cli import main
sys.exit(main(["eval", "$OUTD/runs/$1-s$2", "--json"]))
PY
  head -200 $OUTD/runs/$1-s$2/metrics.jsonl > $OUTD/runs/$1-s$2.metrics200
done
echo done
