#!/bin/sh
# Builds {{wasm}} from app.py against wit/ (world `{{world}}`) with the
# componentize-py of .venv, or else the one on PATH.
set -e
cd "$(dirname "$0")"
PATH="$PWD/.venv/bin:$PATH"
exec componentize-py -d wit -w {{world}} componentize -p . app -o {{wasm}}
