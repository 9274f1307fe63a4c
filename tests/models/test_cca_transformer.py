"""The compute-cost-amortized Transformer: forced gates against the dense model, the compact
inference against the masked one, the compute term by hand and by finite differences, streaming
with gates, XLA's FLOP count of the skip path, LayerDrop pruning."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from asrjax.models import cca_transformer as cca
from asrjax.nn import chunked_attention, frame_gates

# capacity_steps 4 (5 buckets, the default 9): the same code paths, faster compiles
SMALL = dict(stack=2, dim=16, heads=2, ff_mult=2, layers=2, chunk_size=2, left_chunks=2, max_relative=6,
             output_dim=12, num_features=6, capacity_steps=4)


def _setup(seed=0, b=2, t=40, **kw):
  enc = cca.CCATransformerEncoder(**{**SMALL, **kw})
  rng = np.random.default_rng(seed)
  feats = jnp.asarray(rng.normal(size=(b, t, 6)).astype(np.float32))
  lengths = np.array([t, t * 2 // 3, t // 2, t - 6])[:b]
  pads = jnp.asarray((np.arange(t)[None] >= lengths[:, None]).astype(np.float32))
  variables = enc.init(jax.random.key(seed), feats, pads, enc.init_state(b))
  params = {"params": jax.tree.map(lambda p: p + 0.2 * rng.normal(size=p.shape).astype(np.float32),
                                   variables["params"])}  # so that no parameter is trivially zero
  return enc, feats, pads, params


def _gates(rng, layers, b, t, rate):
  return {k: (rng.random((layers, b, t)) < rate).astype(np.float32) for k in ("mha", "ffn")}


def test_all_gates_on_equals_the_dense_encoder_exactly():
  enc, feats, pads, params = _setup(inference="masked")
  dense = enc.clone(gating="none")
  ones = {k: np.ones((2, 2, 20), np.float32) for k in ("mha", "ffn")}
  forced, _, _ = enc.apply(params, feats, pads, enc.init_state(2), ones)
  reference, _, _ = dense.apply(params, feats, pads, dense.init_state(2))
  np.testing.assert_array_equal(forced, reference)
  # training mode (gate noise drawn) with every gate forced on: the dense training forward, exactly
  rngs = {"dropout": jax.random.key(5)}
  forced, _, _ = enc.apply(params, feats, pads, enc.init_state(2), ones, rngs=rngs)
  reference, _, _ = dense.apply(params, feats, pads, dense.init_state(2), rngs=rngs)
  np.testing.assert_array_equal(forced, reference)


@pytest.mark.parametrize("inference", ["masked", "compact"])
def test_a_gate_forced_off_removes_exactly_that_sub_block_for_that_frame(inference):
  enc, feats, pads, params = _setup(inference=inference, layers=1)
  on = np.ones((1, 2, 20), np.float32)
  ffn_off = on.copy()
  ffn_off[0, 0, 7] = 0.0
  mha_off = on.copy()
  mha_off[0, 1, 3] = 0.0

  apply = jax.jit(lambda gates: enc.apply(params, feats, pads, enc.init_state(2), gates, capture_intermediates=True,
                                          mutable=["intermediates"]))

  def block_out(gates):
    _, state = apply(gates)
    inter = state["intermediates"]
    return (np.asarray(inter["block_0"]["__call__"][0][0]), np.asarray(inter["input_proj"]["__call__"][0]),
            np.asarray(inter["block_0"]["mhsa"]["__call__"][0][0]))

  x_on, x0, att = block_out({"mha": on, "ffn": on})
  x_ffn_off, _, att_ffn_off = block_out({"mha": on, "ffn": ffn_off})
  # frame 7 of utterance 0 leaves the block as input + attention: the FFN added exactly nothing
  np.testing.assert_array_equal(x_ffn_off[0, 7], x0[0, 7] + att_ffn_off[0, 7])
  assert np.abs(x_on[0, 7] - x_ffn_off[0, 7]).max() > 1e-3
  x_mha_off, _, att_mha_off = block_out({"mha": mha_off, "ffn": 0 * on})
  np.testing.assert_array_equal(x_mha_off[1, 3], x0[1, 3])  # both off: the input, bit for bit
  if inference == "compact":
    assert np.all(att_mha_off[1, 3] == 0.0)  # the skipped query was not computed
  np.testing.assert_allclose(x_mha_off[1, 2], x0[1, 2] + att[1, 2], rtol=1e-5, atol=1e-6)  # neighbours unchanged


def test_compact_inference_equals_the_masked_path():
  enc, feats, pads, params = _setup(seed=7, b=3, t=40)
  masked = enc.clone(inference="masked")
  compact_fn = jax.jit(lambda g: enc.apply(params, feats, pads, enc.init_state(3), g))  # one compile, every rate
  masked_fn = jax.jit(lambda g: masked.apply(params, feats, pads, masked.init_state(3), g))
  for rate in (0.0, 0.05, 0.2, 0.4, 0.6, 0.8, 0.95, 1.0):
    gates = _gates(np.random.default_rng(int(rate * 100)), 2, 3, 20, rate)
    compact, reference = compact_fn(gates), masked_fn(gates)
    valid = np.asarray(reference[1]) == 0
    np.testing.assert_allclose(np.asarray(compact[0])[valid], np.asarray(reference[0])[valid], rtol=2e-5, atol=2e-5)


def test_compact_inference_uses_every_capacity_bucket_correctly():
  """One row per attention bucket: row r has the r-th capacity's number of active frames."""
  rng = np.random.default_rng(0)
  t, d = 10, 8
  layer = chunked_attention.ChunkedSelfAttention(heads=2, chunk_size=2, left_chunks=2, max_relative=6)
  x = jnp.asarray(rng.normal(size=(1, t, d)).astype(np.float32))
  pads = jnp.zeros((1, t))
  params = layer.init(jax.random.key(0), x, pads, layer.init_state(1, d))
  params = jax.tree.map(lambda p: p + 0.3 * rng.normal(size=p.shape).astype(np.float32), params)
  dense, _ = layer.apply(params, x, pads, layer.init_state(1, d))
  apply = jax.jit(layer.apply)
  for cap in frame_gates.capacity_buckets(t):
    active = np.zeros((1, t), bool)
    active[0, rng.choice(t, size=cap, replace=False)] = True
    y, _ = apply(params, x, pads, layer.init_state(1, d), active)
    np.testing.assert_allclose(np.asarray(y)[active], np.asarray(dense)[active], rtol=1e-5, atol=1e-6)
    assert np.all(np.asarray(y)[~active] == 0.0)


