# Set-up and entry points. `make demo` and `make test` are the README's two commands.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow bench compare clean system-deps gpu-bundle

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,baselines,plots]'
	touch $(STAMP)

# The embedded corpus is synthesised with espeak-ng, flite, MBROLA (contrib), SVOX Pico
# (non-free), festival with three English voices, and sox (Debian/Ubuntu packages). On
# Debian the contrib and non-free components are enabled first when apt cannot find them
# (Ubuntu: the multiverse component).
SYSTEM_PACKAGES := espeak-ng sox flite mbrola mbrola-us1 mbrola-us2 mbrola-us3 mbrola-en1 libttspico-utils \
  festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts
CONTRIB_SOURCES := /etc/apt/sources.list.d/asrjax-contrib-non-free.sources
system-deps:
	@missing=0; for t in espeak-ng sox flite mbrola pico2wave festival; do command -v $$t >/dev/null || missing=1; done; \
	for v in english/kal_diphone english/ked_diphone us/cmu_us_slt_arctic_hts; do \
	  [ -d /usr/share/festival/voices/$$v ] || missing=1; done; \
	for v in us1 us2 us3 en1; do [ -e /usr/share/mbrola/$$v/$$v ] || missing=1; done; \
	if [ $$missing = 1 ]; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq; \
	  if ! apt-get install --dry-run -qq $(SYSTEM_PACKAGES) >/dev/null 2>&1; then \
	    if grep -qi ubuntu /etc/os-release; then $$SUDO add-apt-repository -y multiverse; \
	    else . /etc/os-release; printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: %s\nComponents: contrib non-free\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$$VERSION_CODENAME" \
	      | $$SUDO tee $(CONTRIB_SOURCES) >/dev/null; fi; \
	    $$SUDO apt-get update -qq; \
	  fi; \
	  $$SUDO apt-get install -y -qq $(SYSTEM_PACKAGES) \
	  || { echo "Could not install the synthesizers: enable Debian's contrib and non-free components (Ubuntu: multiverse), then run 'sudo apt-get install $(SYSTEM_PACKAGES)'"; exit 1; }; \
	fi

# The main job: build the embedded corpus (`full`, speech only), train ConvRNN-T on the CPU
# (28-minute budget), decode 800 test utterances and print their WER next to pocketsphinx's
# (~75 min on 2 cores from scratch).
demo: $(STAMP) system-deps
	$(PY) experiments/demo.py --data_dir=data/tfds --workdir=workdirs/demo

# Default test suite (JAX CPU backend, 8 fake devices; slow tests excluded), in two worker
# processes (pytest-xdist; a test file stays on one worker, so its module caches are built once).
PYTEST_WORKERS ?= 2
test: $(STAMP) system-deps
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile --durations=30

# Slow tests, including TFDS LibriSpeech mock data (needs TensorFlow: the `catalog` extra).
test-slow: $(STAMP) system-deps
	$(PY) -m pip install --quiet -e '.[test,baselines,plots,catalog]'
	$(PY) -m pytest -q -m slow --durations=20  # serial: the multi-host tests open local ports

bench: $(STAMP)
	$(PY) experiments/bench_rnnt_loss.py --sizes=cpu

# ConvRNN-T vs LSTM RNN-T, streaming Conformer, ContextNet (28 CPU minutes each + decoding).
compare: $(STAMP) system-deps
	$(PY) experiments/build_corpus.py --config=full --datasets=speech --data_dir=data/tfds
	$(PY) experiments/convrnnt_vs_baselines.py --variant=demo --data_dir=data/tfds --workdir_root=workdirs/compare

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis

# Wheels a plain CUDA JAX image lacks for experiments/gpu_rnnt_loss.sh (absl, pytest, hypothesis), cp312, into
# .gpu/whl (git-ignored; carried to the device machine).
gpu-bundle: $(STAMP)
	$(PY) -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
	  --platform manylinux2014_x86_64 -d .gpu/whl absl-py pytest pluggy iniconfig packaging hypothesis \
	  sortedcontainers attrs
