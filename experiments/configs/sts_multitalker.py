r"""Separator-transducer-segmenter (Sklyar et al., 2022) on the embedded corpus' two-talker mixtures.

  python experiments/train.py --config=experiments/configs/sts_multitalker.py --workdir=workdirs/sts/full
  python experiments/train.py --config=experiments/configs/sts_multitalker.py:ablation=start_only \
      --workdir=workdirs/sts/start_only
  python experiments/train.py --config=experiments/configs/sts_multitalker.py:tiny --workdir=/tmp/sts_tiny \
      --config.data.data_dir=/tmp/tfds_tiny

Options after ``:`` (`common.parse_arg`): ``variant`` (``""``: ``synth_multitalker/full``
with a 2-core CPU budget; ``tiny``: the tiny corpus and model, seconds) and ``ablation``
(the paper's: ``start_only`` -- ``<sot>`` tokens only, the earlier multi-turn RNN-T's
segmentation, so no end-of-turn penalty; ``no_penalty`` -- ``<sot>``/``<eot>`` without the
latency penalty; ``no_fastemit``; ``""`` -- the full model; and, not the paper's,
``two_sided`` -- the full model with Li et al.'s early penalty too, so that closing a turn
early costs as closing it late does), and ``pretrained`` (bool, with any ablation): the
mixture encoder sized as `convrnnt.py`'s, so that a single-speaker ConvRNN-T run's encoder,
prediction and joint network start it (``--config.train.init_from=<that workdir>``;
``train.init_transfer='overlap'`` keeps the separators and recognition encoder fresh and
grows the vocabulary by the turn tokens). `experiments/sts_multitalker.py` trains and
compares them.

  python experiments/train.py --config=experiments/configs/sts_multitalker.py:ablation=two_sided,pretrained \
      --workdir=workdirs/sts/pre_two_sided --config.train.init_from=workdirs/demo/convrnnt
"""

from asrjax.train import config_files

common = config_files.sibling(__file__, "common")  # by path: no sys.path edit
convrnnt = config_files.sibling(__file__, "convrnnt")

ABLATIONS = ("", "start_only", "no_penalty", "no_fastemit", "two_sided")


def get_config(arg: str | None = None):
  opts = common.parse_arg(arg, variant="", ablation="", pretrained=False)
  if opts.variant not in ("", "tiny"):
    raise ValueError(f"unknown variant {opts.variant!r} of sts_multitalker; choose '' or 'tiny'.")
  if opts.ablation not in ABLATIONS:
    raise ValueError(f"unknown ablation {opts.ablation!r}; choose one of {ABLATIONS}.")
  c = common.get_base("tiny" if opts.variant == "tiny" else "")
  c.task = "multitalker_asr"
  c.data.name = "synth_multitalker/full"
  c.data.turn_end_tokens = True  # <sot> words <eot> per turn (False: <sot> only)
  # mixtures run to ~12 s; a channel holds both turns when they do not overlap
  c.data.buckets = (96_000, 144_000, 192_000)
  c.data.max_labels = (144, 192, 224)
  c.data.batch_size = 8
  c.model.name = "sts"
  c.model.mixture_encoder = "convrnnt"  # on the mixture, 40 ms frames
  c.model.encoder = dict(stack=4, channels=96, local_layers=2, local_kernel=5, global_blocks=2, global_kernel=5,
                         lstm_hidden=192, lstm_layers=1, output_dim=192)
  c.model.recognition_encoder = "lstm_rnnt"  # tied across channels, on encoder frames
  c.model.recognition = dict(stack=1, lstm_hidden=192, lstm_layers=1, output_dim=192)
  c.model.sts = dict(channels=2, separator_hidden=192)
  c.model.transducer = dict(common.TRANSDUCER)
  c.train.spec_augment = False
  c.train.fastemit_lambda = 0.01  # Sklyar et al. use FastEmit
  # late <sot>/<eot> emissions cost `weight` per encoder frame past the reference boundary + buffer;
  # early ones `early_weight` per frame before it - early buffer (0: Sklyar et al.'s late-only penalty)
  c.train.turn_latency = dict(weight=0.05, buffer_frames=2.0, early_weight=0.0, early_buffer_frames=2.0)
  c.eval.splits = ("test",)
  if opts.variant != "tiny":
    c.train.num_steps = 4000
    c.train.max_train_seconds = 2400  # 40 min of 2 CPU cores per model
    c.optimizer.warmup_steps = 200
    c.eval.limit = 400
  if opts.ablation == "start_only":
    c.data.turn_end_tokens = False
    c.train.turn_latency.weight = 0.0  # the earlier multi-turn RNN-T had no latency penalty
  elif opts.ablation == "no_penalty":
    c.train.turn_latency.weight = 0.0
  elif opts.ablation == "no_fastemit":
    c.train.fastemit_lambda = 0.0
  elif opts.ablation == "two_sided":  # not the paper's: the full model plus Li et al.'s early penalty
    c.train.turn_latency.early_weight = c.train.turn_latency.weight
  if opts.variant == "tiny":
    c.data.name = "synth_multitalker/tiny"
    c.data.batch_size = 2
    c.data.buckets = (160_000,)
    c.data.max_labels = (224,)
    c.model.encoder = dict(stack=3, channels=8, local_layers=1, local_kernel=3, global_blocks=1, global_kernel=3,
                           lstm_hidden=16, lstm_layers=1, output_dim=16)
    c.model.recognition = dict(stack=1, lstm_hidden=16, lstm_layers=1, output_dim=16)
    c.model.sts = dict(channels=2, separator_hidden=16)
    c.model.transducer = dict(common.TINY_TRANSDUCER)
    c.eval.limit = 2
  if opts.pretrained:  # the single-speaker ConvRNN-T's sizes, so its parameters fit
    single = convrnnt.get_config("tiny" if opts.variant == "tiny" else "demo").model
    c.model.encoder = dict(single.encoder)
    c.model.recognition.output_dim = single.encoder.output_dim  # what the joint network's input was
    c.model.transducer = dict(single.transducer)
    c.train.init_transfer = "overlap"
  return c