def test_flops_per_frame_by_hand():
  enc = cca.CCATransformerEncoder(stack=1, dim=4, heads=1, ff_mult=2, layers=1, chunk_size=2, left_chunks=1,
                                  max_relative=3, output_dim=2, arbitrator_input="block", num_features=3)
  flops = cca.flops_per_frame(enc, 3)
  # MHA: q, out projections 2 * 2 * 16 = 64; scores + weighted sum 2 * 2 * 4 per key, and a query
  # sees the previous chunk (2) and its own chunk up to the end: 3 keys at position 0, 4 at 1
  assert flops["mha"] == 64 + 16 * 3.5
  assert flops["ffn"] == 2 * 2 * 4 * 8  # up 4 -> 8, down 8 -> 4
  # input proj 2*3*4 = 24, k/v 64, arbitrator 2*2*4 = 16, output proj 2*4*2 = 16
  assert flops["fixed"] == 24 + 64 + 16 + 16
  assert flops["dense"] == 120 + 120 + 128
  assert cca.flops_per_frame(enc.clone(gating="none"), 3)["fixed"] == 120 - 16  # no arbitrator run


def _compute_term(enc, variables, feats, pads):
  _, sown = enc.apply(variables, feats, pads, enc.init_state(feats.shape[0]), rngs={"dropout": jax.random.key(0)},
                      mutable=["losses"])
  return sown["losses"]["compute"][0]


def test_the_compute_term_is_the_expected_gated_flops_by_hand():
  enc = cca.CCATransformerEncoder(stack=1, dim=4, heads=1, ff_mult=2, layers=1, chunk_size=1, left_chunks=2,
                                  max_relative=3, output_dim=2, arbitrator_input="block", num_features=3)
  feats = jnp.asarray(np.random.default_rng(0).normal(size=(2, 5, 3)).astype(np.float32))
  pads = jnp.asarray([[0, 0, 0, 0, 0], [0, 0, 0, 1, 1]], jnp.float32)  # 5 and 3 valid frames
  params = enc.init(jax.random.key(0), feats, pads, enc.init_state(2))["params"]
  arb = params["block_0"]["arbitrator"]
  params["block_0"]["arbitrator"] = {"kernel": jnp.zeros_like(arb["kernel"]), "bias": jnp.array([0.5, -1.0])}
  p_mha, p_ffn = 1 / (1 + np.exp(-0.5)), 1 / (1 + np.exp(1.0))
  # per utterance: valid frames * (p_mha * 112 + p_ffn * 128) / (112 + 128); mean of 5 and 3 frames = 4
  expected = 4 * (p_mha * 112 + p_ffn * 128) / 240
  np.testing.assert_allclose(_compute_term(enc, {"params": params}, feats, pads), expected, rtol=1e-6)


