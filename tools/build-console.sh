#!/usr/bin/env bash
# Build the journey console (console/, ADR 0052) into the gateway's package data,
# services/gateway/src/wayline_gateway/console/static/ (or the folder given as --outdir DIR; the other
# arguments go to console/build.mjs); with --test, runs the console's unit tests (console/test/, node --test)
# instead of building. Installs the locked npm packages first (`npm ci`, from
# console/package-lock.json) unless console/node_modules already holds exactly them.
# `make console` calls it; so does tests/console/test_bundle.py, which builds into a temporary folder and
# compares the output with the committed bundle.
set -euo pipefail
cd "$(dirname "$0")/../console"
# The test suite runs files on several worker processes (ADR 62) and three of them call this script: two
# `npm ci` at once into one node_modules delete each other's files. One holds the lock while it checks and
# installs; the others wait, then find node_modules current. (flock is util-linux, on every Debian.)
exec 9>.npm-ci.lock
flock 9
if ! command -v npm >/dev/null 2>&1; then
  # Debian ships npm (with node) as a package; as root we can add it (as ensure-kustomize.sh does).
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm >&2
  else
    echo "npm is missing: install npm (Debian: apt-get install npm) to build the console" >&2
    exit 1
  fi
fi
# npm records what it installed in node_modules/.package-lock.json; newer than the lock file means current.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "installing the console's locked npm packages (npm ci)" >&2
  npm ci --no-audit --no-fund --loglevel=error >&2
fi
flock --unlock 9
if [ "${1:-}" = --test ]; then
  exec node --test test/
fi
exec node build.mjs "$@"
