#!/usr/bin/env bash
# Idempotent installer for the pinned clim-ovd stack (called by `make install`).
#
# Creates .venv, installs torch + the OpenMMLab stack, and builds mmcv 2.1.0 with its
# compiled ops from the PyPI sdist (no wheel exists for torch 2.14). The built wheel is
# cached outside the repo, keyed by mmcv/torch/CUDA, so later installs take seconds.
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

# Fast path: nothing changed since the last successful install.
stamp_src=$( (echo "$OPENMMLAB"; cat requirements/*.txt setup.py tools/install.sh) | sha256sum | cut -c1-16)
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

# mmcv: cached wheel or a build from the sdist.
if "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null \
    && command -v nvcc >/dev/null; then
    variant="cu$("$PY" -c 'import torch; print(torch.version.cuda.replace(".", ""))')"
    export FORCE_CUDA=1
else
    variant=cpu
fi
wheel_dir="$CACHE/wheels/$MMCV_DIST-$MMCV_VERSION-torch$TORCH_VERSION-$variant"
if ! "$PY" -c "import mmcv, mmcv.ops, sys; sys.exit(0 if mmcv.__version__ == '$MMCV_VERSION' else 1)" 2>/dev/null; then
    if ! ls "$wheel_dir"/*mmcv-*.whl >/dev/null 2>&1; then
        say "no cached mmcv wheel in $wheel_dir: building $MMCV_DIST $MMCV_VERSION ($variant ops, $MAX_JOBS jobs, ~10 min on 2 cores)"
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
        (cd "$src" && MMCV_WITH_OPS=1 "$PY" -m pip wheel --no-deps --no-build-isolation -w "$build/dist" . )
        mkdir -p "$wheel_dir"
        cp "$build"/dist/*mmcv-*.whl "$wheel_dir/"
        rm -rf "$build"
        pip_install "setuptools>=77"
        say "mmcv build took $(( $(date +%s) - b0 )) s; wheel cached in $wheel_dir"
    else
        say "using cached mmcv wheel from $wheel_dir"
    fi
    pip_install --no-deps "$wheel_dir"/*mmcv-*.whl
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