@pytest.mark.parametrize("layers,estimator", [(1, "gumbel_st"), (2, "relaxed")])
def test_the_compute_term_gradient_matches_central_differences(layers, estimator):
  """With one block the term is a smooth function of the parameters under any estimator; with
  two, block 0's gate feeds block 1's arbitrator, which is smooth for the relaxed gate only
  (the straight-through gradient is a surrogate by design). The gate noise is the same draw."""
  enc, feats, pads, params = _setup(layers=layers, arbitrator_input="both", estimator=estimator)
  with jax.enable_x64(True):
    p64 = jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), params)
    f64 = jnp.asarray(feats, jnp.float64)
    loss = jax.jit(lambda p: _compute_term(enc, p, f64, jnp.asarray(pads, jnp.float64)))
    grad = jax.grad(loss)(p64)
    rng = np.random.default_rng(1)
    paths = [("block_0", "arbitrator", "kernel"), ("block_0", "arbitrator", "bias"), ("input_proj", "kernel")]
    if layers == 2:
      paths += [("block_1", "arbitrator", "kernel"), ("block_0", "mhsa", "query", "kernel")]
    for path in paths:
      leaf = p64["params"]
      for k in path:
        leaf = leaf[k]
      for _ in range(3):
        idx = tuple(rng.integers(0, s) for s in leaf.shape)
        def shifted(eps, path=path, idx=idx):
          def edit(tree, depth=0):
            if depth == len(path):
              return tree.at[idx].add(eps)
            return {**tree, path[depth]: edit(tree[path[depth]], depth + 1)}
          return {"params": edit(p64["params"])}
        fd = (loss(shifted(1e-6)) - loss(shifted(-1e-6))) / 2e-6
        g = grad["params"]
        for k in path:
          g = g[k]
        np.testing.assert_allclose(float(g[idx]), float(fd), rtol=1e-5, atol=1e-9)
    assert float(jnp.abs(grad["params"][f"block_{layers - 1}"]["arbitrator"]["bias"]).max()) > 1e-3


def test_streaming_chunks_equal_the_whole_utterance_gates_included():
  enc, feats, pads, params = _setup(seed=3, gate_bias_init=0.0)

  apply = jax.jit(lambda f, p, state: enc.apply(params, f, p, state, mutable=["intermediates"]))

  def run(f, p, state):
    (enc_out, enc_pad, state), inter = apply(f, p, state)
    gates = np.stack([np.asarray(g) for g in inter["intermediates"]["gate_mha"]])  # [L, B, T']
    return np.asarray(enc_out), np.asarray(enc_pad), state, gates

  whole, whole_pad, _, whole_gates = run(feats, pads, enc.init_state(2))
  valid = whole_pad == 0
  assert 0.2 < whole_gates[:, valid].mean() < 0.8  # the gates really skip here
  state, outs, gates, t = enc.init_state(2), [], [], 0
  for size in (4, 8, 4, 12, 4, 8):
    y, _, state, g = run(feats[:, t:t + size], pads[:, t:t + size], state)
    outs.append(y)
    gates.append(g)
    t += size
  np.testing.assert_array_equal(np.concatenate(gates, axis=2)[:, valid], whole_gates[:, valid])
  np.testing.assert_allclose(np.concatenate(outs, 1)[valid], whole[valid], rtol=1e-5, atol=1e-5)


def _compiled_flops(fn, *args):
  cost = jax.jit(fn).lower(*args).compile().cost_analysis()
  return float((cost[0] if isinstance(cost, list) else cost).get("flops", 0.0))  # none: nothing computed


