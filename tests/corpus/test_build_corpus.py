"""The corpus launcher's refusals: unknown config, missing espeak-ng/sox (short, no unrelated chained errors)."""

import os
import subprocess
import sys

import pytest

from asrjax.corpus import espeak_corpus, system_tools

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_launcher(*args, path=None, data_dir):
  env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
  if path is not None:
    env["PATH"] = path
  return subprocess.run([sys.executable, os.path.join(ROOT, "experiments", "build_corpus.py"), *args,
                         f"--data_dir={data_dir}"], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)


def _assert_short(result, message):
  assert result.returncode == 1, result
  lines = result.stderr.strip().splitlines()
  assert lines == [message], result.stderr  # one line: no traceback, no chained ImportError
  assert "Traceback" not in result.stderr and "tensorflow" not in result.stderr


def test_unknown_config_lists_the_valid_ones_and_the_closest(tmp_path):
  result = run_launcher("--config=tinny", data_dir=tmp_path / "tfds")
  _assert_short(result, "build_corpus: unknown corpus config 'tinny': choose one of tiny|small|full. "
                        "Did you mean 'tiny'?")
  result = run_launcher("--config=huge", data_dir=tmp_path / "tfds")
  _assert_short(result, "build_corpus: unknown corpus config 'huge': choose one of tiny|small|full.")
  assert not (tmp_path / "tfds").exists()


def test_missing_espeak_ng_is_one_line_with_the_install_command(tmp_path):
  empty = tmp_path / "bin"
  empty.mkdir()  # PATH without espeak-ng or sox
  result = run_launcher("--config=tiny", "--corpus=espeak", path=str(empty), data_dir=tmp_path / "tfds")
  _assert_short(result, "build_corpus: espeak-ng and sox are not installed; the embedded corpus is synthesised "
                        "with espeak-ng and sox. Install with `sudo apt-get install espeak-ng sox` (Debian/Ubuntu) "
                        "or `make system-deps`.")
  assert not (tmp_path / "tfds").exists()  # refused before anything was written


def test_missing_synthesizers_are_one_line_with_every_package(tmp_path):
  empty = tmp_path / "bin"
  empty.mkdir()
  result = run_launcher("--config=tiny", path=str(empty), data_dir=tmp_path / "tfds")
  _assert_short(result, "build_corpus: espeak-ng, flite, mbrola, pico2wave, festival and sox are not "
                        "installed; the embedded corpus is synthesised with espeak-ng, flite, mbrola, pico, festival "
                        "and sox. Install with `sudo apt-get install espeak-ng flite mbrola mbrola-us1 mbrola-us2 "
                        "mbrola-us3 mbrola-en1 libttspico-utils festival festvox-kallpc16k festvox-kdlpc16k "
                        "festvox-us-slt-hts sox` (Debian/Ubuntu (mbrola and its voices are in Debian's contrib "
                        "component, libttspico-utils in non-free; Ubuntu: multiverse)) or `make system-deps`.")
  assert not (tmp_path / "tfds").exists()


@pytest.mark.parametrize("missing,packages", [
    (("flite",), "flite"),
    (("festival",), "festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts"),
    (("mbrola",), "mbrola mbrola-us1 mbrola-us2 mbrola-us3 mbrola-en1"),
    (("pico2wave",), "libttspico-utils"),
    (("flite", "sox"), "flite sox"),
])
def test_the_synth_builder_checks_its_synthesizers_before_writing(tmp_path, monkeypatch, missing, packages):
  real = system_tools.shutil.which
  monkeypatch.setattr(system_tools.shutil, "which", lambda tool: None if tool in missing else real(tool) or "/x")
  builder = espeak_corpus.SynthSpeech(config="tiny", data_dir=str(tmp_path / "tfds"), num_workers=1)
  with pytest.raises(RuntimeError, match=rf"^{' and '.join(missing)} (is|are) not installed; .*espeak-ng, flite, "
                                         rf"mbrola, pico, festival and sox\. Install with `sudo apt-get install {packages}`"):
    builder.download_and_prepare(file_format="array_record")
  assert not (tmp_path / "tfds" / "synth_speech").exists()


@pytest.mark.parametrize("missing", [("espeak-ng",), ("sox",)])
def test_the_builder_itself_checks_the_tools_before_writing(tmp_path, monkeypatch, missing):
  real = system_tools.shutil.which
  monkeypatch.setattr(system_tools.shutil, "which", lambda tool: None if tool in missing else real(tool) or "/x")
  builder = espeak_corpus.EspeakSpeech(config="tiny", data_dir=str(tmp_path / "tfds"), num_workers=1)
  with pytest.raises(RuntimeError, match=rf"^{missing[0]} is not installed; .*apt-get install {missing[0]}`") as e:
    builder.download_and_prepare(file_format="array_record")
  assert e.value.__context__ is None and e.value.__cause__ is None  # no unrelated chained exception
  assert not (tmp_path / "tfds" / "espeak_speech").exists()


def test_builder_configs_and_workers_are_checked():
  with pytest.raises(ValueError, match=r"unknown corpus config 'Smal': choose one of tiny\|small\|full\. "
                                       r"Did you mean 'small'\?"):
    espeak_corpus.EspeakSpeech(config="Smal")
  with pytest.raises(ValueError, match=r"num_workers must be None \(all cores\) or an integer >= 1; got 0"):
    espeak_corpus.EspeakSpeech(config="tiny", num_workers=0)
  assert espeak_corpus.check_config("full") == "full"
