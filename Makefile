# SLA Support Suite — the two commands are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: run test run-distributed lint openapi bench clean help

help:
	@echo "make run               start the suite, embedded (SQLite, in-process bus) on :8080"
	@echo "make test              run every test (unit, service, contract, integration, e2e)"
	@echo "make run-distributed   each service as gunicorn + worker on RabbitMQ/PostgreSQL/Redis"
	@echo "make openapi           regenerate contracts/openapi/*.json from the code"
	@echo "make lint              ruff"
	@echo "make bench             benchmarks into bench/results/"

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing the suite and its pinned dependencies into $(VENV) ..."
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@# Byte-compiled once here, so no process compiles its sources at every start
	@# (environments that set PYTHONDONTWRITEBYTECODE never keep what they compile).
	@$(BIN)/python -m compileall -q -j 0 $(VENV)/lib shared services >/dev/null || true
	@rm -f $(VENV)/.installed-* && touch $@

run: $(STAMP)
	@$(BIN)/slactl run

run-distributed: $(STAMP)
	@$(BIN)/slactl run --distributed

test: $(STAMP)
	@$(BIN)/python -m pytest

lint: $(STAMP)
	@$(BIN)/ruff check .

openapi: $(STAMP)
	@$(BIN)/python -m services.openapi write

bench: $(STAMP)
	@$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var .pytest_cache
