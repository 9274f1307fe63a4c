r"""Settings shared by every transducer config: data, optimizer, training loop, evaluation.

Each model config (``convrnnt.py``, ``lstm_rnnt.py``, ``conformer.py``,
``contextnet.py``) calls `get_base` and adds ``model``; the sizes of the four are
matched at about 1.4 M encoder parameters. Variants, chosen with ``:<name>`` after
the config path:

* (none)  -- ``synth_speech/small``, 20k steps.
* ``demo`` -- the README main job: bounded CPU training (28 min) on ``full``, pruned loss.
* ``cpu_long`` -- the demo recipe run towards convergence on a CPU: 40,000 steps with no
  time budget (~3.5 h on 2 cores; resumes from its last checkpoint, so it may span
  several sittings), decoded on the whole ``full`` test split.
* ``full`` -- ``synth_speech/full`` with SpecAugment, for a GPU.

Every variant evaluates on ``test`` (espeak-ng and flite voices, unseen speakers) and
``test_unseen`` (festival's voices: a synthesizer family never used for training or
tuning; issue 16); ``dev`` (training families) is the only split to tune on.
* ``tiny`` -- the tiny corpus and a tiny model: seconds, for smoke tests.

The variant may also be written ``:variant=<name>`` (`parse_arg`, big_vision's
convention for ``get_config``'s one string argument).

The model configs load this file by its path (``importlib``), not by ``import
common``: ml_collections' ``config_flags`` loads a config file by path, from any
current directory, so the configs edit no ``sys.path`` and need no package.
Measurements behind the values live in BUILD_NOTES.md, not here.
"""

import ml_collections

VARIANTS = ("", "demo", "cpu_long", "full", "tiny")

# prediction + joint networks, shared by every encoder
TRANSDUCER = dict(embed_dim=64, predictor_hidden=256, predictor_layers=1, joint_hidden=128)
TINY_TRANSDUCER = dict(embed_dim=16, predictor_hidden=32, predictor_layers=1, joint_hidden=32)


def _convert(name: str, default, text: str):
  """``text`` as the type of ``default``; a bool takes true/false (any case), a bare name is true."""
  if isinstance(default, bool):
    if text.lower() not in ("true", "false"):
      raise ValueError(f"config argument {name}={text!r}: expected true or false.")
    return text.lower() == "true"
  try:
    return type(default)(text)
  except ValueError:
    raise ValueError(f"config argument {name}={text!r}: expected {type(default).__name__}.") from None


def parse_arg(arg: str | None, **spec) -> ml_collections.ConfigDict:
  """Parses the string after ``config.py:`` into the options of ``spec`` (big_vision's convention).

  ``spec`` maps each option to its default, whose type converts the given text. ``arg`` is
  ``name=value`` items separated by commas; a bool option may be given by its bare name
  (true); a first item with no ``=`` that is not an option name is the value of the first
  option (``"demo,method=dense"``). With ``spec = dict(variant="")``, ``"tiny"`` and ``"variant=tiny"`` both give
  ``variant="tiny"``, and ``None`` or ``""`` the defaults. Unknown or repeated options,
  and values of the wrong type, raise ValueError.
  """
  arg = arg or ""
  items = [item for item in arg.split(",") if item]
  if items and "=" not in items[0] and items[0] not in spec:
    if not spec:
      raise ValueError(f"config argument {arg!r} given, but this config takes none.")
    items[0] = f"{next(iter(spec))}={items[0]}"
  given = {}
  for item in items:
    name, has_value, text = item.partition("=")
    if name not in spec:
      raise ValueError(f"unknown config argument {name!r} in {arg!r}; known: {', '.join(spec)}.")
    if name in given:
      raise ValueError(f"config argument {name!r} given twice in {arg!r}.")
    if not has_value and not isinstance(spec[name], bool):
      raise ValueError(f"config argument {name!r} needs a value ({name}=...).")
    given[name] = _convert(name, spec[name], text) if has_value else True
  return ml_collections.ConfigDict({**spec, **given}, type_safe=False)


