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
# A machine that is not kept loses OUT: with ARCHIVE=DIR every finished run's small files (results.json,
# metrics.csv, config.yaml, predictions.csv, ...; no checkpoints) are copied to DIR/<same path> after
# each step, so `report --runs DIR/demo-sN/runs` works from the archive (the repository keeps one in
# benchmarks/results/proxy-trends). STUDY_PART=archive only copies.
set -euo pipefail
OUT=${1:-proxy-trends}
PART=${STUDY_PART:-all}
ARCHIVE=${ARCHIVE:+$(mkdir -p "$ARCHIVE" && cd "$ARCHIVE" && pwd)}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
mkdir -p "$OUT"
cd "$OUT"

archive() {
  [ -n "$ARCHIVE" ] || return 0
  find . -path ./'*'/data -prune -o -name results.json -print | while read -r result; do
    run=$(dirname "$result")
    # trained accuracies repeat only on the same CPU type: note the machine of each run archived
    [ -f "$ARCHIVE/$run/results.json" ] || printf '%s\t%s\t%s\n' "${run#./}" "$(date -u +%F)" \
      "$(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc --all) CPUs, OMP_NUM_THREADS=$OMP_NUM_THREADS" \
      >> "$ARCHIVE/machines.tsv"
    mkdir -p "$ARCHIVE/$run"
    find "$run" -maxdepth 1 -type f ! -name '*.lock' -exec cp -p {} "$ARCHIVE/$run/" \;
    [ -f "$(dirname "$run")/leaderboard.csv" ] && cp -p "$(dirname "$run")/leaderboard.csv" "$ARCHIVE/$(dirname "$run")/"
  done
  for f in fig8-steps.csv demo-tables.md table5.md; do [ -f "$f" ] && cp -p "$f" "$ARCHIVE/"; done
  # the data's identity (digest of the per-image sha256 in each low-light manifest): same digest, same bytes
  for manifest in demo-s*/data/lowlight/manifest.csv; do
    [ -f "$manifest" ] || continue
    python - "$manifest" "$ARCHIVE/data-digests.tsv" <<'PY'
import hashlib, sys
import pandas as pd
manifest, table = sys.argv[1], sys.argv[2]
m = pd.read_csv(manifest)
digest = {col: hashlib.sha256("".join(m[col].astype(str)).encode()).hexdigest()[:16] for col in ("src_sha256", "dst_sha256")}
line = f"{manifest.split('/')[0]}\t{len(m)} images\tclear {digest['src_sha256']}\tlow-light {digest['dst_sha256']}\n"
try:
    known = open(table).read()
except FileNotFoundError:
    known = ""
if line not in known:
    open(table, "a").write(line)
PY
  done
  return 0
}
trap archive EXIT

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
  archive) exit 0 ;;
  demo) demos ;;
  table5) table5 ;;
  all) demos; table5 ;;
  *) echo "STUDY_PART must be demo, table5, all or archive, got $PART" >&2; exit 2 ;;
esac

if [ "$PART" = all ]; then
  lldif-bench report --runs demo-s0/runs --runs demo-s1/runs --runs demo-s2/runs --table all --format md \
    --out demo-tables.md
  lldif-bench report --runs t5 --table 5 --format md --out table5.md
  echo "wrote $OUT/demo-tables.md, $OUT/table5.md, $OUT/fig8-steps.csv"
fi
