r"""ConvRNN-T on the embedded corpus.

  python experiments/train.py --config=experiments/configs/convrnnt.py --workdir=workdirs/convrnnt
  python experiments/train.py --config=experiments/configs/convrnnt.py:tiny --workdir=/tmp/convrnnt_tiny
"""

import ml_collections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.data = dict(
      name="espeak_speech/small",  # TFDS dataset/config
      data_dir="data/tfds",  # where experiments/build_corpus.py put it
      tokenizer="char",  # "char" | "sentencepiece"
      vocab_size=256,  # sentencepiece only
      batch_size=16,  # global batch
      buckets=(32_000, 64_000, 96_000, 160_000),  # audio samples per padded batch
      normalization="global",  # "global": training-set log-mel statistics (streamable) | "utterance": CMVN
      stats_utterances=500,  # training utterances the global statistics are computed from
      max_labels=(56, 104, 128, 128),  # label padding per bucket; longer transcripts are dropped
  )
  c.model = dict(
      name="convrnnt",  # module in asrjax.models exporting build(config, vocab_size)
      encoder=dict(stack=3, channels=128, local_layers=2, local_kernel=5, global_blocks=2, global_kernel=5,
                   lstm_hidden=256, lstm_layers=3, output_dim=256),
      transducer=dict(embed_dim=64, predictor_hidden=256, predictor_layers=1, joint_hidden=256),
  )
  c.optimizer = dict(learning_rate=1e-3, end_learning_rate=1e-5, warmup_steps=500, weight_decay=1e-4,
                     clip_norm=5.0, grad_accum_steps=1)
  c.train = dict(
      num_steps=20_000,
      max_train_seconds=0,  # wall-clock budget, 0 = none
      seed=0,
      fsdp=1,  # devices per FSDP group (parameters sharded across them)
      compute_dtype="float32",  # "bfloat16" for mixed precision
      fastemit_lambda=0.0,
      spec_augment=True,
      log_every=50,
      checkpoint_every=500,
      keep_checkpoints=3,
      max_consecutive_nonfinite=20,
  )
  c.eval = dict(splits=("dev", "test"), decoder="greedy", limit=0)
  if arg == "demo":  # the README main job: bounded CPU training on espeak_speech/small
    c.model.encoder = dict(stack=4, channels=128, local_layers=2, local_kernel=5, global_blocks=2, global_kernel=5,
                           lstm_hidden=256, lstm_layers=2, output_dim=256)
    c.model.transducer = dict(embed_dim=64, predictor_hidden=256, predictor_layers=1, joint_hidden=256)
    c.optimizer.learning_rate = 1.5e-3
    c.optimizer.warmup_steps = 200
    c.train.num_steps = 3000  # the cosine decay's length; the time budget usually stops first
    c.train.max_train_seconds = 1500
    c.train.spec_augment = False  # too few epochs for augmentation to pay off
  if arg == "tiny":  # seconds on a laptop: the tiny corpus, a tiny model
    c.data.name = "espeak_speech/tiny"
    c.data.batch_size = 8
    c.model.encoder = dict(stack=3, channels=16, local_layers=1, local_kernel=3, global_blocks=1, global_kernel=3,
                           lstm_hidden=32, lstm_layers=1, output_dim=32)
    c.model.transducer = dict(embed_dim=16, predictor_hidden=32, predictor_layers=1, joint_hidden=32)
    c.optimizer.warmup_steps = 2
    c.train.num_steps = 6
    c.train.log_every = 1
    c.train.checkpoint_every = 3
    c.eval.limit = 4
  return c