def variant(arg: str | None) -> str:
  """The variant ``get_config(arg)`` builds: ``arg`` is None, ``""``, a name of VARIANTS or ``variant=<name>``."""
  try:
    name = parse_arg(arg, variant="").variant
  except ValueError as e:
    raise ValueError(f"unknown config variant {arg!r}; choose one of {VARIANTS}.") from e
  if name not in VARIANTS:
    raise ValueError(f"unknown config variant {name!r}; choose one of {VARIANTS}.")
  return name


def get_base(arg: str | None = None) -> ml_collections.ConfigDict:
  arg = variant(arg)
  c = ml_collections.ConfigDict()
  c.data = dict(
      name="synth_speech/small",  # TFDS dataset/config (espeak_speech/*: the espeak-ng-only corpus)
      data_dir="data/tfds",  # where experiments/build_corpus.py put it
      tokenizer="char",  # "char" | "sentencepiece"
      vocab_size=256,  # sentencepiece only
      normalization="global",  # "global": training-set log-mel statistics (streamable) | "utterance": CMVN
      stats_utterances=500,  # training utterances the global statistics are computed from
      batch_size=16,  # global batch
      buckets=(32_000, 64_000, 96_000, 160_000),  # audio samples per padded batch
      max_labels=(56, 104, 128, 128),  # label padding per bucket; longer transcripts are dropped
      labels_per_frame=2,  # transcripts needing more labels per encoder frame are dropped
      # train on these speakers' utterances only: a JSON file {"speakers": [...]} ("" = every speaker); the
      # fairness fine-tunes (experiments/fairness_ewc.py) train on the targeted cohorts' speakers
      train_speakers="",
  )
  c.task = "transducer_asr"  # what is trained and evaluated: a name in asrjax.tasks.TASKS
  c.model = ml_collections.ConfigDict()  # set by the model config
  c.optimizer = dict(learning_rate=1.5e-3, end_learning_rate=1e-5, warmup_steps=500, weight_decay=1e-4,
                     clip_norm=5.0, grad_accum_steps=1)  # effective batch = batch_size * grad_accum_steps
  c.train = dict(
      num_steps=20_000,  # also the length of the cosine decay
      init_from="",  # "<workdir>[:step]": start from that run's parameters, fresh optimizer (fine-tuning)
      # "exact": that run's parameter tree must match this one's; "overlap": take the leaves both have
      # (a vocabulary the task grows gets the old tokens' rows), the rest fresh (asrjax.train.trainer.transfer_plan)
      init_transfer="exact",
      loss_weights=dict(),  # {objective term: weight}, e.g. a model's sown cost; unweighted terms are logged only
      # elastic weight consolidation (asrjax.fairness.ewc) around the init_from parameters: weight = lambda
      # (0 = off), fisher_file = the diagonal Fisher of the init_from run's training data
      ewc=dict(weight=0.0, fisher_file=""),
      max_train_seconds=0,  # wall-clock budget, 0 = none
      seed=0,
      fsdp=1,  # devices per FSDP group (parameters sharded across them)
      compute_dtype="float32",  # "bfloat16" for mixed precision
      fastemit_lambda=0.0,
      # the full RNN-T loss's vocabulary passes: "auto" (XLA on every backend: the compiled Pallas
      # kernel failed on an H200), "xla" or "pallas" to force one (asrjax.losses.rnnt_loss)
      rnnt_kernel="auto",
      # pruned RNN-T loss (k2, Kuang et al. 2022): 0 = full loss; S = label positions per frame
      # the joint network runs at (must exceed data.labels_per_frame); the objective is
      # simple_loss_scale * simple + pruned, with icefall's ramp over pruned_warmup_steps
      prune_range=0,
      simple_loss_scale=0.5,
      pruned_warmup_steps=500,
      # k2's smoothing of the simple loss: log-linear mix with LM-only and AM-only (unigram
      # LM) log-probs (icefall: 0.25 and 0.0); 0, 0 = the plain trivial joiner
      simple_lm_only_scale=0.0,
      simple_am_only_scale=0.0,
      spec_augment=True,
      spec_augment_options=dict(num_freq_masks=2, max_freq_mask=27, num_time_masks=5, max_time_mask_ratio=0.05),
      vtlp_max_warp=0.0,  # vocal tract length perturbation, warp factor 1 +- this (0 = off)
      log_every=50,
      checkpoint_every=500,
      keep_checkpoints=3,
      max_consecutive_nonfinite=20,
  )
  c.eval = dict(splits=("dev", "test", "test_unseen"), decoder="greedy", limit=0,
                decoder_options=dict(),  # keyword options of the decoder, e.g. dict(beam=8)
                # shallow fusion of a token n-gram LM counted on the training transcripts
                # (decoders beam and maes); order 0 = none. word_order > 0 (char tokenizer): a word
                # n-gram over the training vocabulary, spelt out character by character and
                # interpolated with the token n-gram (weight char_weight); asrjax.decoding.word_lm
                lm=dict(order=0, discount=0.7, weight=0.0, length_bonus=0.0, word_order=0, char_weight=0.1))
  if arg in ("demo", "cpu_long"):
    # the `full` corpus (416 training voices, 40,000 sentences) rather than `small`'s 144
    # voices (tuning: BUILD_NOTES.md, section "The demo recipe")
    c.data.name = "synth_speech/full"
    c.optimizer.warmup_steps = 200
    c.train.num_steps = 5600  # the cosine decay's length: about what 28 min of pruned steps reach on 2 cores
    c.train.max_train_seconds = 1680  # 28 min: the issue bounds CPU training at 30
    # SpecAugment off: too few epochs for it to pay off (tuning: BUILD_NOTES.md, section
    # "The demo recipe")
    c.train.spec_augment = False
    c.train.prune_range = 5  # pruned RNN-T, S = 5 (speed: BUILD_NOTES.md, section "Pruned RNN-T")
    c.eval.splits = ("test", "test_unseen")
    # the first 800 of the 4,000 test utterances and of the 1,200 test_unseen ones (the same
    # 800 sentences; RTF: BUILD_NOTES.md, "The demo recipe")
    c.eval.limit = 800
    # mAES on device, beam 16 (up to 4 labels per frame), with a word 4-gram over the training
    # vocabulary spelt out per character, interpolated with a character 12-gram; weight 0.4,
    # bonus 0.3 (tuning: BUILD_NOTES.md, section "The demo recipe"). The host Graves search
    # (`beam`) scores the same (51.9 vs 51.6% on the demo's 800) at 8x the time (section
    # "On-device beam search with LM fusion")
    c.eval.decoder = "maes"
    c.eval.decoder_options = dict(beam=16)
    c.eval.lm.update(dict(order=12, discount=0.7, weight=0.4, length_bonus=0.3, word_order=4, char_weight=0.1))
  if arg == "cpu_long":
    c.train.num_steps = 40_000
    c.train.max_train_seconds = 0
    c.eval.limit = 0  # all 4,000 test utterances (3.5 h of audio)
    # LM weight and bonus for the step-40,000 model, lower than the demo's (tuning:
    # BUILD_NOTES.md, section "The convergence run on the CPU")
    c.eval.lm.update(dict(weight=0.15, length_bonus=0.3))
  if arg == "full":
    c.data.name = "synth_speech/full"
    c.data.batch_size = 64
    c.train.num_steps = 30_000
  if arg == "tiny":
    c.data.name = "synth_speech/tiny"
    c.data.batch_size = 8
    c.data.stats_utterances = 16
    c.optimizer.warmup_steps = 2
    c.train.num_steps = 6
    c.train.log_every = 1
    c.train.checkpoint_every = 3
    c.eval.limit = 4
  return c
