#!/usr/bin/env bash
# By hand only, never in CI: creates <repo>/.venv-torch with PyTorch + transformers (CPU use) for
# producing reference outputs (tools/make_transformers_references.py). Prints the python path last.
#
#   tools/venv-torch.sh                      torch from PyPI (CUDA build) + the CUDA runtime it links
#   TORCH_WHEEL=/path/torch-X+cpu-...whl tools/venv-torch.sh   a local CPU-only wheel instead
#
# PyPI's Linux torch wheel is the CUDA build, and libtorch.so lists a dozen CUDA libraries as
# DT_NEEDED, so `import torch` fails on a CPU-only machine without them, GPU or not. The set below
# is the smallest that imports and runs (found by removal, measured 2026-11): it leaves out torch's
# other Linux dependencies (triton, cuda-bindings, cusolver, nvjitlink, cccl, nvtx), which only
# GPU kernels, torch.compile or CUDA linear algebra load, so pip's complaints that they are missing
# are expected. Download ~2.2 GB, installed ~3.9 GB, ~6 min here.
# PyTorch's own CPU index (download.pytorch.org) is not reachable from here; a CPU wheel, where
# one is at hand, is ~190 MB and needs none of the NVIDIA packages.
set -euo pipefail

readonly TORCH="torch==2.15.0"
readonly NVIDIA_RUNTIME="nvidia-cublas==13.4.1.3 nvidia-cuda-cupti==13.2.86 nvidia-cuda-nvrtc==13.2.86
    nvidia-cuda-runtime==13.2.86 nvidia-cudnn-cu13==9.26.0.51 nvidia-cufft==12.2.0.57
    nvidia-cufile==1.17.1.22 nvidia-cusparse==12.7.10.12 nvidia-cusparselt-cu13==0.8.1
    nvidia-nccl-cu13==2.30.7 nvidia-nvshmem-cu13==3.7.2"
readonly TORCH_PURE_DEPS="filelock typing-extensions>=4.13.0 sympy>=1.13.3 networkx>=2.5.1 jinja2 fsspec>=0.8.5"
readonly HF="numpy==2.4.6 safetensors==0.8.0 transformers==5.23.0"

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="$repo/.venv-torch"
pip() { "$venv/bin/python" -m pip install --disable-pip-version-check --no-input --quiet "$@" >&2; }

mkdir -p "$repo/.cache"
exec 9>"$repo/.cache/venv-torch.lock"
flock 9

if ! "$venv/bin/python" -c 'import torch, transformers' 2>/dev/null; then
    start=$(date +%s)
    python3 -m venv "$venv"
    # --no-deps: torch's declared Linux dependencies pull the full CUDA toolkit and triton
    # shellcheck disable=SC2086 # the package lists are word lists on purpose
    if [[ -n "${TORCH_WHEEL:-}" ]]; then
        pip --no-deps "$TORCH_WHEEL"
    else
        pip --no-deps "$TORCH" $NVIDIA_RUNTIME
    fi
    # shellcheck disable=SC2086
    pip $TORCH_PURE_DEPS $HF
    echo "venv-torch.sh: installed in $(( $(date +%s) - start )) s" >&2
fi

"$venv/bin/python" - >&2 <<'PY'
import torch
assert float(torch.ones(2) @ torch.ones(2)) == 2.0
print(f"venv-torch.sh: torch {torch.__version__} imports and runs on CPU ({torch.get_num_threads()} threads)")
PY
echo "$venv/bin/python"
