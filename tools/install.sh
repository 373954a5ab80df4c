#!/usr/bin/env bash
# Idempotent installer for the pinned clim-ovd stack (called by `make install`).
#
# Creates .venv, installs torch + the OpenMMLab stack, and builds mmcv 2.1.0 with its
# compiled ops from the PyPI sdist (no wheel exists for torch 2.14). The built wheel is
# cached outside the repo, keyed by mmcv/torch/CUDA/GPU architecture, so later installs take seconds.
#
# On a machine where torch sees a GPU, mmcv gets CUDA ops for that GPU's architecture only
# (tools/_mmcv_build_plan.py decides: nvcc of torch's CUDA version from the system, else from
# NVIDIA's PyPI wheels); when that cannot work it says why and builds CPU ops, and mmcv's nms /
# RoIAlign on CUDA tensors then run torchvision's kernels (clim/engine/mmcv_cuda_fallback.py).
#   tools/install.sh                 install (MMCV_CUDA=0: CPU ops only; MMCV_CUDA=1: CUDA ops or fail)
#   tools/install.sh --print-plan    print the mmcv build decision for this machine; installs nothing
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
PYTHON=${PYTHON:-python3.11}
VENV=${VENV:-$ROOT/.venv}
CACHE=${CLIM_OVD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/clim-ovd}
TORCH_VERSION=2.14.1
# upstream: mmengine 0.10.7 / mmcv 2.1.0 / mmdet 3.3.0; onedl: the maintained forks (README explains).
OPENMMLAB=${OPENMMLAB:-upstream}
case "$OPENMMLAB" in
    # mmcv 2.1.0's setup.py breaks on setuptools>=70; onedl-mmcv's pyproject needs a modern one.
    upstream) MMCV_DIST=mmcv; MMCV_VERSION=2.1.0; MMCV_SETUPTOOLS="setuptools<70" ;;
    onedl) MMCV_DIST=onedl-mmcv; MMCV_VERSION=2.3.6; MMCV_SETUPTOOLS="setuptools>=77" ;;
    *) echo "install: OPENMMLAB must be 'upstream' or 'onedl', not '$OPENMMLAB'" >&2; exit 2 ;;
esac
REQS=(-r requirements/runtime.txt -r "requirements/openmmlab-$OPENMMLAB.txt" -r requirements/dev.txt -r requirements/bench.txt)
MAX_JOBS=${MAX_JOBS:-$(nproc)}
export MAX_JOBS PIP_DISABLE_PIP_VERSION_CHECK=1

say() { printf '[install %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
t0=$(date +%s)

case "${1:-}" in
    "") ;;
    --print-plan)
        plan_python="$VENV/bin/python"
        [[ -x "$plan_python" ]] || plan_python=$PYTHON
        exec "$plan_python" tools/_mmcv_build_plan.py ;;
    *) echo "usage: $0 [--print-plan]" >&2; exit 2 ;;
esac

