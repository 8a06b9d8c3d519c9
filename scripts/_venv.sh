# Sourced by scripts/demo and scripts/test: make .venv (Python 3.11+) and install the package into it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "jarvis-wallet needs Python 3.11 or newer (set PYTHON=/path/to/python3.11)" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# Quiet unless it fails; quick when everything is installed already.
if ! .venv/bin/python -m pip install --disable-pip-version-check -e '.[dev]' > .venv/install.log 2>&1; then
  cat .venv/install.log >&2
  echo "installing jarvis-wallet into .venv failed (log above)" >&2
  exit 1
fi
