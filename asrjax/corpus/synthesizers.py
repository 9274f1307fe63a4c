"""The offline English synthesizer families of the corpus and the voices each one ships.

Five families install from Debian's packages: espeak-ng (formant synthesis by rule: no
recorded talker), flite (CMU's diphone and clustergen voices, built from recordings
of real talkers), festival (diphone voices and an HTS voice, also built from
recordings) -- all three in ``main`` -- and, from ``contrib`` / ``non-free``, MBROLA
(diphone databases of four English talkers, driven by espeak-ng's phonemes) and SVOX
Pico (``pico2wave``: a US and a British English voice). A `BaseVoice` is one voice of
a family; its ``talker`` names the
person whose recordings it was built from, which several voices share across families:
flite's ``kal``/``kal16`` and festival's ``kal_diphone`` come from the same diphone
recordings, flite's ``slt`` and festival's ``cmu_us_slt_arctic_hts`` from the same CMU
ARCTIC talker. The corpus plan (`asrjax.corpus.corpus_plan`) uses the talkers to keep
a held-out family's people out of training, not just its voice names.

Every family is checked before a build the way espeak-ng's variants are: the program
must be installed (else the apt-get command) and must list each voice the plan uses,
since festival's ``text2wave`` exits 0 with the default voice when asked for a voice
it does not have.

`render_wav(text, speaker)` returns the synthesizer's own WAV bytes (its native rate);
`asrjax.corpus.synthesis` resamples and applies the speaker's and condition's effects.

References:
  Black and Lenzo, "Flite: a small fast run-time synthesis engine", SSW 2001;
  Black and Taylor, "The Festival speech synthesis system", 1997; Zen et al., "The HMM-based
  speech synthesis system (HTS) version 2.0", SSW 2007; Kominek and Black, "The CMU
  Arctic speech databases", SSW 2004.
"""

from __future__ import annotations

import atexit
import dataclasses
import functools
import os
import re
import shutil
import subprocess
import tempfile
from typing import TYPE_CHECKING

from asrjax.corpus import system_tools

if TYPE_CHECKING:
  from asrjax.corpus import speakers as speakers_lib

FAMILIES = ("espeak-ng", "flite", "mbrola", "pico", "festival")


@dataclasses.dataclass(frozen=True)
class BaseVoice:
  """One voice a synthesizer ships.

  Attributes:
    family: one of `FAMILIES`.
    name: the synthesizer's name for it (``flite -voice NAME``, festival's ``voice_NAME``,
      espeak-ng's ``mb-NAME``, ``pico2wave -l NAME``).
    talker: the person recorded to build it (``""`` for rule-based espeak-ng).
    gender: "female" | "male".
    accent: the closest accent of `asrjax.corpus.speakers.ACCENTS` (its region places the
      speakers drawn from this voice).
    native_pitch: the synthesizer can set this voice's mean f0 itself.
    native_rate: the synthesizer can stretch this voice's durations itself (else sox ``tempo``).
    f0_hz: the voice's own median f0, measured on a test sentence.
  """

  family: str
  name: str
  talker: str
  gender: str
  accent: str
  native_pitch: bool
  native_rate: bool
  f0_hz: float

  @property
  def key(self) -> str:
    return f"{self.family}:{self.name}"


VOICES: dict[str, tuple[BaseVoice, ...]] = {
    "flite": (
        BaseVoice("flite", "kal", "kal", "male", "en-us", True, True, 95.0),
        BaseVoice("flite", "kal16", "kal", "male", "en-us", True, True, 95.0),
        BaseVoice("flite", "awb", "awb", "male", "en-gb-scotland", True, True, 132.0),
        BaseVoice("flite", "rms", "rms", "male", "en-us", False, True, 104.0),
        BaseVoice("flite", "slt", "slt", "female", "en-us", True, True, 174.0),
    ),
    # MBROLA through espeak-ng (``-v mb-us1``): espeak-ng sets the rate; its pitch scale is
    # not in Hz, so the pitch moves only with the formant shift.
    "mbrola": (
        BaseVoice("mbrola", "us1", "mbrola-us1", "female", "en-us", False, True, 193.0),
        BaseVoice("mbrola", "us2", "mbrola-us2", "male", "en-us", False, True, 101.0),
        BaseVoice("mbrola", "us3", "mbrola-us3", "male", "en-us", False, True, 99.0),
        BaseVoice("mbrola", "en1", "mbrola-en1", "male", "en-gb", False, True, 101.0),
    ),
    # Pico's ``<pitch level>`` / ``<speed level>`` markup (percent of the voice's own).
    "pico": (
        BaseVoice("pico", "en-US", "pico-en-US", "female", "en-us", True, True, 168.0),
        BaseVoice("pico", "en-GB", "pico-en-GB", "female", "en-gb", True, True, 168.0),
    ),
    "festival": (
        BaseVoice("festival", "kal_diphone", "kal", "male", "en-us", True, True, 107.0),
        BaseVoice("festival", "ked_diphone", "ked", "male", "en-us", True, True, 107.0),
        BaseVoice("festival", "cmu_us_slt_arctic_hts", "slt", "female", "en-us", False, False, 174.0),
    ),
}

