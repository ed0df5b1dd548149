# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test benchmarks clean

# The venv is (re)built whenever the project or its pins change. constraints.txt pins every
# package for development and CI (torch==2.13.0 is the CPU build on this machine's disk).
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/lrtune demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

# Every section of benchmarks/RESULTS.md, each written by its own generator (benchmarks/README.md).
# Hours on a 2-core machine; every step caches its runs in benchmarks/out/, so a rerun after a
# change recomputes only what the change touched. One torch thread: cached numbers depend on it.
BENCH := nice -n 10 $(BIN)/python -m benchmarks
benchmarks: $(STAMP)
	$(BENCH).finder_benchmark
	$(BENCH).finder_heldout
	OMP_NUM_THREADS=1 $(BENCH).load_test
	$(BENCH).tune_benchmark --tasks digits,diabetes,mnist1d,charlm --seeds 0,1,2 --budgets 2,4 \
		--publish
	$(BENCH).suite --grids --publish
	$(BENCH).tune_benchmark --suite dev --methods lrtune-auto --budgets 2 --seeds 0,1,2,3,4 \
		--publish

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
