#!/bin/bash
# The Shelf runs of docs/shelf.md, in order, on the CPU (1 thread each): root net, then
# (a) ssl_a -> eval 450-600, (b) ssl_b -> eval 300-600, (c) synthetic -> eval 300-600,
# then the PCP table. Usage: bash training/shelf/reproduce.sh [SHELF_DATA_DIR]
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1
D=${1:-../shared/data/shelf}
PY=${PY:-.venv/bin/python}
T() { nice -n 19 $PY -m app.commands.train_shelf --config shelf_$1 --out runs/shelf/$1 --set data=$D --set log_every=50 > runs/shelf/$1.out 2>&1 || exit 1; }
E() { nice -n 19 $PY -m app.cli eval shelf --checkpoint runs/shelf/$1/model.pt --gt $D --frames $2 \
        --save-predictions runs/shelf/$1/preds.npz --metrics runs/shelf/$1/metrics.json > runs/shelf/$1.eval.out 2>&1 || exit 1; }
mkdir -p runs/shelf
[ -f runs/shelf/rootnet/model.pt ] || T rootnet
T ssl_a; E ssl_a 450-600
T ssl_b; E ssl_b 300-600
T synthetic; E synthetic 300-600
$PY -m training.shelf.report runs/shelf
