# Set-up and entry points. `make demo` and `make test` are the README's two commands.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow bench compare clean system-deps

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,baselines]'
	touch $(STAMP)

# espeak-ng, flite, festival (with three English voices) and sox synthesise the embedded
# corpus (Debian/Ubuntu packages).
SYSTEM_PACKAGES := espeak-ng sox flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts
system-deps:
	@if ! command -v espeak-ng >/dev/null || ! command -v sox >/dev/null || ! command -v flite >/dev/null \
	    || ! command -v text2wave >/dev/null || [ ! -d /usr/share/festival/voices/english/ked_diphone ] \
	    || [ ! -d /usr/share/festival/voices/english/kal_diphone ] \
	    || [ ! -d /usr/share/festival/voices/us/cmu_us_slt_arctic_hts ]; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq $(SYSTEM_PACKAGES) \
	  || { echo "Could not install the synthesizers: run 'sudo apt-get install $(SYSTEM_PACKAGES)'"; exit 1; }; \
	fi

# The main job: build the embedded corpus (`full`, speech only), train ConvRNN-T on the CPU
# (28-minute budget), decode 800 test utterances and print their WER next to pocketsphinx's
# (~75 min on 2 cores from scratch).
demo: $(STAMP) system-deps
	$(PY) experiments/demo.py --data_dir=data/tfds --workdir=workdirs/demo

# Default test suite (JAX CPU backend, 8 fake devices; slow tests excluded).
test: $(STAMP) system-deps
	$(PY) -m pytest -q

# Slow tests, including TFDS LibriSpeech mock data (needs TensorFlow: the `catalog` extra).
test-slow: $(STAMP) system-deps
	$(PY) -m pip install --quiet -e '.[test,baselines,catalog]'
	$(PY) -m pytest -q -m slow

bench: $(STAMP)
	$(PY) experiments/bench_rnnt_loss.py --sizes=cpu

# ConvRNN-T vs LSTM RNN-T, streaming Conformer, ContextNet (28 CPU minutes each + decoding).
compare: $(STAMP) system-deps
	$(PY) experiments/build_corpus.py --config=full --datasets=speech --data_dir=data/tfds
	$(PY) experiments/convrnnt_vs_baselines.py --variant=demo --data_dir=data/tfds --workdir_root=workdirs/compare

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