# Debian packages per program and per voice (festival and MBROLA ship without voices;
# mbrola and its voices are in contrib, libttspico-utils in non-free).
PACKAGES = {"espeak-ng": "espeak-ng", "sox": "sox", "flite": "flite", "festival": "festival",
            "mbrola": "mbrola", "pico2wave": "libttspico-utils"}
VOICE_PACKAGES = {"festival": {"kal_diphone": "festvox-kallpc16k", "ked_diphone": "festvox-kdlpc16k",
                               "cmu_us_slt_arctic_hts": "festvox-us-slt-hts"},
                  "mbrola": {v: f"mbrola-{v}" for v in ("us1", "us2", "us3", "en1")}}
FESTIVAL_VOICE_PACKAGES = VOICE_PACKAGES["festival"]
PROGRAMS = {"espeak-ng": ("espeak-ng",), "flite": ("flite",), "festival": ("festival",),
            "mbrola": ("espeak-ng", "mbrola"), "pico": ("pico2wave",)}
MBROLA_DIR = "/usr/share/mbrola"
PICO_LANG_DIR = "/usr/share/pico/lang"


def voices(family: str) -> tuple[BaseVoice, ...]:
  """The base voices of a recorded-voice family (flite, festival); `ValueError` for others."""
  if family not in VOICES:
    raise ValueError(f"no base-voice list for family {family!r}; families with one: {sorted(VOICES)}.")
  return VOICES[family]


def voice(key: str) -> BaseVoice:
  """The `BaseVoice` named ``"family:name"``."""
  family, _, name = key.partition(":")
  for v in VOICES.get(family, ()):
    if v.name == name:
      return v
  raise ValueError(f"unknown base voice {key!r}; known: {[v.key for vs in VOICES.values() for v in vs]}.")


def missing_programs(families) -> list[str]:
  """The programs ``families`` need (and sox) that are not on ``PATH``, in a stable order."""
  programs = [p for f in families for p in PROGRAMS[f]] + ["sox"]
  missing = []
  for program in dict.fromkeys(programs):
    try:
      system_tools.require(program)
    except RuntimeError:
      missing.append(program)
  return missing


@functools.lru_cache(maxsize=None)
def installed_voices(family: str) -> frozenset[str]:
  """Names of the voices ``family``'s program lists (``flite -lv``; festival's ``(voice.list)``)."""
  if family == "flite":
    out = subprocess.run([system_tools.require("flite"), "-lv"], check=True, capture_output=True, text=True).stdout
    return frozenset(out.split(":", 1)[-1].split())
  if family == "festival":
    out = subprocess.run([system_tools.require("festival"), "--pipe"], input="(print (voice.list))\n",
                         check=True, capture_output=True, text=True).stdout
    return frozenset(re.sub(r"[()]", " ", out).split())
  if family == "mbrola":  # espeak-ng lists mb-* voices whether or not their databases are installed
    names = os.listdir(MBROLA_DIR) if os.path.isdir(MBROLA_DIR) else []
    return frozenset(n for n in names if os.path.exists(os.path.join(MBROLA_DIR, n, n)))
  if family == "pico":
    names = os.listdir(PICO_LANG_DIR) if os.path.isdir(PICO_LANG_DIR) else []
    return frozenset(n[: -len("_ta.bin")] for n in names if n.endswith("_ta.bin"))
  raise ValueError(f"no voice listing for family {family!r}.")


def validate_voices(family: str) -> None:
  """Raises `ValueError` naming every voice of ``family`` its program lacks, with the package to install."""
  missing = [v for v in voices(family) if v.name not in installed_voices(family)]
  if missing:
    program = PROGRAMS[family][-1]
    packages = sorted({VOICE_PACKAGES.get(family, {}).get(v.name, PACKAGES[program]) for v in missing})
    raise ValueError(
        f"{family} has no voice(s) {[v.name for v in missing]} (it lists {sorted(installed_voices(family))}); "
        f"install them with `sudo apt-get install {' '.join(packages)}` or `make system-deps`.")


