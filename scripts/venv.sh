# Sourced by scripts/demo and scripts/test: a project virtualenv in .venv, created on first use.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
