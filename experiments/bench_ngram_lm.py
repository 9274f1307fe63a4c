r"""Cost of the token n-gram LM used for shallow fusion: fit, save, load, memory, scoring.

  python experiments/bench_ngram_lm.py --config=experiments/configs/convrnnt.py:cpu_long \
      --workdir=workdirs/cpu_long --out=/tmp/ngram_lm.npz

Counts `asrjax.decoding.ngram_lm.NgramLM` of the config's order (``eval.lm.order``)
over the training transcripts (from ``<workdir>/train_transcripts.json``, encoded with
the workdir's tokenizer), saves it to ``--out``, loads it back in a fresh process (so
the RAM a load adds is measured apart from the fit), checks the loaded tables give
the same log-probabilities, and scores every prefix of the first ``--sentences`` dev
transcripts with an empty cache. Prints one table.
"""

import json
import os
import resource
import subprocess
import sys
import time

from absl import app, flags
from ml_collections import config_flags
import numpy as np

from asrjax.data import catalog, sources, tokenizer as tokenizer_lib
from asrjax.decoding import ngram_lm
from asrjax.tasks import transducer_asr
from asrjax.train import config_check, run_config

_CONFIG = config_flags.DEFINE_config_file("config", None, "The training configuration (default: the one the run "
                                          "wrote to <workdir>/config.json).", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Training workdir (tokenizer, cached transcripts).")
_OUT = flags.DEFINE_string("out", "/tmp/bench_ngram_lm.npz", "Where the LM file is written.")
_SENTENCES = flags.DEFINE_integer("sentences", 200, "Dev transcripts whose prefixes are scored.")
flags.mark_flags_as_required(["workdir"])

_LOADER = """
import json, sys, time
import numpy as np
from asrjax.decoding import ngram_lm
from asrjax.tasks import transducer_asr
def rss():
  with open("/proc/self/statm") as f:
    return int(f.read().split()[1]) * 4096
before = rss(); t = time.perf_counter()
lm = ngram_lm.NgramLM.load(sys.argv[1])
seconds = time.perf_counter() - t
contexts = json.load(open(sys.argv[2]))
t = time.perf_counter()
rows = [lm.log_probs(c) for c in contexts]
per_context = (time.perf_counter() - t) / len(contexts)
np.save(sys.argv[3], np.stack(rows))
print(json.dumps({"load_s": seconds, "load_rss": rss() - before, "score_s": per_context}))
"""


def main(argv):
  del argv
  try:
    config = run_config.resolve(_CONFIG.value, _WORKDIR.value)
  except ValueError as e:
    raise app.UsageError(str(e)) from None
  if not config.eval.lm.order:
    raise app.UsageError("the config has no n-gram LM (eval.lm.order = 0).")
  if config.data.tokenizer != "char":
    raise app.UsageError("this bench reads the character tokenizer of the workdir (data.tokenizer='char').")
  tok = tokenizer_lib.CharTokenizer.load(os.path.join(_WORKDIR.value, "tokenizer.json"))
  transcripts = [tok.encode(t) for t in transducer_asr.train_transcripts(config, None, _WORKDIR.value)]
  dev = sources.open_split(config.data.name, "dev", config.data.data_dir)
  texts = [dev[j]["text"] for j in range(min(_SENTENCES.value, len(dev)))]
  encoded = [tok.encode(catalog.as_text(t)) for t in texts]
  contexts = [ids[:i] for ids in encoded for i in range(len(ids) + 1)]

  t = time.perf_counter()
  lm = ngram_lm.NgramLM.fit(transcripts, tok.vocab_size, config.eval.lm.order, config.eval.lm.discount)
  fit_s = time.perf_counter() - t
  peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
  t = time.perf_counter()
  lm.save(_OUT.value)
  save_s = time.perf_counter() - t

  ctx_path, rows_path = _OUT.value + ".contexts.json", _OUT.value + ".rows.npy"
  with open(ctx_path, "w") as f:
    json.dump([[int(x) for x in c] for c in contexts], f)
  out = subprocess.run([sys.executable, "-c", _LOADER, _OUT.value, ctx_path, rows_path], check=True,
                       capture_output=True, text=True)
  loaded = json.loads(out.stdout.strip().splitlines()[-1])
  same = np.array_equal(np.load(rows_path), np.stack([lm.log_probs(c) for c in contexts]))
  os.remove(ctx_path)
  os.remove(rows_path)

  print(f"order {lm.order}, {len(transcripts)} transcripts, {len(contexts)} dev contexts")
  print("| fit s | peak RSS after fit | save s | file | load s | RAM added by load | log-probs per new context "
        "| loaded = fitted |")
  print("| --- | --- | --- | --- | --- | --- | --- | --- |")
  print(f"| {fit_s:.1f} | {peak / 2**30:.2f} GiB | {save_s:.2f} | {os.path.getsize(_OUT.value) / 2**20:.0f} MiB "
        f"| {loaded['load_s']:.2f} | {loaded['load_rss'] / 2**20:.0f} MiB | {1e6 * loaded['score_s']:.0f} us "
        f"| {same} |")


if __name__ == "__main__":
  app.run(main, flags_parser=config_check.parse_flags)
