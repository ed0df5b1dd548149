# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint clean

# One venv; each stamp records which extras are installed in it and is rebuilt whenever the
# project or its pins change. constraints.txt pins every package for development and CI
# (torch==2.13.0 is the CPU build on this machine's disk). The demo needs the package and its
# built-in tasks only; the tests need every integration's framework and the linters (`dev`).
$(VENV)/.installed-%: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[$*]'
	touch $@

demo: $(VENV)/.installed-tasks
	$(BIN)/lrtune demo

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check lrtune tests benchmarks examples
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
