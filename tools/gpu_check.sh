#!/usr/bin/env bash
# Every CUDA path of the project on one GPU, after `bash tools/install.sh`; prints one table and exits
# non-zero if any row failed (about 5-8 minutes on one GPU).
#   tools/gpu_check.sh              mmcv's CUDA ops against its CPU ops (RoIAlign, nms); the tiny CLIM /
#                                   F-ViT / BARON configs trained a few iterations and evaluated on CUDA
#                                   with --amp fp16 and bf16 and through tools/dist_train.sh CONFIG 1
#                                   (nccl); benchmarks/dense.py at 1024, clim_step.py with 1024 px mosaics
#                                   and batch 32, fvit_infer.py at 640 (images/s, peak GPU memory)
#   tools/gpu_check.sh --dry-run    the same steps on CPU at tiny sizes (a few minutes on 2 cores): the
#                                   fallback's kernels against mmcv's, --amp as bf16, gloo, tiny benchmarks
# GPU_CHECK_ALLOW_FALLBACK=1 accepts an mmcv without CUDA ops (torchvision's kernels then run nms /
# RoIAlign); by default that row fails, since the install should have built them.
# Logs and results stay in GPU_CHECK_DIR (default: a new temporary folder, printed at the end).
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_python.sh"

DRY_RUN=0
case "${1:-}" in
    "") ;;
    --dry-run) DRY_RUN=1 ;;
    *) echo "usage: $0 [--dry-run]" >&2; exit 2 ;;
esac
OUT=${GPU_CHECK_DIR:-$(mktemp -d -t clim-gpu-check.XXXXXX)}
mkdir -p "$OUT"
ROWS="$OUT/rows.tsv"
: >"$ROWS"
CHECK="$TOOLS_DIR/_gpu_check.py"
# _gpu_check.py builds its workspace with tests/helpers.py: the repository root is importable for it
export PYTHONPATH="$REPO_ROOT${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 OUT PYTHON TOOLS_DIR REPO_ROOT CHECK

# step NAME TIMEOUT_S COMMAND...: run COMMAND (log in $OUT/NAME.log); each of its output lines
# "status<TAB>result" is a row, and a non-zero exit without a FAIL row is one more.
step() {
    local name=$1 limit=$2 t0 rc rows line
    shift 2
    printf '[gpu_check %s] %s\n' "$(date +%H:%M:%S)" "$name" >&2
    t0=$(date +%s)
    # a bash child, so that the exported step functions below can run under timeout
    timeout "$limit" bash -c '"$@"' step "$@" >"$OUT/$name.log" 2>&1
    rc=$?
    rows=$(grep -P '^(ok|FAIL|n/a)\t' "$OUT/$name.log")
    if [[ $rc -ne 0 ]] && ! grep -q '^FAIL' <<<"$rows"; then
        [[ $rc -eq 124 ]] && line=$'FAIL\ttimed out after '"$limit"' s' || line=$'FAIL\texit '"$rc"': '"$(
            grep -v '^\s*$' "$OUT/$name.log" | tail -n 1 | cut -c1-150)"
        rows=$(printf '%s\n%s' "$rows" "$line")
    fi
    [[ -n "$rows" ]] || rows=$'ok\tdone'
    while IFS= read -r line; do
        [[ -n "$line" ]] && printf '%s\t%s\t%s\n' "$name" "$line" "$(( $(date +%s) - t0 ))" >>"$ROWS"
    done <<<"$rows"
}

# train NAME CONFIG EXPECT [train.py args...]: a few iterations + validation, then the run's row.
train_run() {
    local name=$1 config=$2 expect=$3
    shift 3
    local work="$OUT/work/$name"
    rm -rf "$work"
    if [[ "$expect" == nccl || "$expect" == gloo ]]; then
        PORT=$(( 20000 + RANDOM % 20000 )) bash "$TOOLS_DIR/dist_train.sh" "$config" 1 --work-dir "$work" "$@" \
            || return $?
    else
        "$PYTHON" "$TOOLS_DIR/train.py" "$config" --work-dir "$work" "$@" || return $?
    fi
    "$PYTHON" "$CHECK" run "$work" "$expect"
}
export -f train_run

if [[ $DRY_RUN == 1 ]]; then
    DEVICE=cpu
    export CUDA_VISIBLE_DEVICES="" OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MKL_NUM_THREADS=${MKL_NUM_THREADS:-1}
    BACKEND=gloo
else
    DEVICE=cuda
    BACKEND=nccl
    if ! "$PYTHON" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)'; then
        echo "gpu_check: torch sees no CUDA device here; run 'tools/gpu_check.sh --dry-run' on a CPU machine" >&2
        exit 1
    fi
fi

# tools/train.py --amp on a CPU may keep float32 where bf16 is slower: the check wants bf16.
CPU_BF16=()
grep -q -- "--cpu-amp" "$TOOLS_DIR/train.py" && CPU_BF16=(--cpu-amp bf16)
WS="$OUT/ws"
step workspace 300 "$PYTHON" "$CHECK" workspace "$WS"
step install-plan 120 bash -c "bash '$REPO_ROOT/tools/install.sh' --print-plan | tee /dev/stderr \
    | awk -F': ' '/^mmcv ops/ {ops=\$2} /^why/ {why=\$2} END {print \"ok\t\" ops \"; \" why}'" 
if [[ $DRY_RUN == 0 ]]; then
    step mmcv-build 120 "$PYTHON" -c "
