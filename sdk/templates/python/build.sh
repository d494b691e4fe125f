#!/bin/sh
# Builds {{wasm}} from app.py and the SDK in corral/ against wit/ (world
# `{{world}}`) with the componentize-py of .venv, or else the one on PATH.
# The pure-Python packages of requirements-plugin.txt, if any, are
# installed into .deps/ and built in.
set -e
cd "$(dirname "$0")"
PATH="$PWD/.venv/bin:$PATH"
if [ -s requirements-plugin.txt ]; then
    pip install --quiet --disable-pip-version-check --no-compile --target .deps -r requirements-plugin.txt
    exec componentize-py -d wit -w {{world}} componentize -p . -p .deps app -o {{wasm}}
fi
exec componentize-py -d wit -w {{world}} componentize -p . app -o {{wasm}}
