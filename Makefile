# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test test-main test-second test-ray lint benchmarks clean

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

# Two processes, one a core: the Ray tests mostly wait on Ray's processes, so the same job then
# runs the directories in SECOND that the main one skips, and the two end at about the same time
# (`make test` on a 2-core machine with a benchmark beside it: 345 s and 339 s; before the split
# the main job alone took 388 s). Each prints its output when it ends.
SECOND := tests/cli tests/docs tests/diagnostics
test: lint
	$(MAKE) --no-print-directory -j 2 --output-sync=target test-main test-second

test-main: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q $(addprefix --ignore=,$(SECOND))

test-second: test-ray
	$(BIN)/python -m pytest -q $(SECOND)

# The Ray tests start clusters of their own, one per module, each module in its own process: in
# one process with the rest of the suite an ObjectRef owner dies between modules.
test-ray: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q -m ray tests/study/test_ray.py
	$(BIN)/python -m pytest -q -m ray tests/integrations/test_ray_tune.py
	$(BIN)/python -m pytest -q -m ray tests/integrations/test_ray_executor.py
	$(BIN)/python -m pytest -q -m ray tests/docs/test_docs.py

# Every section of benchmarks/RESULTS.md, each written by its own generator (benchmarks/README.md).
# Hours on a 2-core machine; every step caches its runs in benchmarks/out/, so a rerun after a
# change recomputes only what the change touched. One torch thread: cached numbers depend on it.
BENCH := nice -n 10 $(BIN)/python -m benchmarks
benchmarks: $(VENV)/.installed-dev
	$(BENCH).finder_benchmark
	$(BENCH).finder_heldout
	OMP_NUM_THREADS=1 $(BENCH).finder_spread
	OMP_NUM_THREADS=1 $(BENCH).finder_spread --suite dev
	OMP_NUM_THREADS=1 $(BENCH).finder_spread --suite validation
	OMP_NUM_THREADS=1 $(BENCH).finder_probe --publish
	$(BENCH).finder_single_pass --publish
	OMP_NUM_THREADS=1 $(BENCH).load_test
	$(BENCH).tune_benchmark --tasks digits,diabetes,mnist1d,charlm --seeds 0,1,2 --budgets 2,4 \
		--publish
	$(BENCH).suite --grids --publish
	$(BENCH).tune_benchmark --suite dev --methods lrtune-auto --budgets 2 --seeds 0,1,2,3,4 \
		--publish
	OMP_NUM_THREADS=1 $(BENCH).diagnostics_benchmark --suite dev
	OMP_NUM_THREADS=1 $(BENCH).diagnostics_benchmark --suite validation
	$(BENCH).noise_floor --suite dev --publish
	$(BENCH).noise_floor --suite validation --publish
	$(BENCH).noise_floor --suite fresh --publish
	$(BENCH).tune_benchmark --suite fresh --methods lrtune-auto,optuna-tpe,random-search,\
		grid-search-phase,lrtune-bayes,lrtune-hyperband --budgets 4 \
		--budgets-of lrtune-auto=1.5,2,4 --budgets-of optuna-tpe=4,8 --seeds 0,1,2,3,4 \
		--score-estimates --publish
	$(BENCH).tune_benchmark --suite dev-constant --methods lrtune-auto,optuna-tpe --budgets 4 \
		--budgets-of lrtune-auto=1.5,2,4 --budgets-of optuna-tpe=4,8 --seeds 0,1,2,3,4 \
		--score-estimates --publish
	$(BENCH).noise_floor --suite dev-constant --publish
	$(BENCH).horizon --suite dev-constant --publish
	$(BENCH).horizon_carry --budget 1.5 --publish
	$(BENCH).horizon_carry --budget 2 --publish

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
