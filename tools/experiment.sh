#!/usr/bin/env bash
# The evidence experiment (issue 14), resumable by cells: see tools/experiment.py --help.
#   bash tools/experiment.sh [--quick] [--jobs 2] [--seeds 0,1,2] [--split-seed 0] [--list]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec python3 tools/experiment.py "$@"
