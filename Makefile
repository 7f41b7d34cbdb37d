# Everything runs from .venv, created on first use and re-synced when pyproject.toml or
# constraints.txt changes. `make test` is the single command that checks everything.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ARGS ?=

.PHONY: venv run demo lint typecheck test lock

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

run: venv  ## the service; an embedded redis-server when HOLDSVC_REDIS_URL is unset
	$(BIN)/holdsvc serve $(ARGS)

demo: venv  ## a sample restaurant in the running service
	$(BIN)/holdsvc demo $(ARGS)

lint: venv
	$(BIN)/ruff check
	$(BIN)/ruff format --check

typecheck: venv
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest -q $(ARGS)

# Pin exactly what the venv holds; never an index, URL or the project itself.
lock: venv
	{ echo "# Exact versions for 'pip install -c constraints.txt'; regenerate with 'make lock'."; \
	  $(BIN)/python -m pip freeze --exclude-editable | grep -viE '^(-|#|holdsvc==)|@|://'; \
	} > constraints.txt.tmp
	mv constraints.txt.tmp constraints.txt
	touch $(STAMP)
