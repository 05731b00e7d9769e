#!/usr/bin/env bash
# Print the path of a uv binary, installing the pinned uv from PyPI first when none is on this machine.
# `make` calls this, so a fresh Debian with Python 3.11 needs nothing but the package registries.
set -euo pipefail
UV_VERSION="0.13.9"
if command -v uv >/dev/null 2>&1; then command -v uv; exit 0; fi
if [ -x "$HOME/.local/bin/uv" ]; then echo "$HOME/.local/bin/uv"; exit 0; fi
echo "uv not found: installing uv==$UV_VERSION from PyPI into ~/.local" >&2
python3 -m pip install --quiet --user "uv==$UV_VERSION" >&2 \
  || python3 -m pip install --quiet --user --break-system-packages "uv==$UV_VERSION" >&2
echo "$HOME/.local/bin/uv"