def tool_version(family: str) -> str:
  """The version line of ``family``'s program (the corpus is byte-identical only for equal versions)."""
  if family == "espeak-ng":
    out = subprocess.run([system_tools.require("espeak-ng"), "--version"], capture_output=True, text=True).stdout
    return out.split("Data at")[0].strip()
  if family == "flite":
    out = subprocess.run([system_tools.require("flite"), "--version"], capture_output=True, text=True).stdout
    found = re.search(r"version: (\S+)", out)
    return f"flite {found.group(1)}" if found else out.strip()
  if family in ("mbrola", "pico"):  # neither program prints a version: the Debian package's
    package = {"mbrola": "mbrola", "pico": "libttspico-utils"}[family]
    out = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", package], capture_output=True, text=True)
    return f"{package} {out.stdout.strip() or 'unknown'}"
  out = subprocess.run([system_tools.require("festival"), "--version"], capture_output=True, text=True).stdout
  return out.strip().split(": ", 1)[-1]  # without the program's path


def _flite(text: str, speaker: speakers_lib.Speaker, base: BaseVoice) -> list[str]:
  argv = [system_tools.require("flite"), "-voice", base.name]
  if speaker.pitch and base.native_pitch:
    argv += ["--setf", f"int_f0_target_mean={speaker.pitch}"]
  if speaker.rate != 100 and base.native_rate:
    argv += ["--setf", f"duration_stretch={100 / speaker.rate:.4f}"]
  return argv + ["-t", text, "-o", "/dev/stdout"]


def _festival_setup(speaker: speakers_lib.Speaker, base: BaseVoice) -> str:
  """The speaker's settings on top of its voice (festival resets both when the voice is selected)."""
  forms = []
  if speaker.rate != 100 and base.native_rate:
    forms.append(f"(Parameter.set 'Duration_Stretch {100 / speaker.rate:.4f})")
  if speaker.pitch and base.native_pitch:
    forms.append(f"(set! int_lr_params '((target_f0_mean {speaker.pitch}) (target_f0_std {speaker.pitch * 0.12:.1f}) "
                 "(model_f0_mean 170) (model_f0_std 34)))")
  return "(begin " + " ".join(forms) + ")" if forms else "nil"


# text2wave's synthesis (/usr/bin/text2wave: tts_file with a hook that appends each
# utterance's wave to one RIFF file, header rewritten with the sample count at the end),
# as functions of a long-lived interpreter.
_FESTIVAL_SERVER = """
(gc-status nil)
(defvar asrjax_fp nil)
(defvar asrjax_n 0)
(defvar asrjax_utt nil)
(define (asrjax_save utt)
  (if (eq? asrjax_n 0)
      (wave.save.header asrjax_fp (utt.wave utt) 'riff nil (list (list "numsamples" 0))))
  (set! asrjax_n (+ asrjax_n (get_param 'num_samples (wave.info (utt.wave utt)) 0)))
  (wave.save.data.fp (utt.wave utt) asrjax_fp 'riff nil)
  (set! asrjax_utt utt))
(define (asrjax_say textfile wavfile)
  (set! tts_hooks (list utt.synth asrjax_save))
  (set! asrjax_n 0)
  (set! asrjax_utt nil)
  (set! asrjax_fp (fopen wavfile "wb"))
  (tts_file textfile (tts_find_text_mode textfile auto-text-mode-alist))
  (if asrjax_utt
      (begin (fseek asrjax_fp 0 0)
             (wave.save.header asrjax_fp (utt.wave asrjax_utt) 'riff nil (list (list "numsamples" asrjax_n)))))
  (fclose asrjax_fp))
"""
_DONE = "ASRJAX-FESTIVAL-DONE"


