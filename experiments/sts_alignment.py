r"""Where a trained multi-talker transducer's own posterior puts each channel's labels, against the turns.

  python experiments/sts_alignment.py --workdir=workdirs/sts/no_penalty --split=train --mixtures=8

For the first ``--mixtures`` mixtures of ``--split``, teacher-forces the reference labels
(first-free channels, as in training) through the newest checkpoint and runs the RNN-T
lattice's forward-backward (`asrjax.losses.lattice`): each label's *expected emission
time* under the model's alignment posterior. Prints, per (mixture, channel), the valid
encoder frames, the expected emission times of the first and last label, the reference
turns' span and the negative log-likelihood per label. A model that recognises emits each
turn's labels inside (or just after) its span; one whose prediction network carries the
loss puts every label at the first frames, whatever the audio (what the 40-CPU-minute STS
runs do: BUILD_NOTES.md, "The ablations").
"""

from absl import app, flags
import jax
import jax.numpy as jnp
import numpy as np

from asrjax.data import multitalker as mix_data
from asrjax.data import sources
from asrjax.frontend.featurize import featurize
from asrjax.losses import lattice
from asrjax.tasks import multitalker_asr
from asrjax.train import run_config, trainer

_WORKDIR = flags.DEFINE_string("workdir", None, "A trained multi-talker (`multitalker_asr`) run.")
_SPLIT = flags.DEFINE_string("split", "train", "Split of the run's dataset.")
_MIXTURES = flags.DEFINE_integer("mixtures", 8, "Mixtures to align (the split's first).")
flags.mark_flags_as_required(["workdir"])


def main(argv):
  del argv
  if _MIXTURES.value < 1:
    raise app.UsageError(f"--mixtures must be >= 1; got {_MIXTURES.value}.")
  config = run_config.load(_WORKDIR.value)
  if config.task != "multitalker_asr":
    raise app.UsageError(f"--workdir: {_WORKDIR.value} is a {config.task!r} run, not a multitalker_asr one.")
  task, params, steps = trainer.restore(config, _WORKDIR.value)
  split = sources.open_split(config.data.name, _SPLIT.value, config.data.data_dir)
  examples = [split.source[i] for i in range(min(_MIXTURES.value, len(split.source)))]
  batch = mix_data.pad_mixture_batch(examples, task.tokenizer, max(config.data.buckets), max(config.data.max_labels))
  feats, pads = featurize(batch, jax.random.key(0), task.front_end, train=False)
  logits, enc_pads = task.model.apply(params["model"], feats, pads, batch["labels"], batch["label_paddings"])
  rows = batch["labels"].reshape(-1, batch["labels"].shape[-1])
  row_pads = batch["label_paddings"].reshape(rows.shape)
  blank, nxt = multitalker_asr._log_probs(logits, rows, task.loss.blank_id)  # noqa: SLF001 -- the task's own gather
  frames = jnp.sum(1 - enc_pads, axis=1).astype(jnp.int32)
  labels = jnp.sum(1 - row_pads, axis=1).astype(jnp.int32)
  lat = lattice.forward_backward(blank, nxt, frames, labels)
  occ, nll = np.asarray(lat.emit_occupancy), -np.asarray(lat.log_likelihood)
  bounds = np.asarray(batch["turn_boundaries"]).reshape(rows.shape)
  mask = np.asarray(batch["turn_mask"]).reshape(rows.shape)
  fs, c = float(task.frame_seconds), task.model.channels
  print(f"{_WORKDIR.value} at step {steps[0]}: {len(examples)} {_SPLIT.value} mixtures, {fs * 1000:.0f} ms frames")
  print("| mixture | channel | frames (s) | labels | first label at s | last label at s | turns' span s | NLL / label |")
  print("| --- | --- | --- | --- | --- | --- | --- | --- |")
  for r in range(rows.shape[0]):
    t, u = int(frames[r]), int(labels[r])
    name = examples[r // c]["id"]
    name = name.decode() if isinstance(name, bytes) else name
    if u == 0:
      print(f"| {name} | {r % c} | {t * fs:.2f} | 0 | - | - | - | - |")
      continue
    e = occ[r, :t, :u]
    when = (e * np.arange(t)[:, None]).sum(0) / np.maximum(e.sum(0), 1e-30) * fs
    turn = bounds[r, :u][mask[r, :u] > 0]
    span = f"{turn.min():.2f}-{turn.max():.2f}" if turn.size else "-"
    print(f"| {name} | {r % c} | {t * fs:.2f} | {u} | {when[0]:.2f} | {when[-1]:.2f} | {span} | {nll[r] / u:.2f} |")


if __name__ == "__main__":
  app.run(main)
