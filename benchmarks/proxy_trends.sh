#!/usr/bin/env bash
# The paper's trends on the synthetic proxy (issue 17 item 4), as commands anyone can rerun:
#   * `lldif-bench demo --methods resnet18,lldif` for seeds 0, 1, 2 (each seed its own data and runs);
#   * Table 5 (LLDif V1-V4, `cpu` run config) on demo seed 0's low-light data, seeds 0, 1, 2;
#   * Fig. 8: accuracy vs diffusion steps T = 1, 2, 4, 8 on demo seed 0's low-light LLDif run;
#   * the tables, mean ± sample std over seeds with n.
# Every step resumes: run it again after an interruption and finished runs are kept. On the 2-core CPU
# machine one LLDif run takes 30-60 min (one thread), so the whole study is many hours; run two copies
# with different STUDY_PART values to use both cores:
#   STUDY_PART=demo  bash benchmarks/proxy_trends.sh OUT   # the three demos, then Fig. 8
#   STUDY_PART=table5 bash benchmarks/proxy_trends.sh OUT  # Table 5 (needs demo seed 0's data first)
#   bash benchmarks/proxy_trends.sh OUT                    # everything in turn, then the tables
set -euo pipefail
OUT=${1:-proxy-trends}
PART=${STUDY_PART:-all}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
mkdir -p "$OUT"
cd "$OUT"

demos() {
  for seed in 0 1 2; do
    lldif-bench --seed "$seed" demo --methods resnet18,lldif --out "demo-s$seed" --no-progress
  done
  lldif-bench sweep steps --run demo-s0/runs/lldif-synthetic-low-light-s0 --steps 1,2,4,8 --out fig8-steps.csv
}

table5() {
  until [ -f demo-s0/data/lowlight/dataset.json ] && [ -f demo-s0/data/lowlight/landmarks.npz ]; do
    echo "waiting for demo seed 0's data (demo-s0/data/lowlight)"; sleep 60
  done
  lldif-bench reproduce --table 5 --data demo-s0/data/lowlight --lldif-config cpu --seeds 0,1,2 --runs t5 \
    --no-measure --run-args "--no-progress"
}

case "$PART" in
  demo) demos ;;
  table5) table5 ;;
  all) demos; table5 ;;
  *) echo "STUDY_PART must be demo, table5 or all, got $PART" >&2; exit 2 ;;
esac

if [ "$PART" = all ]; then
  lldif-bench report --runs demo-s0/runs --runs demo-s1/runs --runs demo-s2/runs --table all --format md \
    --out demo-tables.md
  lldif-bench report --runs t5 --table 5 --format md --out table5.md
  echo "wrote $OUT/demo-tables.md, $OUT/table5.md, $OUT/fig8-steps.csv"
fi
