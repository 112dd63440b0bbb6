#!/usr/bin/env bash
# Install linetwin and its Python dependencies into the current Python (3.11+).
#   EXTRAS=dev scripts/setup.sh   also installs the test and lint tools.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "linetwin needs Python 3.11 or newer" >&2; exit 1; }
# The CPU build of torch, pinned before anything that pulls torch (an unpinned one brings GBs of CUDA).
"$PYTHON" -m pip install --quiet --disable-pip-version-check "torch==2.13.0"
"$PYTHON" -m pip install --quiet --disable-pip-version-check -e ".${EXTRAS:+[$EXTRAS]}"
