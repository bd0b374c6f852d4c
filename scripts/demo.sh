#!/usr/bin/env bash
# STRIDE demo: the six CLIs chained on real ERA5 2 m temperature over the UK.
# Each step is a plain command; copy them into an sbatch script (prefix `apptainer run --nv IMAGE.sif`).
#   OUT    output folder (default demo-out)
#   QUICK  1 = smoke budget (< 3 min), 0 = demo budget (< 15 min on 2 CPU cores)
#   STRIDE_DATA  folder with era5_uk_t2m_2019-03.nc (default ../shared/data)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-demo-out}
QUICK=${QUICK:-0}
export STRIDE_DATA=${STRIDE_DATA:-../shared/data}
if [ "$QUICK" = 1 ]; then
  TRAIN=(--set training.steps=150 --set training.val_every=75 --set optim.warmup_steps=20)
  GENERATE=(--members 4 --steps 10 --set date_stride=12)
else
  TRAIN=()
  GENERATE=()
fi
mkdir -p "$OUT"
start=$SECONDS
step() { echo; echo "== $* [$((SECONDS - start)) s]"; "$@"; }

step stride-data build --config configs/era5_uk.yaml --out "$OUT/dataset.zarr"
step stride-stats --dataset "$OUT/dataset.zarr" --out "$OUT/stats.parquet"
step stride-train --config configs/train_era5_uk.yaml --dataset "$OUT/dataset.zarr" --stats "$OUT/stats.parquet" \
  --out "$OUT/checkpoint" "${TRAIN[@]}"
step stride-generate --config configs/generate_era5_uk.yaml --checkpoint "$OUT/checkpoint" \
  --dataset "$OUT/dataset.zarr" --out "$OUT/samples.zarr" "${GENERATE[@]}"
step stride-eval --samples "$OUT/samples.zarr" --out "$OUT/metrics.parquet"
step stride-plot --samples "$OUT/samples.zarr" --metrics "$OUT/metrics.parquet" --out "$OUT/plots"

echo
echo "STRIDE demo finished in $((SECONDS - start)) s. Wrote:"
for item in dataset.zarr stats.parquet checkpoint samples.zarr metrics.parquet plots mlflow.db mlartifacts; do
  printf '  %-40s %s\n' "$OUT/$item" "$(du -sh "$OUT/$item" | cut -f1)"
done
ls "$OUT"/plots/*.png | sed 's/^/    /'
echo
echo "Compare the runs of the whole chain in MLflow:"
echo "  $(command -v mlflow || echo mlflow) ui --backend-store-uri sqlite:///$(cd "$OUT" && pwd)/mlflow.db"
