#!/usr/bin/env bash
# The device check (issue 7) on a GPU machine: install the carried wheels, then run device_check.py.
#
#   bash benchmarks/device_check.sh fetch     # here, where PyPI is reachable: kornia + kornia_rs wheels for
#                                             # the GPU machine's Python 3.12 into .whl/ (git-ignored)
#   bash benchmarks/device_check.sh [ARGS]    # there (device tool: run, carry [".whl"]); ARGS go to the script
#
# The GPU machine has torch, torchvision, OpenCV, pandas, ... but no kornia and no network: the
# wheels travel in .whl/. Without them the sections that need kornia are skipped with a line saying so.
# Output: device_check.json, device_check.md and device_check.log in $OUT (else the working directory).
set -u
cd "$(dirname "$0")/.." || exit 2
PY=${PYTHON:-python3}
KORNIA=${KORNIA_VERSION:-0.9.0}
KORNIA_RS=${KORNIA_RS_VERSION:-0.2.0}

if [ "${1:-}" = fetch ]; then
  mkdir -p .whl
  if [ -d .git/info ] && ! grep -qx '/.whl/' .git/info/exclude 2>/dev/null; then echo '/.whl/' >> .git/info/exclude; fi
  exec "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "kornia==$KORNIA" "kornia_rs==$KORNIA_RS"
fi

if ! "$PY" -c "import kornia" 2>/dev/null; then
  if compgen -G ".whl/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
      && export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}" \
      || echo "device_check.sh: installing the carried wheels failed; sections that need kornia will be skipped"
  else
    echo "device_check.sh: kornia is missing and no wheels were carried (.whl/): sections that need it are skipped." \
         "Run 'bash benchmarks/device_check.sh fetch' where PyPI is reachable and carry .whl"
  fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
out=${OUT:-.}
set -o pipefail
"$PY" benchmarks/device_check.py "$@" 2>&1 | tee "$out/device_check.log"
