# syntax=docker/dockerfile:1
# One image per Wayline service, from this one file (ADR 44):
#   docker build --build-arg SERVICE=journeys -t wayline/journeys:dev .
# or all six, with the ports and labels filled in from the registry: `make images` (tools/images.py).
#
# The build context is the repository root (the uv workspace; .dockerignore beside this file is an
# allow-list). An image carries only wayline-$SERVICE, wayline-common and their locked third-party
# dependencies: chDB only in journeys, ONNX Runtime only in decision.

# One base for both stages: the venv's interpreter symlink points into it. Pin a digest for releases:
#   --build-arg PYTHON_IMAGE=python:3.11-slim@sha256:<digest>
ARG PYTHON_IMAGE=python:3.11-slim

# ---------------------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS build

ARG UV_VERSION=0.13.9
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/app/.venv

# A C compiler for ingest's fast path (wayline_ingest/_wire.c, ADR 13). Installed for every service, before
# SERVICE is declared, so the six builds share this layer; only the build stage has it. Unpinned: the
# compiler leaves nothing in the image, and the base image's Debian release fixes its version.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*

RUN pip install --no-cache-dir "uv==${UV_VERSION}"

WORKDIR /app

# 1. Workspace metadata only: uv reads every member's pyproject.toml to make sense of the one lock, so each
#    member of [tool.uv.workspace] has its line here (tests/deploy/test_images.py checks it). This layer
#    changes only when the lock or a pyproject.toml does, and is the same for all six services.
COPY pyproject.toml uv.lock ./
COPY services/common/pyproject.toml services/common/
COPY services/gateway/pyproject.toml services/gateway/
COPY services/ingest/pyproject.toml services/ingest/
COPY services/identity/pyproject.toml services/identity/
COPY services/journeys/pyproject.toml services/journeys/
COPY services/decision/pyproject.toml services/decision/
COPY services/orchestrator/pyproject.toml services/orchestrator/
COPY ml/pyproject.toml ml/
COPY cli/pyproject.toml cli/

# Declared here, not earlier: every layer above is shared by the six images.
ARG SERVICE
RUN if [ -z "${SERVICE}" ] || [ "${SERVICE}" = common ] || [ ! -f "services/${SERVICE}/pyproject.toml" ]; then \
      printf 'build argument SERVICE must name a service, one of:' >&2; \
      for member in services/*/; do \
        member="${member#services/}"; member="${member%/}"; \
        [ "${member}" = common ] || printf ' %s' "${member}" >&2; \
      done; \
      echo >&2; \
      exit 1; \
    fi

# 2. Third-party dependencies of wayline-$SERVICE alone (no workspace member yet).
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --no-install-workspace --package "wayline-${SERVICE}"

# 3. Our code: the shared kit and this service, installed as wheels (not editable), so the venv stands alone.
COPY services/common/ services/common/
COPY services/${SERVICE}/ services/${SERVICE}/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --package "wayline-${SERVICE}"

# The entrypoint: an exec-form ENTRYPOINT expands no build argument, so the service's module is written into
# a two-line launcher that execs `python -m wayline_$SERVICE` (the interpreter becomes PID 1 and receives
# SIGTERM itself).
RUN printf '#!/bin/sh\nexec /app/.venv/bin/python -m wayline_%s "$@"\n' "${SERVICE}" > /app/.venv/bin/wayline-service \
 && chmod 0755 /app/.venv/bin/wayline-service \
 && /app/.venv/bin/python -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('wayline_${SERVICE}.__main__') is None)"

# ---------------------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

ARG PYTHON_IMAGE
ARG SERVICE
# Filled in by tools/images.py from the registry and the service's pyproject.toml; a plain `docker build`
# without them still gives a working image, only with less metadata.
# PORTS: the ports the service listens on by default (gRPC, metrics, and the gateway's HTTP), space-separated.
ARG PORTS=""
ARG VERSION=""
ARG REVISION=""
ARG DESCRIPTION="Wayline ${SERVICE}"

LABEL org.opencontainers.image.title="wayline-${SERVICE}" \
      org.opencontainers.image.description="${DESCRIPTION}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.vendor="Wayline" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}"

# The gateway's nginx data plane (ADR 105, WAYLINE_GATEWAY_DATA_PLANE=nginx): nginx and its Lua module, in the
# gateway's image only. nginx runs as the container's user and writes only under the data dir. Unpinned, as
# the compiler above: the base image's Debian release fixes the versions.
# hadolint ignore=DL3008
RUN if [ "${SERVICE}" = gateway ]; then \
      apt-get update \
      && apt-get install -y --no-install-recommends nginx libnginx-mod-http-lua \
      && rm -rf /var/lib/apt/lists/*; \
    fi

RUN groupadd --system --gid 10001 wayline \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin wayline \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/wayline

# The venv stays owned by root: the service can read its code but never rewrite it. With bytecode compiled
# at build time and PYTHONDONTWRITEBYTECODE, nothing under /app is written at run time, so the root file
# system can be mounted read-only (the pods do); state goes to /var/lib/wayline, scratch files to /tmp.
COPY --from=build /app/.venv /app/.venv

ENV PATH="/app/.venv/bin:${PATH}" \
    VIRTUAL_ENV=/app/.venv \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONFAULTHANDLER=1 \
    HOME=/tmp \
    TMPDIR=/tmp \
    WAYLINE_DATA_DIR=/var/lib/wayline

WORKDIR /var/lib/wayline
USER 10001:10001

EXPOSE ${PORTS}

# The services drain on SIGTERM (health NOT_SERVING, in-flight calls finish within the shutdown grace).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/app/.venv/bin/wayline-service"]