# Fast path: nothing changed since the last successful install.
stamp_src=$( (echo "$OPENMMLAB"; cat requirements/*.txt setup.py tools/install.sh tools/_mmcv_build_plan.py) | sha256sum | cut -c1-16)
stamp="$VENV/.clim-ovd-installed-$stamp_src"
if [[ -f "$stamp" ]] && "$VENV/bin/python" -c "import mmcv.ops, mmdet, open_clip, clim, ovdet" 2>/dev/null; then
    say "up to date ($VENV); nothing to do"
    exit 0
fi

if [[ ! -x "$VENV/bin/python" ]]; then
    say "creating virtual environment $VENV with $($PYTHON --version)"
    "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
# This machine's pip config lists local index folders; pip warns about every package absent there.
pip_install() {
    "$PY" -m pip install --quiet "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}
pip_install --upgrade pip wheel

say "installing torch==$TORCH_VERSION, torchvision and the runtime pins"
pip_install "torch==$TORCH_VERSION" "torchvision==0.29.1" "setuptools>=77"

# mmcv: cached wheel or a build from the sdist (CPU ops, plus CUDA ops where the plan allows).
plan_sh=$("$PY" tools/_mmcv_build_plan.py --shell)
eval "$plan_sh"
if [[ "${MMCV_CUDA:-auto}" == 1 && "$plan_variant" == cpu ]]; then
    echo "install: MMCV_CUDA=1 but mmcv cannot get CUDA ops here: $plan_reason. $plan_advice" >&2
    exit 1
fi

build_mmcv() {  # $1: the wheel folder to fill; FORCE_CUDA / CUDA_HOME in the environment pick the ops
    local out=$1 b0 build src
    b0=$(date +%s)
    build=$(mktemp -d)
    # The build's setuptools pin (see above); restored to torch's requirement right after.
    pip_install "$MMCV_SETUPTOOLS" 2>&1 | grep -v "requires setuptools" || true
    pip_install ninja
    "$PY" -m pip download --quiet --no-deps --no-binary :all: --no-build-isolation \
        -d "$build" "$MMCV_DIST==$MMCV_VERSION"
    tar -xzf "$build"/*.tar.gz -C "$build"
    src=$(find "$build" -mindepth 1 -maxdepth 1 -type d -name '*mmcv-*' | head -n 1)
    # torch 2.14's headers need C++20; the sdist asks for c++14/c++17.
    sed -i -E 's/-std=c\+\+1[47]/-std=c++20/g' "$src/setup.py"
    grep -q 'c++20' "$src/setup.py" || { echo "install: could not patch the C++ standard in $src/setup.py" >&2; exit 1; }
    (cd "$src" && MMCV_WITH_OPS=1 "$PY" -m pip wheel ${MMCV_PIP_VERBOSE:+-v} --no-deps --no-build-isolation \
        -w "$build/dist" . )
    mkdir -p "$out"
    cp "$build"/dist/*mmcv-*.whl "$out/"
    rm -rf "$build"
    pip_install "setuptools>=77"
    say "mmcv build took $(( $(date +%s) - b0 )) s; wheel cached in $out"
}

# nvcc and the CUDA headers from NVIDIA's PyPI wheels (the versions torch's cuda-toolkit pins), into the
# venv beside torch's CUDA libraries; plus the two things that layout lacks next to a CUDA install:
# targets/<arch>-linux (where nvcc.profile looks for the CCCL headers) and the unversioned libcudart.so
# the extension links.
prepare_pypi_cuda() {
    local targets
    if [[ ! -x "$plan_nvcc" ]]; then
        say "installing nvcc and CUDA headers from PyPI: $plan_pypi_requirement"
        pip_install "$plan_pypi_requirement"
    fi
    case "$(uname -m)" in aarch64) targets=sbsa-linux ;; *) targets="$(uname -m)-linux" ;; esac
    mkdir -p "$plan_cuda_home/targets/$targets"
    ln -sfn ../../include "$plan_cuda_home/targets/$targets/include"
    ln -sfn ../../lib "$plan_cuda_home/targets/$targets/lib"
    if [[ ! -e "$plan_cuda_home/lib/libcudart.so" ]]; then
        ln -s "$(basename "$(ls "$plan_cuda_home"/lib/libcudart.so.* | head -n 1)")" "$plan_cuda_home/lib/libcudart.so"
    fi
    "$plan_nvcc" --version | grep -q "release $("$PY" -c 'import torch; print(torch.version.cuda)')," \
        || { echo "install: $plan_nvcc is not torch's CUDA version" >&2; return 1; }
}

mmcv_installed() {  # the pinned mmcv is installed, with CUDA ops if the plan has them
    "$PY" -c "import mmcv, mmcv.ops, sys; sys.exit(0 if mmcv.__version__ == '$MMCV_VERSION' and ('$plan_variant' == 'cpu' or mmcv.ops.get_compiling_cuda_version() != 'not available') else 1)" 2>/dev/null
}

cpu_wheel_dir="$CACHE/wheels/$MMCV_DIST-$MMCV_VERSION-torch$TORCH_VERSION-cpu"
wheel_dir="$CACHE/wheels/$MMCV_DIST-$MMCV_VERSION-torch$TORCH_VERSION-$plan_variant"
if ! mmcv_installed; then
    if [[ "$plan_variant" != cpu ]] && ! ls "$wheel_dir"/*mmcv-*.whl >/dev/null 2>&1; then
        say "mmcv with CUDA ops: $plan_reason"
        say "building $MMCV_DIST $MMCV_VERSION for TORCH_CUDA_ARCH_LIST=$plan_arch_list, $plan_max_jobs jobs (CPU + CUDA ops; minutes)"
        mkdir -p "$CACHE/logs"
        log="$CACHE/logs/mmcv-build-$plan_variant.log"
        set +e
        (
            set -e
            if [[ "$plan_nvcc_source" == pypi ]]; then prepare_pypi_cuda; fi
            export FORCE_CUDA=1 CUDA_HOME="$plan_cuda_home" TORCH_CUDA_ARCH_LIST="$plan_arch_list" \
                MAX_JOBS="$plan_max_jobs" MMCV_PIP_VERBOSE=1 PATH="$plan_cuda_home/bin:$PATH"
            # torch's CUDA headers include cuBLAS / cuSPARSE / cuSOLVER headers, which a compiler-only
            # toolkit lacks: torch's own CUDA wheels have them (gcc, also under nvcc, reads CPATH)
            if [[ -n "$plan_extra_include" ]]; then export CPATH="$plan_extra_include${CPATH:+:$CPATH}"; fi
            build_mmcv "$wheel_dir"
        ) 2>&1 | tee "$log"
        cuda_rc=${PIPESTATUS[0]}
        set -e
        if [[ $cuda_rc -ne 0 ]]; then
            rm -rf "$wheel_dir"
            grep -E "error|Error|ERROR" "$log" | grep -v "^ *warning" | tail -n 15 >&2 || true
            echo "install: the CUDA build of mmcv failed (exit $cuda_rc; full log: $log)." >&2
            echo "install: to retry with another toolkit, set CUDA_HOME to a CUDA $(
                "$PY" -c 'import torch; print(torch.version.cuda)') install; MMCV_CUDA=0 skips the CUDA build." >&2
            if [[ "${MMCV_CUDA:-auto}" == 1 ]]; then exit 1; fi
            say "continuing with CPU ops: mmcv's nms / RoIAlign on CUDA tensors will run torchvision's kernels"
            plan_variant=cpu
            wheel_dir=$cpu_wheel_dir
        fi
    fi
    if ! ls "$wheel_dir"/*mmcv-*.whl >/dev/null 2>&1; then
        say "no cached mmcv wheel in $wheel_dir: building $MMCV_DIST $MMCV_VERSION (cpu ops, $MAX_JOBS jobs, ~10 min on 2 cores)"
        if [[ "$plan_gpu" == 1 ]]; then
            [[ -n "$plan_advice" ]] && say "note: $plan_reason; $plan_advice"
            # mmcv's setup.py compiles CUDA ops whenever torch sees a GPU: hide it for the CPU build.
            CUDA_VISIBLE_DEVICES="" build_mmcv "$wheel_dir"
        else
            build_mmcv "$wheel_dir"
        fi
    else
        say "using cached mmcv wheel from $wheel_dir"
    fi
    if [[ "$plan_gpu" == 1 ]]; then
        # a GPU machine may hold a CPU-ops mmcv of the same version: replace it
        pip_install --no-deps --force-reinstall "$wheel_dir"/*mmcv-*.whl
    else
        pip_install --no-deps "$wheel_dir"/*mmcv-*.whl
    fi
fi

say "installing the $OPENMMLAB OpenMMLab packages, open_clip and the rest"
# mmcv's own dependencies come with the rest (not right after its --no-deps wheel, where pip would
# report mmengine and opencv as missing).
pip_install "${REQS[@]}" addict packaging pyyaml yapf
pip_install --no-deps -e .

"$PY" - <<'PY'
import torch, mmcv, mmcv.ops, mmengine, mmdet, open_clip
print(f"[install] torch {torch.__version__} (cuda: {torch.cuda.is_available()}), "
      f"mmcv {mmcv.__version__}, mmengine {mmengine.__version__}, mmdet {mmdet.__version__}, "
      f"open_clip {open_clip.__version__}")
PY
rm -f "$VENV"/.clim-ovd-installed-*
touch "$stamp"
say "done in $(( $(date +%s) - t0 )) s"
