#!/usr/bin/env bash
# Regenerate deploy/docker/constraints.txt: install ctxfy with the extras the image installs
# (redis and otlp, as in the Dockerfile) into a fresh Python 3.13 virtual environment (the
# image's Python) and record every installed version.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3.13}
venv=$(mktemp -d "${TMPDIR:-/tmp}/ctxfy-constraints.XXXXXX")
trap 'rm -rf "$venv"' EXIT
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q ".[redis,otlp]"
out=deploy/docker/constraints.txt
{
    sed -n '/^#/p' "$out"
    "$venv/bin/python" -m pip freeze --exclude ctxfy --exclude pip
} >"$out.new"
mv "$out.new" "$out"
echo "wrote $out ($(grep -vc '^#' "$out") packages)"
