# gentrain: `make run` installs and starts the service (embedded default); `make test` installs
# and runs the tests (they need PostgreSQL and Redis on 127.0.0.1, see README).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: install run test test-fast lint check-deploy compose-smoke bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[train,dev]'
	touch $@

install: $(VENV)/.installed

run: install
	$(BIN)/gentrain up

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: install
	$(BIN)/python -m pytest -m "not e2e" $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy services shared workers

# docker-compose files, Dockerfile, start scripts and Kubernetes manifests, checked statically.
check-deploy:
	bash deploy/install-checkers.sh
	bash deploy/check.sh

# The compose stack for real: builds the image, starts docker-compose.yml on CI stand-ins for the
# registry images, runs the README's compose quickstart and two failures (root; deploy/ci/).
compose-smoke:
	bash deploy/ci/compose-smoke.sh

bench: install
	$(BIN)/python bench/api_load.py

clean:
	rm -rf $(VENV) gentrain-data .pytest_cache .mypy_cache .ruff_cache
