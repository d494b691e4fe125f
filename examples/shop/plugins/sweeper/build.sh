#!/bin/sh
# Builds sweeper.wasm from app.py and the SDK of ../../../../sdk/python
# against the repository's wit/ (world `event-handler`) with the
# componentize-py of .venv, or else the one on PATH.
set -e
cd "$(dirname "$0")"
PATH="$PWD/.venv/bin:$PATH"
exec componentize-py -d ../../../../wit -w event-handler componentize -p . -p ../../../../sdk/python app -o sweeper.wasm
