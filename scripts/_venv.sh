# Sourced by the scripts in this folder: make sure .venv exists and holds the
# project with its dev and docs extras, reinstalling only when pyproject.toml changed.
# BENTO_TRACK_VENV names another virtual environment, PYTHON the interpreter
# that creates it (.ci/run makes one per supported Python this way).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${BENTO_TRACK_VENV:-$ROOT/.venv}"
PYTHON_BIN="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
    echo "bento-track: creating virtual environment in $VENV" >&2
    "$PYTHON_BIN" -m venv "$VENV"
fi
STAMP="$VENV/.bento-track-installed"
if [ ! -f "$STAMP" ] || [ "$ROOT/pyproject.toml" -nt "$STAMP" ]; then
    echo "bento-track: installing the project and its dev tools into $VENV" >&2
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -e "$ROOT[${BENTO_TRACK_EXTRAS:-dev,docs}]"
    touch "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
cd "$ROOT"
