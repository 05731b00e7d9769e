#!/usr/bin/env bash
# Print the path of a uv binary, installing the pinned uv from PyPI first when none is on this machine.
# `make` calls this, so a fresh Debian with Python 3.11 needs nothing but the package registries.
set -euo pipefail
UV_VERSION="0.13.9"
if command -v uv >/dev/null 2>&1; then command -v uv; exit 0; fi
if [ -x "$HOME/.local/bin/uv" ]; then echo "$HOME/.local/bin/uv"; exit 0; fi
echo "uv not found: installing uv==$UV_VERSION from PyPI into ~/.local" >&2
if ! python3 -m pip --version >/dev/null 2>&1; then
  # Debian ships pip separately; as root we can add it.
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-pip >&2
  else
    echo "python3 -m pip is missing: install python3-pip, or uv itself (https://docs.astral.sh/uv/)" >&2
    exit 1
  fi
fi
# Debian's Python is "externally managed" (PEP 668); a --user install of one tool is what that allows for.
python3 -m pip install --quiet --user --break-system-packages "uv==$UV_VERSION" >&2 2>/dev/null \
  || python3 -m pip install --quiet --user "uv==$UV_VERSION" >&2
echo "$HOME/.local/bin/uv"