class _FestivalSession:
  """One ``festival --pipe`` interpreter that keeps a base voice loaded.

  A fresh ``text2wave`` per utterance spends most of its ~0.3-0.6 s starting the
  interpreter and loading the voice; a session pays that once per base voice and
  process, and renders the same bytes (checked against ``text2wave`` in
  ``tests/corpus/test_synthesizers.py``). Each utterance selects the voice again, which
  resets what a speaker's settings change (``Duration_Stretch``, ``int_lr_params``: every
  installed voice's ``voice_NAME`` sets both), so no speaker's settings reach the next one.
  """

  def __init__(self, base: BaseVoice):
    self.base = base
    self._tmp = tempfile.mkdtemp(prefix="asrjax-festival-")
    self._proc = subprocess.Popen([system_tools.require("festival"), "--pipe"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    try:
      self._send(_FESTIVAL_SERVER)
      self._send(f"(voice_{base.name})", what="selecting the voice")
    except Exception:
      self.close()
      raise

  def _send(self, forms: str, what: str = "") -> str:
    """Evaluates ``forms``; their output, or `RuntimeError` on a Scheme error or a dead interpreter."""
    self._proc.stdin.write(f'{forms}\n(format t "\\n{_DONE}\\n")\n(fflush nil)\n')
    self._proc.stdin.flush()
    lines = []
    while True:
      line = self._proc.stdout.readline()
      if not line:
        raise RuntimeError(f"festival failed on voice {self.base.name} ({what or 'starting'}): the interpreter "
                           f"exited with status {self._proc.wait()}: {''.join(lines).strip()}")
      if line.rstrip("\n").endswith(_DONE):
        lines.append(line.rstrip("\n")[: -len(_DONE)])
        out = "".join(lines)
        if re.search(r"SIOD ERROR|\bError\b", out):
          raise RuntimeError(f"festival failed on voice {self.base.name} ({what or 'starting'}): {out.strip()}")
        return out
      lines.append(line)

  def render(self, text: str, setup: str) -> bytes:
    text_file, wav_file = os.path.join(self._tmp, "text.txt"), os.path.join(self._tmp, "out.wav")
    with open(text_file, "w", encoding="utf-8") as f:
      f.write(text)
    if os.path.exists(wav_file):
      os.remove(wav_file)
    self._send(f"(begin (voice_{self.base.name}) {setup})\n(asrjax_say \"{text_file}\" \"{wav_file}\")",
               what=repr(text))
    with open(wav_file, "rb") as f:
      wav = f.read()
    if wav[:4] != b"RIFF" or len(wav) <= 44:  # text with nothing to say: no utterance, no header
      raise RuntimeError(f"festival wrote no audio on voice {self.base.name} for {text!r}.")
    return wav

  def close(self) -> None:
    if self._proc.poll() is None:
      self._proc.stdin.close()
      try:
        self._proc.wait(timeout=10)
      except subprocess.TimeoutExpired:
        self._proc.kill()
        self._proc.wait()
    self._proc.stdout.close()
    shutil.rmtree(self._tmp, ignore_errors=True)


_FESTIVAL_SESSIONS: dict[str, _FestivalSession] = {}  # base voice key -> this process's session


def close_festival_sessions() -> None:
  """Ends this process's festival interpreters (also done at exit)."""
  while _FESTIVAL_SESSIONS:
    _FESTIVAL_SESSIONS.popitem()[1].close()


atexit.register(close_festival_sessions)


def _festival(text: str, speaker: speakers_lib.Speaker, base: BaseVoice) -> bytes:
  session = _FESTIVAL_SESSIONS.get(base.key)
  if session is None:
    session = _FESTIVAL_SESSIONS[base.key] = _FestivalSession(base)
  try:
    return session.render(text, _festival_setup(speaker, base))
  except Exception:  # a failed render may leave the interpreter in any state: start afresh next time
    _FESTIVAL_SESSIONS.pop(base.key).close()
    raise


def render_wav(text: str, speaker: speakers_lib.Speaker) -> bytes:
  """The synthesizer's WAV bytes for ``text`` in ``speaker``'s voice (native rate, before any sox effect).

  Raises:
    RuntimeError: the program is missing (with the install command), fails, or (festival)
      reports a Scheme error, which it otherwise survives with exit status 0.
  """
  if speaker.family == "espeak-ng":
    argv = [system_tools.require("espeak-ng"), "-v", speaker.espeak_voice, "-p", str(speaker.pitch),
            "-s", str(speaker.rate), "-g", str(speaker.word_gap), "--stdout", text]
    return subprocess.run(argv, check=True, capture_output=True).stdout
  base = voice(speaker.base_voice)
  if base.family == "flite":
    return subprocess.run(_flite(text, speaker, base), check=True, capture_output=True).stdout
  if base.family == "mbrola":  # espeak-ng's default rate is 175 words per minute
    argv = [system_tools.require("espeak-ng"), "-v", f"mb-{base.name}", "-s", str(round(175 * speaker.rate / 100)),
            "--stdout", text]
    return subprocess.run(argv, check=True, capture_output=True).stdout
  if base.family == "pico":
    return _pico(text, speaker, base)
  return _festival(text, speaker, base)


def _pico(text: str, speaker: speakers_lib.Speaker, base: BaseVoice) -> bytes:
  """``pico2wave`` writes only to a named ``.wav`` file: one in a private temporary folder."""
  if "<" in text or ">" in text:
    raise ValueError(f"text for pico must not hold markup: {text!r}")
  pitch = round(100 * speaker.pitch / base.f0_hz) if speaker.pitch else 100
  marked = f"<pitch level='{pitch}'><speed level='{speaker.rate}'>{text}</speed></pitch>"
  with tempfile.TemporaryDirectory(prefix="asrjax-pico-") as tmp:
    path = os.path.join(tmp, "out.wav")
    subprocess.run([system_tools.require("pico2wave"), "-l", base.name, "-w", path, marked], check=True,
                   capture_output=True)
    with open(path, "rb") as f:
      return f.read()

