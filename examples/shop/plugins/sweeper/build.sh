#!/bin/sh
# Builds sweeper.wasm from app.py against the repository's wit/ (world
# `event-handler`) with the componentize-py of .venv, or else the one on PATH.
set -e
cd "$(dirname "$0")"
PATH="$PWD/.venv/bin:$PATH"
exec componentize-py -d ../../../../wit -w event-handler componentize -p . app -o sweeper.wasm
