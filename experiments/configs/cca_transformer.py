r"""Compute-cost-amortized Transformer transducer (Xie et al., 2022) and its baselines.

One encoder (`asrjax.models.cca_transformer`), size matched to the other encoders
(~1.4 M parameters), zero look-ahead, 64 frames of attention history; the ``method``
option picks what is trained:

* ``dense`` -- every sub-block runs (the reference point).
* ``arbitrated`` -- per-frame arbitrators gate MHA and FFN; the compute term
  ``encoder/compute`` weighs ``lam`` in the objective; ``estimator`` is the gradient
  estimator of the gates (`asrjax.nn.frame_gates`).
* ``sliding`` -- dense with ``window`` frames of attention history (the paper's baseline).
* ``layerdrop`` -- dense with LayerDrop ``layerdrop`` in training (prune at inference
  with ``model.encoder.layers_to_keep``).

Every method has the same parameters, so ``init_from`` may start any of them from
another run (`experiments/cca_tradeoff.py` fine-tunes each from the dense run).

  python experiments/train.py --config=experiments/configs/cca_transformer.py --workdir=workdirs/cca_dense
  python experiments/train.py --config=experiments/configs/cca_transformer.py:demo,method=arbitrated,lam=0.3 \
      --config.train.init_from=workdirs/cca/dense_pre_seed0 --workdir=workdirs/cca/arb
  python experiments/train.py --config=experiments/configs/cca_transformer.py:tiny --workdir=/tmp/cca_tiny

Options after the variant (``:demo,method=sliding,window=16``): ``method``, ``lam``,
``estimator``, ``window``, ``layerdrop``.
"""

from asrjax.train import config_files

common = config_files.sibling(__file__, "common")  # by path: no sys.path edit

METHODS = ("dense", "arbitrated", "sliding", "layerdrop")


def get_config(arg: str | None = None):
  opts = common.parse_arg(arg, variant="", method="dense", lam=1.0, estimator="gumbel_st", window=16,
                          layerdrop=0.2)
  if opts.method not in METHODS:
    raise ValueError(f"unknown method {opts.method!r}; choose one of {METHODS}.")
  c = common.get_base(common.variant(opts.variant))
  c.model.name = "cca_transformer"
  c.model.encoder = dict(stack=4, dim=136, heads=4, ff_mult=4, layers=6, chunk_size=1, left_chunks=64,
                         max_relative=65, output_dim=256, gating="none", estimator=opts.estimator, temperature=1.0,
                         arbitrator_input="both", gate_bias_init=3.0, layerdrop=0.0, layers_to_keep=(),
                         inference="compact", capacity_steps=8)
  c.model.transducer = dict(common.TRANSDUCER)
  if opts.variant == "tiny":
    c.model.encoder.update(dict(stack=3, dim=16, heads=2, ff_mult=2, layers=2, left_chunks=8, max_relative=9,
                                output_dim=32, capacity_steps=4))  # 5 capacity buckets: faster compiles
    c.model.transducer = dict(common.TINY_TRANSDUCER)
  if opts.method == "arbitrated":
    c.model.encoder.gating = "arbitrator"
    c.train.loss_weights = {"encoder/compute": opts.lam}  # lambda of the compute term
  if opts.method == "sliding":
    c.model.encoder.left_chunks = opts.window  # max_relative stays: the same parameters
  if opts.method == "layerdrop":
    c.model.encoder.layerdrop = opts.layerdrop
  return c
