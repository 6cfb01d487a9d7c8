#!/usr/bin/env bash
# Issue #13.2's GPU check in one command, for a session lent a GPU machine (an H200 here): install
# what its image lacks from carried wheels (it has no network), run the CUDA tests, then print
# every figure of `bench/score.py --device cuda --pairs 500 --size 1024`.
#
#   bash bench/gpu_check.sh fetch     # first, where PyPI answers: the wheels into .whl/ (12 MB)
#   device run: command "bash bench/gpu_check.sh", carry [".whl"], timeout_s 540
#
# The image (the device tool's KINDS.md) holds torch, torchvision, timm, transformers, scipy,
# pyarrow, pandas, OpenCV, matplotlib, scikit-image and pytest; what it lacks is WHEELS below
# (openai-clip has no wheel on PyPI: it is built here; setuptools < 81 because openai-clip imports
# pkg_resources, which 81 removed, as the eval extra's pin says). Budget: about a minute of install and
# tests, then the bench (GPU: 500 pairs, pyiqa's way timed on PYIQA_PAIRS and scaled); PAIRS,
# SIZE and PYIQA_PAIRS shrink it if a first try runs long. Prints what it ran and how long it took.
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=(pyiqa==0.1.16 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 ftfy==6.3.1 wcwidth==0.9.4
        facexlib==0.3.0 addict==2.4.0 setuptools==80.9.0)
PY=${PYTHON:-python3}

if [ "${1:-}" = fetch ]; then
    mkdir -p .whl
    grep -qx "/.whl/" .git/info/exclude 2>/dev/null || echo "/.whl/" >> .git/info/exclude
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        --platform any -d .whl "${WHEELS[@]}"
    "$PY" -m pip wheel -q --no-deps openai-clip==1.0.1 -w .whl
    ls -la .whl
    exit 0
fi

start=$(date +%s)
SITE=${SITE:-/tmp/ggt-site}
OUTDIR=${OUT:-/tmp}
ls .whl/*.whl >/dev/null || { echo "gpu_check: no .whl/ here: run 'bash bench/gpu_check.sh fetch' and carry .whl"; exit 2; }
# --no-deps: the image's torch (a CUDA build) and the rest stay as they are.
"$PY" -m pip install -q --no-index --no-deps --no-compile --target "$SITE" .whl/*.whl
"$PY" -m pip install -q --no-index --no-deps --no-compile --no-build-isolation --target "$SITE" .
export PYTHONPATH=$SITE HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 MPLBACKEND=Agg
"$PY" - <<'EOF'
import os, torch, torchvision, pyiqa, datasets, pyarrow
print(f"python {os.sys.version.split()[0]}, torch {torch.__version__}, torchvision {torchvision.__version__}, "
      f"pyiqa {pyiqa.__version__}, datasets {datasets.__version__}, pyarrow {pyarrow.__version__}; "
      f"GPU: {torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none'}; "
      f"{len(os.sched_getaffinity(0))} cores")
EOF
echo "gpu_check: installed in $(( $(date +%s) - start )) s; the CUDA tests:"
# Bit-equality of the pinned/side-stream uploads with the CPU conversion; CPU and CUDA scores agree.
"$PY" -m pytest -q -p no:cacheprovider tests/test_eval_scoring.py tests/test_eval_correctness.py \
    -k "cuda or pinned or nvjpeg" 2>&1 | tail -n 5
echo "gpu_check: tests done at $(( $(date +%s) - start )) s; the bench:"
set -x
"$PY" bench/score.py --device cuda --pairs "${PAIRS:-500}" --size "${SIZE:-1024}" \
    --pyiqa-pairs "${PYIQA_PAIRS:-25}" --json "$OUTDIR/gpu_figures.json" 2>&1 | grep -v -i warn
set +x
echo "gpu_check: $(( $(date +%s) - start )) s in all; figures in $OUTDIR/gpu_figures.json"
