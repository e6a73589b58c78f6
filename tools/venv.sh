#!/usr/bin/env bash
# Creates <repo>/.venv with the pinned Python packages the tools and interop tests need, and prints
# the venv's python path as the last stdout line. Idempotent and safe to run concurrently: tests in
# parallel processes all call it, so creation is serialised with flock and a stamp file written
# last marks a complete install (a killed install is redone, never half-trusted).
set -euo pipefail

readonly REQUIREMENTS="numpy==2.4.6 safetensors==0.8.0 onnx==1.23.2 onnxruntime==1.32.0 sympy==1.14.0"

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="$repo/.venv"
stamp="$venv/.hd-requirements"
python=${PYTHON:-python3}

mkdir -p "$repo/.cache"
exec 9>"$repo/.cache/venv.lock"
flock 9

if [[ ! -x "$venv/bin/python" || "$(cat "$stamp" 2>/dev/null)" != "$REQUIREMENTS" ]]; then
    if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        echo "venv.sh: need Python >= 3.11 as '$python' (numpy 2.4 requires it); set PYTHON=..." >&2
        exit 1
    fi
    log=$(mktemp "$repo/.cache/venv-log.XXXXXX")
    trap 'rm -f "$log"' EXIT
    rm -f "$stamp"
    # shellcheck disable=SC2086 # REQUIREMENTS is a word list on purpose
    if ! { "$python" -m venv "$venv" &&
           "$venv/bin/python" -m pip install --disable-pip-version-check --no-input $REQUIREMENTS; } >"$log" 2>&1; then
        cat "$log" >&2
        echo "venv.sh: creating $venv with '$REQUIREMENTS' failed (log above)" >&2
        exit 1
    fi
    echo "$REQUIREMENTS" >"$stamp"
fi

echo "$venv/bin/python"
