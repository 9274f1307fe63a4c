# Set-up and entry points. `make demo` and `make test` are the README's two commands.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# The main job. Until the embedded corpus and models land it is the RNN-T loss benchmark.
demo: $(STAMP)
	$(PY) experiments/bench_rnnt_loss.py

# Default test suite (JAX CPU backend, 8 fake devices; slow tests excluded).
test: $(STAMP)
	$(PY) -m pytest -q

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

bench: $(STAMP)
	$(PY) experiments/bench_rnnt_loss.py --sizes=cpu

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