import torch, mmcv
from clim.engine.mmcv_cuda_fallback import mmcv_has_cuda_ops
from mmcv.ops import get_compiling_cuda_version
gpu = f'{torch.cuda.get_device_name(0)} (sm {\".\".join(map(str, torch.cuda.get_device_capability(0)))})'
if mmcv_has_cuda_ops():
    print(f'ok\tmmcv {mmcv.__version__} with CUDA {get_compiling_cuda_version()} ops; {gpu}, torch {torch.__version__}')
else:
    import os
    status = 'ok' if os.environ.get('GPU_CHECK_ALLOW_FALLBACK') == '1' else 'FAIL'
    print(f\"{status}\tmmcv {mmcv.__version__} has no CUDA ops (torchvision's kernels stand in); {gpu}\")
"
fi
step mmcv-ops 300 "$PYTHON" "$CHECK" ops "$DEVICE"

# The tiny configs read their data relative to the working directory.
CLIM_DATA=(--cfg-options train_dataloader.dataset.data_root=data/shapes_clim/
           val_dataloader.dataset.data_root=data/shapes_clim/ test_dataloader.dataset.data_root=data/shapes_clim/)
declare -A CONFIGS=([clim]=configs/tiny/clim_tiny_shapes.py [fvit]=configs/tiny/fvit_tiny_shapes.py [baron]=configs/tiny/baron_kd_tiny_shapes.py)
pushd "$WS" >/dev/null || exit 1
for model in clim fvit baron; do
    config="$REPO_ROOT/${CONFIGS[$model]}"
    extra=()
    [[ $model == clim ]] && extra=("${CLIM_DATA[@]}")
    if [[ $DRY_RUN == 0 ]]; then
        # CLIM_DATA ends with --cfg-options values: the dtype joins them (one --cfg-options per command).
        step "$model-amp-fp16" 300 train_run "$model-fp16" "$config" fp16 --amp "${extra[@]}"
        if [[ $model == clim ]]; then
            step "$model-amp-bf16" 300 train_run "$model-bf16" "$config" bf16 --amp "${extra[@]}" \
                optim_wrapper.dtype=bfloat16
        else
            step "$model-amp-bf16" 300 train_run "$model-bf16" "$config" bf16 --amp \
                --cfg-options optim_wrapper.dtype=bfloat16
        fi
    else
        printf '%s\tn/a\tCPU: --amp means bf16 autocast (row below)\t0\n' "$model-amp-fp16" >>"$ROWS"
        step "$model-amp-bf16" 600 train_run "$model-bf16" "$config" bf16 --amp "${CPU_BF16[@]}" "${extra[@]}"
    fi
    step "$model-dist-$BACKEND" 600 train_run "$model-dist" "$config" "$BACKEND" "${extra[@]}"
done
popd >/dev/null || exit 1

TINY_VIT='{"embed_dim": 32, "vision_cfg": {"image_size": 64, "layers": 3, "width": 64, "head_width": 32,
 "patch_size": 16, "mlp_ratio": 2.0}, "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 64,
 "heads": 2, "layers": 2}}'
if [[ $DRY_RUN == 0 ]]; then
    DENSE=(--sizes 1024 --device cuda)
    CLIM_STEP=(--mosaic-size 1024 --batch 32 --device cuda)
    FVIT=(--size 640 --device cuda --skip-baseline)
else
    DENSE=(--model-cfg "$TINY_VIT" --sizes 128 --repeats 1 --warmup 0 --device cpu)
    CLIM_STEP=(--model-cfg "$TINY_VIT" --mosaic-size 128 --batch 32 --repeats 1 --warmup 0 --device cpu)
    FVIT=(--fvit-config "$REPO_ROOT/configs/tiny/fvit_tiny_shapes.py" --size 128 --repeats 1 --warmup 0 --device cpu
          --skip-baseline)
fi
bench() {  # bench NAME ARGS...: python -m benchmarks.NAME ARGS, then its row
    local name=$1
    shift
    (cd "$REPO_ROOT" && "$PYTHON" -m "benchmarks.$name" "$@" --out-dir "$OUT/bench-$name") || return $?
    "$PYTHON" "$CHECK" bench "$name" "$OUT/bench-$name"
}
export -f bench
step bench-dense 300 bench dense "${DENSE[@]}"
step bench-clim-step 300 bench clim_step "${CLIM_STEP[@]}"
step bench-fvit-infer 300 bench fvit_infer "${FVIT[@]}"

mode=$([[ $DRY_RUN == 1 ]] && echo "dry run on CPU" || echo "$("$PYTHON" -c 'import torch; print(torch.cuda.get_device_name(0))')")
echo
echo "tools/gpu_check.sh: $mode, $(date -u +%Y-%m-%dT%H:%MZ)"
"$PYTHON" - "$ROWS" <<'PY'
import sys
rows = [line.rstrip('\n').split('\t') for line in open(sys.argv[1]) if line.strip()]
head = ('check', 'status', 'result', 's')
widths = [max(len(head[i]), *(len(r[i]) for r in rows)) for i in range(4)]
print('| ' + ' | '.join(h.ljust(w) for h, w in zip(head, widths)) + ' |')
print('|' + '|'.join('-' * (w + 2) for w in widths) + '|')
for r in rows:
    print('| ' + ' | '.join(c.ljust(w) for c, w in zip(r, widths)) + ' |')
PY
failed=$(awk -F'\t' '$2 == "FAIL"' "$ROWS" | wc -l)
echo "logs: $OUT"
if [[ $failed -gt 0 ]]; then
    echo "gpu_check: $failed check(s) failed" >&2
    exit 1
fi
