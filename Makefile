# The one command surface: humans and CI use these targets.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help run test lint format migrate bench clean

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "hubcost needs Python 3.11 or newer")'
	@test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP) ## migrate and serve on http://127.0.0.1:8080 (embedded PostgreSQL, demo data unless sources are set)
	HUBCOST_DATA_DIR=$${HUBCOST_DATA_DIR:-$(CURDIR)/var} $(BIN)/hubcost run

test: $(STAMP) ## run the whole test suite
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(STAMP) ## ruff check and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP) ## apply ruff's formatting and fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

migrate: $(STAMP) ## bring the database to the current schema
	HUBCOST_DATA_DIR=$${HUBCOST_DATA_DIR:-$(CURDIR)/var} $(BIN)/hubcost migrate

bench: $(STAMP) ## run the benchmarks and print the figures
	$(BIN)/python -m bench.run $(BENCH_ARGS)

clean: ## remove the virtualenv and the embedded database
	rm -rf $(VENV) var
