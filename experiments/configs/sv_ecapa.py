r"""Speaker verification: ECAPA-TDNN lite with AAM softmax + pairwise loss, optionally ARW (Jin et al., 2022).

The task is `asrjax.tasks.speaker_verification`; ``arw`` picks the adversarial
reweighting variant (``none`` = the baseline, ``pw`` = the paper's pairwise weight
``w_i + w_j``, ``sample`` = per-sample weights on the AAM loss) and the adversary's input
(``embedding_and_cluster``, ``embedding``, ``cluster``). `experiments/sv_arw.py` runs
the comparison (it writes the k-means clusters an ARW run reads).

  python experiments/train.py --config=experiments/configs/sv_ecapa.py:demo --workdir=workdirs/sv/base_seed0
  python experiments/train.py --config=experiments/configs/sv_ecapa.py:demo,arw=pw \
      --config.arw.clusters_file=workdirs/sv/clusters_seed0.json \
      --config.train.init_from=workdirs/sv/base_seed0 --workdir=workdirs/sv/pw_seed0
  python experiments/train.py --config=experiments/configs/sv_ecapa.py:tiny --workdir=/tmp/sv_tiny
  python experiments/train.py --config=experiments/configs/sv_ecapa.py:voxceleb --workdir=workdirs/sv_vox \
      --config.sv.speaker_metadata=/path/to/vox1_meta.csv   # TFDS voxceleb prepared under data/tfds

Options after the variant: ``arw`` (none|pw|sample), ``adversary_input``.
"""

import ml_collections

from asrjax.train import config_files

common = config_files.sibling(__file__, "common")  # by path: no sys.path edit


def get_config(arg: str | None = None):
  opts = common.parse_arg(arg, variant="", arw="none", adversary_input="embedding_and_cluster")
  if opts.variant not in ("", "demo", "tiny", "voxceleb"):
    raise ValueError(f"unknown config variant {opts.variant!r}; choose one of ('', 'demo', 'tiny', 'voxceleb').")
  c = ml_collections.ConfigDict()
  c.task = "speaker_verification"
  c.data = dict(name="synth_speech/full", data_dir="data/tfds",
                batch_size=64)  # global batch = sv.speakers_per_batch * sv.utterances_per_speaker
  c.model = dict(name="ecapa_tdnn",
                 # the lite extractor (asrjax.speaker.ecapa): C = 128, Res2 scale 4, aggregation 384, D = 128
                 extractor=dict(channels=128, scale=4, kernel=3, aggregate=384, se_bottleneck=64, attention=64,
                                embed_dim=128))
  c.sv = dict(speakers_per_batch=16, utterances_per_speaker=4,  # P x K: every batch has target pairs
              crop_seconds=2.0,  # random training crops
              margin=0.2, scale=32.0,  # AAM softmax (WeSpeaker: 0.2, 32)
              aam_weight=1.0,  # the AAM softmax term (0: train on the pairwise loss alone)
              pairwise_weight=1.0,  # the pairwise verification loss beside AAM (the loss PW reweights)
              as_norm_top_n=100,  # AS-norm cohort members per side (of the training speakers' means)
              # the verification protocol (asrjax.speaker.protocol): "corpus" = the corpus' own trial list and
              # speaker groups; "built" = hold out test_speakers, build trials over their utterances, groups from
              # speaker_metadata (TFDS VoxCeleb: see the voxceleb variant)
              protocol="corpus", train_split="train", test_speakers="", speaker_metadata="",
              trials_per_utterance=(4, 4),  # (targets, non-targets) per enrolment utterance
              protocol_seed=0, session_field="youtube_id")
  c.arw = dict(variant=opts.arw, adversary_input=opts.adversary_input,
               num_clusters=8,  # k of the k-means over the baseline's embeddings
               hidden=64, learning_rate=1e-3, clusters_file="")
  c.optimizer = dict(learning_rate=2e-3, end_learning_rate=1e-5, warmup_steps=200, weight_decay=1e-4, clip_norm=5.0,
                     grad_accum_steps=1)
  c.train = dict(num_steps=3000, init_from="", loss_weights=dict(), max_train_seconds=0, seed=0, fsdp=1,
                 spec_augment=True,  # SpecAugment as augmentation (the corpus's noise/telephone are in the data)
                 log_every=50, checkpoint_every=500, keep_checkpoints=3, max_consecutive_nonfinite=20)
  c.eval = dict(splits=("test",))
  if opts.variant == "voxceleb":
    # TFDS VoxCeleb (the identification release, prepared as array_record) with VoxCeleb1-O's speaker split:
    # the 40 test speakers id10270-id10309 held out of every split, the other 1,211 trained on; trials built
    # over the test speakers' utterances; gender and nationality from VoxCeleb's vox1_meta.csv
    c.data.name = "voxceleb"
    c.sv.update(dict(protocol="built", train_split="train+validation+test", test_speakers="id10270-id10309",
                     speaker_metadata="data/vox1_meta.csv"))
    c.eval.splits = ("train+validation+test",)
    c.train.num_steps = 20_000
  if opts.variant == "tiny":
    c.data.name = "synth_speech/tiny"
    c.data.batch_size = 8
    c.model.extractor.update(dict(channels=16, aggregate=24, se_bottleneck=8, attention=8, embed_dim=16))
    c.sv.update(dict(speakers_per_batch=4, utterances_per_speaker=2, crop_seconds=1.0, as_norm_top_n=4))
    c.arw.num_clusters = 3
    c.optimizer.warmup_steps = 2
    c.train.num_steps = 4
    c.train.log_every = 1
    c.train.checkpoint_every = 2
  return c
