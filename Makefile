# `make run` and `make test` set everything up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
# The CPU build; override (e.g. TORCH_SPEC='torch==2.13.0 --index-url ...') for CUDA.
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-slow lint clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q $(TORCH_SPEC)
	$(PY) -m pip install -q -e '.[test,serve]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/mypt

test: $(STAMP)
	$(PY) -m pytest -q

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow || test $$? -eq 5  # 5: no slow tests collected

# the layers (import-linter, contracts in pyproject.toml) and the lint (ruff: pyflakes, pycodestyle, import order)
lint: $(STAMP)
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/ruff check --no-cache .

clean:
	rm -rf $(VENV) build *.egg-info