def test_xla_counts_fewer_flops_for_the_skip_path_when_fewer_frames_are_active():
  rng = np.random.default_rng(0)
  b, t, d = 1, 32, 64
  layer = chunked_attention.ChunkedSelfAttention(heads=4, chunk_size=1, left_chunks=32, max_relative=33)
  ffn = cca._FeedForward(4)
  x = jnp.asarray(rng.normal(size=(b, t, d)).astype(np.float32))
  pads = jnp.zeros((b, t))
  att_params = layer.init(jax.random.key(0), x, pads, layer.init_state(b, d))
  ffn_params = ffn.init(jax.random.key(1), x)
  flops = []
  for cap in (32, 24, 16, 8, 0):
    active = jnp.asarray(np.arange(t)[None] < cap)
    att = _compiled_flops(lambda p, x, a, cap=cap: layer.apply(p, x, pads, layer.init_state(b, d), a, cap)[0],
                          att_params, x, active)
    ff = _compiled_flops(lambda p, x, a, cap=cap: ffn.apply(p, x, a, cap), ffn_params, x, active)
    flops.append((att, ff))
  att, ff = np.array(flops).T
  assert np.all(np.diff(att) < 0) and np.all(np.diff(ff) < 0), flops
  # the FFN's count is its matmuls over the buffer, about proportional to the capacity, plus the
  # one-hot gather and scatter at 32 frames: 2 * (2 * 16 * 32 * 64) = 131k of the 1.07 M at half
  assert ff[-1] < 0.02 * ff[0] and 0.5 < ff[2] / ff[0] < 0.6
  assert att[-1] < 0.5 * att[0]  # the key/value projections remain: every frame is a key


def test_layers_to_keep_is_the_smaller_model_with_those_blocks():
  enc, feats, pads, params = _setup(layers=3, gating="none")
  pruned = enc.clone(layers_to_keep=(0, 2))
  y, _, _ = pruned.apply(params, feats, pads, pruned.init_state(2))
  two = cca.CCATransformerEncoder(**{**SMALL, "layers": 2, "gating": "none"})
  p = dict(params["params"])
  p["block_1"] = p.pop("block_2")
  reference, _, _ = two.apply({"params": p}, feats, pads, two.init_state(2))
  np.testing.assert_array_equal(y, reference)


def test_layerdrop_drops_whole_blocks_per_utterance_in_training_only():
  enc, feats, pads, params = _setup(layers=1, gating="none", layerdrop=0.5, b=4, inference="masked")
  feats, pads = jnp.concatenate([feats, feats]), jnp.concatenate([pads, pads])  # 8 utterances
  rngs = {"dropout": jax.random.key(2)}
  (y, y_pad, _), sown = enc.apply(params, feats, pads, enc.init_state(8), rngs=rngs, mutable=["losses"])
  plain = enc.clone(layerdrop=0.0)
  gates = lambda v: {k: np.full((1, 8, 20), v, np.float32) for k in ("mha", "ffn")}
  kept, _, _ = plain.apply(params, feats, pads, plain.init_state(8), gates(1.0))
  dropped, _, _ = plain.apply(params, feats, pads, plain.init_state(8), gates(0.0))
  was_kept = [bool(np.array_equal(y[i], kept[i])) for i in range(8)]
  was_dropped = [bool(np.array_equal(y[i], dropped[i])) for i in range(8)]
  assert all(k != d for k, d in zip(was_kept, was_dropped))  # each utterance: the whole block or none of it
  assert 0 < sum(was_kept) < 8
  frames = np.sum(np.asarray(y_pad) == 0, axis=1)
  np.testing.assert_allclose(float(sown["losses"]["compute_fraction"][0]), frames[was_kept].sum() / frames.sum(),
                             rtol=1e-6)
  _, sown = enc.apply(params, feats, pads, enc.init_state(8), mutable=["losses"])  # inference: every block
  assert float(sown["losses"]["compute_fraction"][0]) == 1.0


@pytest.mark.parametrize("field,value,match", [("gating", "always", "gating"), ("layers_to_keep", (0, 5), "layers_to_keep"),
                                               ("layerdrop", 1.0, "layerdrop"), ("inference", "fast", "inference")])
def test_bad_settings_are_refused_naming_the_field(field, value, match):
  enc = cca.CCATransformerEncoder(**{**SMALL, field: value})
  with pytest.raises(ValueError, match=match):
    enc.init(jax.random.key(0), jnp.zeros((1, 8, 6)), jnp.zeros((1, 8)), enc.init_state(1))
