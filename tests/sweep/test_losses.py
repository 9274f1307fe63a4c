"""Bad-input sweep: the RNN-T losses (full, gathered, pruned, simple) and the padding contract.

References: "correct" cases against float64 enumeration of every alignment
(`tests/oracles.py`) of the inputs exactly as the loss receives them (fp32 or bf16
values cast to float64: the exact loss of that input, whatever its offset), or a
hand-derived value (+inf for no frames, an empty result for B = 0). Errors must be
`ValueError` (or `TypeError` where documented) naming the argument. Under `jit`,
where values cannot be inspected, an invalid row must come out NaN while the other
rows stay exact.

Shapes: one base batch (B, T, U, V) = (2, 3, 2, 4) so that most cases share one
compiled program.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from asrjax.losses import paddings_valid, pruned_rnnt, rnnt_loss, rnnt_loss_from_log_probs, validate_paddings
from tests import oracles
from tests.sweep import cases
from tests.sweep.cases import Case

B, T, U, V = 2, 3, 2, 4
T_LEN, U_LEN = np.array([3, 2]), np.array([2, 1])  # row 1 is padded in both axes
LABELS = np.array([[1, 2], [3, 1]])  # row 1's second label is padding


def _pads(lengths, size):
  return (np.arange(size)[None, :] >= np.asarray(lengths)[:, None]).astype(np.float32)


def _logits(seed=0, offset=0.0, shape=(B, T, U + 1, V)):
  return (np.random.default_rng(seed).normal(size=shape) * 2 + offset).astype(np.float32)


def _ref(logits, t_len=T_LEN, labels=LABELS, u_len=U_LEN, blank=0, lam=0.0):
  """Per-row float64 enumeration of the given (already cast) logits; +inf for a row without frames."""
  x = np.asarray(jnp.asarray(logits).astype(jnp.float32), np.float64)
  out = []
  for i in range(x.shape[0]):
    if t_len[i] == 0:
      out.append(np.inf)
      continue
    out.append(oracles.rnnt_nll_and_grads(x[i, : t_len[i], : u_len[i] + 1], labels[i, : u_len[i]], blank, lam)[0])
  return np.array(out)


def _close(expected, rtol=1e-5, atol=1e-5):
  return lambda got: got.shape == np.shape(expected) and np.allclose(np.asarray(got), expected, rtol=rtol, atol=atol)


def _nan_row(row, expected):
  """Under jit: row ``row`` NaN, every other row equal to ``expected``."""
  def check(got):
    got = np.asarray(got)
    others = [i for i in range(len(got)) if i != row]
    return bool(np.isnan(got[row])) and np.allclose(got[others], np.asarray(expected)[others], rtol=1e-5, atol=1e-5)
  return check


def _args(logit_pads=None, labels=None, label_pads=None):
  return (_pads(T_LEN, T) if logit_pads is None else logit_pads, LABELS if labels is None else labels,
          _pads(U_LEN, U) if label_pads is None else label_pads)


def _with(array, index, value):
  a = np.array(array, dtype=np.asarray(array).dtype, copy=True)
  a[index] = value
  return a


_full_jit = jax.jit(rnnt_loss, static_argnames=("blank_id", "fastemit_lambda"))


def _gathered(logits, logit_pads, labels, label_pads, jit=False, **kw):
  """The gathered variant fed with `jax.nn.log_softmax` log-probs of ``logits`` (differentiable).

  The gather uses the labels clipped into range (the loss itself validates the real ones).
  """
  lp = jax.nn.log_softmax(jnp.asarray(logits, jnp.float32), axis=-1)
  b = kw.get("blank_id", 0)
  blank = lp[..., b % lp.shape[-1] if isinstance(b, int) and lp.shape[-1] else 0]  # bad ids: the loss rejects them
  lab = np.asarray(labels)
  if lab.ndim == 2 and lab.shape[0] == lp.shape[0] and lab.shape[1] + 1 == lp.shape[2]:
    ext = np.concatenate([np.clip(lab, 0, lp.shape[-1] - 1).astype(np.int32), np.zeros((lab.shape[0], 1), np.int32)], 1)
    nxt = jnp.take_along_axis(lp, jnp.asarray(ext)[:, None, :, None], -1)[..., 0]
  else:  # shapes the loss must reject anyway
    nxt = blank
  fn = jax.jit(rnnt_loss_from_log_probs, static_argnames=("vocab_size", "blank_id", "fastemit_lambda")) if jit \
      else rnnt_loss_from_log_probs
  return fn(blank, nxt, logit_pads, labels, label_pads, vocab_size=lp.shape[-1], **kw)


def _pruned(logits, logit_pads, labels, label_pads, jit=False, starts=None, **kw):
  """The pruned loss with full windows (S = U + 1, starts 0): it must equal the full loss."""
  starts = np.zeros(np.shape(logits)[:2], np.int32) if starts is None else starts
  fn = jax.jit(pruned_rnnt.pruned_rnnt_loss, static_argnames=("blank_id", "fastemit_lambda")) if jit \
      else pruned_rnnt.pruned_rnnt_loss
  return fn(logits, starts, logit_pads, labels, label_pads, **kw)


def _grad_matches(fn, logits, lam, rows=range(B)):
  """The gradient of sum(loss) against the enumeration's (FastEmit-scaled) gradient."""
  def check(grad):
    x = np.asarray(logits, np.float64)
    for i in rows:
      expected = np.zeros_like(x[i])
      _, g, _, _ = oracles.rnnt_nll_and_grads(x[i, : T_LEN[i], : U_LEN[i] + 1], LABELS[i, : U_LEN[i]], 0, lam)
      expected[: T_LEN[i], : U_LEN[i] + 1] = g
      if not np.allclose(np.asarray(grad[i], np.float64), expected, atol=2e-5):
        return False
    return True
  return check


BASE = _logits()
REF = _ref(BASE)


# ----------------------------------------------------------------------------
# rnnt_loss (full logits) and, where the input is the same, the other entry points
# ----------------------------------------------------------------------------


def _entry_cases(name, fn):
  """Cases every loss entry point taking [B, T, U+1, V]-shaped logits must pass alike."""
  jfn = (lambda *a, **k: _full_jit(*a, **k)) if name == "rnnt_loss" else (lambda *a, **k: fn(*a, jit=True, **k))
  c = f"losses/{name}"
  off = {o: _logits(1, o) for o in (1e5, 1e7, 1e8, -1e8)}
  equal = np.full((B, T, U + 1, V), 1e8, np.float32)
  nan_pad = _with(_with(BASE, (1, 2), np.nan), (1, slice(None), 2), np.inf)  # padded frame and label position
  nan_valid = _with(BASE, (1, 0, 0, 3), np.nan)
  neg_inf_unused = _with(BASE, (0, 0, 0, 3), -np.inf)  # symbol 3 is neither blank nor label at (0, 0)
  return [
      Case(f"{c}/baseline", lambda: fn(BASE, *_args()), check=_close(REF)),
      *[Case(f"{c}/offset-{o:g}", lambda o=o: fn(off[o], *_args()), check=_close(_ref(off[o]))) for o in off],
      Case(f"{c}/all-logits-equal-1e8", lambda: fn(equal, *_args()), check=_close(_ref(equal))),
      Case(f"{c}/nan-inf-in-padded-positions", lambda: fn(nan_pad, *_args()), check=_close(REF)),
      Case(f"{c}/nan-in-valid-position-is-nan", lambda: fn(nan_valid, *_args()), check=_nan_row(1, REF)),
      Case(f"{c}/minus-inf-unused-symbol", lambda: fn(neg_inf_unused, *_args()), check=_close(_ref(neg_inf_unused))),
      Case(f"{c}/labels-out-of-range", lambda: fn(BASE, *_args(labels=_with(LABELS, (0, 1), V))),
           raises=ValueError, match=r"labels\[0, 1\] = 4.*\[0, 4\)"),
      Case(f"{c}/labels-negative", lambda: fn(BASE, *_args(labels=_with(LABELS, (1, 0), -1))),
           raises=ValueError, match=r"labels\[1, 0\] = -1"),
      Case(f"{c}/labels-equal-blank", lambda: fn(BASE, *_args(labels=_with(LABELS, (0, 0), 0))),
           raises=ValueError, match="labels.*differ from blank_id=0"),
      Case(f"{c}/labels-out-of-range-in-padding-ignored", lambda: fn(BASE, *_args(labels=_with(LABELS, (1, 1), 99))),
           check=_close(REF)),
      Case(f"{c}/jit-labels-out-of-range-nan-row", lambda: jfn(BASE, *_args(labels=_with(LABELS, (1, 0), V))),
           check=_nan_row(1, REF)),
      Case(f"{c}/jit-labels-equal-blank-nan-row", lambda: jfn(BASE, *_args(labels=_with(LABELS, (0, 1), 0))),
           check=_nan_row(0, REF)),
      Case(f"{c}/labels-float", lambda: fn(BASE, *_args(labels=LABELS.astype(np.float32))), raises=ValueError,
           match="labels must be (an int array|integers)"),
      Case(f"{c}/labels-batch-3", lambda: fn(BASE, *_args(labels=np.ones((3, U), int), label_pads=np.zeros((3, U)))),
           raises=ValueError, match=r"labels (has batch size 3|shape \(3, 2\) does not match)"),
      Case(f"{c}/blank-id-negative", lambda: fn(BASE, *_args(), blank_id=-1), raises=ValueError,
           match=r"blank_id(=| )-1 (must lie in|outside) \[0, (V\) = \[0, )?4\)"),
      Case(f"{c}/blank-id-equals-V", lambda: fn(BASE, *_args(), blank_id=V), raises=ValueError,
           match=r"blank_id(=| )4 (must lie in|outside) \[0, (V\) = \[0, )?4\)"),
      Case(f"{c}/blank-id-float", lambda: fn(BASE, *_args(), blank_id=0.5), raises=ValueError,
           match="blank_id must be an int"),
      Case(f"{c}/blank-id-2", lambda: fn(BASE, *_args(labels=np.array([[1, 3], [3, 1]])), blank_id=2),
           check=_close(_ref(BASE, labels=np.array([[1, 3], [3, 1]]), blank=2))),
      *[Case(f"{c}/fastemit-{lam}", lambda lam=lam: fn(BASE, *_args(), fastemit_lambda=lam), raises=ValueError,
             match="fastemit_lambda must be (a finite float )?>= 0") for lam in (np.nan, np.inf, -0.1)],
      Case(f"{c}/fastemit-traced", lambda: jax.jit(lambda lam: fn(BASE, *_args(), fastemit_lambda=lam))(0.1),
           raises=ValueError, match="fastemit_lambda must be a static Python float"),
      Case(f"{c}/fastemit-0.5-gradient", lambda: jax.grad(lambda x: fn(x, *_args(), fastemit_lambda=0.5).sum())(
          jnp.asarray(BASE)), check=_grad_matches(fn, BASE, 0.5)),
      Case(f"{c}/gradient-at-offset-1e8", lambda: jax.grad(lambda x: fn(x, *_args()).sum())(jnp.asarray(off[1e8])),
           check=_grad_matches(fn, off[1e8], 0.0)),
      Case(f"{c}/logit-paddings-non-trailing", lambda: fn(BASE, *_args(logit_pads=np.array([[0, 1, 0], [0, 0, 1.]]))),
           raises=ValueError, match=r"logit_paddings row 0 has a valid position.*trailing"),
      Case(f"{c}/logit-paddings-half", lambda: fn(BASE, *_args(logit_pads=np.array([[0, 0, 0], [0, 0.5, 1]]))),
           raises=ValueError, match=r"logit_paddings(\[1, 1\] = 0.5:)? .*only 0(\.0)? \(valid\) and 1"),
      Case(f"{c}/label-paddings-non-trailing", lambda: fn(BASE, *_args(label_pads=np.array([[1, 0], [0, 1.]]))),
           raises=ValueError, match=r"label_paddings row 0 has a valid position"),
      Case(f"{c}/label-paddings-nan", lambda: fn(BASE, *_args(label_pads=np.array([[0, np.nan], [0, 1.]]))),
           raises=ValueError, match=r"label_paddings(\[0, 1\] = nan:)? .*only 0(\.0)? \(valid\) and 1"),
      Case(f"{c}/jit-logit-paddings-non-trailing-nan-row",
           lambda: jfn(BASE, *_args(logit_pads=np.array([[0, 0, 0], [0, 1, 0.]]))), check=_nan_row(1, REF)),
      Case(f"{c}/jit-logit-paddings-half-nan-row",
           lambda: jfn(BASE, *_args(logit_pads=np.array([[0, 0.5, 0], [0, 0, 1.]]))), check=_nan_row(0, REF)),
      Case(f"{c}/jit-label-paddings-non-trailing-nan-row",
           lambda: jfn(BASE, *_args(label_pads=np.array([[0, 0], [1, 0.]]))), check=_nan_row(1, REF)),
      Case(f"{c}/jit-label-paddings-half-nan-row",
           lambda: jfn(BASE, *_args(label_pads=np.array([[0, 0], [0, 0.5]]))), check=_nan_row(1, REF)),
      Case(f"{c}/paddings-int64-and-bool",
           lambda: fn(BASE, *_args(logit_pads=_pads(T_LEN, T).astype(np.int64), label_pads=_pads(U_LEN, U) > 0)),
           check=_close(REF)),
      Case(f"{c}/logit-paddings-shape", lambda: fn(BASE, *_args(logit_pads=np.zeros((B, T + 1)))), raises=ValueError,
           match=r"logit_paddings .*\[B, T\]|logit_paddings .*\(B, T\) = \(2, 3\)"),
      Case(f"{c}/label-paddings-shape", lambda: fn(BASE, *_args(label_pads=np.zeros((B, U + 1)))), raises=ValueError,
           match=r"label_paddings (must be \[B, U\] like labels|shape \(2, 3\) != labels shape) .*\(2, 2\)"),
      Case(f"{c}/row-without-frames-is-inf", lambda: fn(BASE, *_args(logit_pads=np.array([[0, 0, 0], [1, 1, 1.]]))),
           check=lambda got: np.isclose(got[0], REF[0], rtol=1e-5) and got[1] == np.inf),
      Case(f"{c}/B-0", lambda: fn(np.zeros((0, T, U + 1, V), np.float32), np.zeros((0, T)),
                                  np.zeros((0, U), np.int32), np.zeros((0, U))),
           check=lambda got: got.shape == (0,)),
      Case(f"{c}/U-0", lambda: fn(BASE[:, :, :1], _pads(T_LEN, T), np.zeros((B, 0), np.int32), np.zeros((B, 0))),
           check=_close(_ref(BASE[:, :, :1], labels=np.zeros((B, 0), int), u_len=[0, 0]))),
      Case(f"{c}/T-1", lambda: fn(BASE[:, :1], np.zeros((B, 1)), LABELS, _pads(U_LEN, U)),
           check=_close(_ref(BASE[:, :1], t_len=[1, 1]))),
      Case(f"{c}/V-1-no-labels-is-zero", lambda: fn(BASE[:, :, :1, :1], np.zeros((B, T)), np.zeros((B, 0), np.int32),
                                                    np.zeros((B, 0))), check=_close(np.zeros(B))),
      Case(f"{c}/V-1-with-a-label", lambda: fn(BASE[:, :, :, :1], *_args(labels=np.zeros((B, U), int))),
           raises=ValueError, match=r"labels\[0, 0\] = 0 is not a valid label"),
  ]


def _full_only_cases():
  c = "losses/rnnt_loss"
  bf16 = jnp.asarray(_logits(2), jnp.bfloat16)
  bf16_off = jnp.asarray(_logits(3, 1e5), jnp.bfloat16)
  f16 = jnp.asarray(_logits(4), jnp.float16)
  padded_nan = _with(BASE, (1, 2), np.nan)
  return [
      Case(f"{c}/logits-rank-3", lambda: rnnt_loss(BASE[..., 0], *_args()), raises=ValueError,
           match=r"logits must be .*B, T, U\+1, V.*got (shape )?\(2, 3, 3\)"),
      Case(f"{c}/logits-rank-5", lambda: rnnt_loss(BASE[..., None], *_args()), raises=ValueError,
           match=r"logits must be .*B, T, U\+1, V"),
      Case(f"{c}/logits-int", lambda: rnnt_loss(BASE.astype(np.int32), *_args()), raises=ValueError,
           match="logits must be a float array"),
      Case(f"{c}/logits-V-0", lambda: rnnt_loss(np.zeros((B, T, U + 1, 0), np.float32), *_args()), raises=ValueError,
           match="logits must have V >= 1"),
      Case(f"{c}/logits-nested-list", lambda: rnnt_loss(BASE.tolist(), *_args()), check=_close(REF)),
      Case(f"{c}/logits-float64-numpy", lambda: rnnt_loss(BASE.astype(np.float64), *_args()), check=_close(REF)),
      Case(f"{c}/labels-U-mismatch",
           lambda: rnnt_loss(BASE, *_args(labels=np.ones((B, 3), int), label_pads=np.zeros((B, 3)))),
           raises=ValueError, match=r"labels shape \(2, 3\) does not match logits.*\(B, U\) = \(2, 2\)"),
      Case(f"{c}/labels-rank-1", lambda: rnnt_loss(BASE, _pads(T_LEN, T), np.ones(B, int), np.zeros(B)),
           raises=ValueError, match=r"labels must be \[B, U\]"),
      Case(f"{c}/labels-bool", lambda: rnnt_loss(BASE, *_args(labels=LABELS > 0)), raises=ValueError,
           match="labels must be (an int array|integers)"),
      Case(f"{c}/logit-paddings-rank-1", lambda: rnnt_loss(BASE, *_args(logit_pads=np.zeros(T))), raises=ValueError,
           match=r"logit_paddings (must be \[B, T\]|shape \(3,\) != \(B, T\))"),
      Case(f"{c}/logit-paddings-strings", lambda: rnnt_loss(BASE, *_args(logit_pads=np.full((B, T), "0"))),
           raises=ValueError, match=r"logit_paddings must (be a float, int or bool array|hold only 0)"),
      Case(f"{c}/logit-paddings-value-2", lambda: rnnt_loss(BASE, *_args(logit_pads=np.array([[0, 0, 2], [0, 0, 1]]))),
           raises=ValueError, match=r"logit_paddings(\[0, 2\] = 2:| must hold only 0)"),
      Case(f"{c}/jit-over-logits-concrete-bad-paddings-raise",
           lambda: jax.jit(lambda x: rnnt_loss(x, *_args(logit_pads=np.array([[0, 1, 0], [0, 0, 1.]]))))(BASE),
           raises=ValueError, match="logit_paddings row 0"),
      Case(f"{c}/T-0-is-inf", lambda: rnnt_loss(np.zeros((B, 0, U + 1, V), np.float32), np.zeros((B, 0)), LABELS,
                                                _pads(U_LEN, U)), check=lambda got: np.all(np.asarray(got) == np.inf)),
      Case(f"{c}/bf16", lambda: rnnt_loss(bf16, *_args()), check=_close(_ref(bf16))),
      Case(f"{c}/bf16-offset-1e5", lambda: rnnt_loss(bf16_off, *_args()), check=_close(_ref(bf16_off))),
      Case(f"{c}/float16", lambda: rnnt_loss(f16, *_args()), check=_close(_ref(f16), rtol=1e-4)),
      Case(f"{c}/gradient-zero-on-nan-padding", lambda: jax.grad(lambda x: rnnt_loss(x, *_args()).sum())(
          jnp.asarray(padded_nan)), check=lambda g: bool(np.all(np.isfinite(g)) and np.all(np.asarray(g)[1, 2] == 0))),
      Case(f"{c}/all-minus-inf-valid-node-is-nan", lambda: rnnt_loss(_with(BASE, (0, 0, 0), -np.inf), *_args()),
           check=lambda got: bool(np.isnan(got[0])) and np.isclose(got[1], REF[1], rtol=1e-5)),
      Case(f"{c}/plus-inf-valid-logit-not-finite", lambda: rnnt_loss(_with(BASE, (1, 0, 0, 2), np.inf), *_args()),
           check=lambda got: not np.isfinite(got[1]) and np.isclose(got[0], REF[0], rtol=1e-5)),
  ]


# ----------------------------------------------------------------------------
# rnnt_loss_from_log_probs, pruned and simple losses, the validation helpers
# ----------------------------------------------------------------------------


def _gathered_only_cases():
  c = "losses/rnnt_loss_from_log_probs"
  lp3 = jnp.zeros((B, T, U + 1))
  call = lambda bl, ll=None, **kw: rnnt_loss_from_log_probs(bl, bl if ll is None else ll, *_args(), **kw)
  return [
      Case(f"{c}/4-D-input", lambda: call(jnp.asarray(BASE)), raises=ValueError,
           match=r"blank_log_probs must be a \(B, T, U\+1\) array of log-probs; got shape \(2, 3, 3, 4\)"),
      Case(f"{c}/2-D-input", lambda: call(jnp.zeros((B, T))), raises=ValueError,
           match=r"blank_log_probs must be a \(B, T, U\+1\)"),
      Case(f"{c}/label-log-probs-shape", lambda: call(lp3, jnp.zeros((B, T, U))), raises=ValueError,
           match=r"label_log_probs .*blank_log_probs"),
      Case(f"{c}/int-log-probs", lambda: call(jnp.zeros((B, T, U + 1), jnp.int32)), raises=ValueError,
           match="blank_log_probs must be a float array"),
      Case(f"{c}/vocab-size-0", lambda: call(lp3, vocab_size=0), raises=ValueError,
           match="vocab_size must be None or an int >= 1"),
      Case(f"{c}/vocab-size-float", lambda: call(lp3, vocab_size=4.0), raises=ValueError,
           match="vocab_size must be None or an int"),
      Case(f"{c}/labels-unchecked-without-vocab-size",
           lambda: rnnt_loss_from_log_probs(lp3 - 1.0, lp3 - 2.0, *_args(labels=_with(LABELS, (0, 0), 99))),
           check=_close([oracles.rnnt_nll_of_edge_scores(np.full((T_LEN[i], U_LEN[i] + 1), -1.0),
                                                         np.full((T_LEN[i], U_LEN[i] + 1), -2.0)) for i in range(B)])),
      Case(f"{c}/T-0-is-inf", lambda: rnnt_loss_from_log_probs(jnp.zeros((B, 0, U + 1)), jnp.zeros((B, 0, U + 1)),
                                                               np.zeros((B, 0)), LABELS, _pads(U_LEN, U)),
           check=lambda got: np.all(np.asarray(got) == np.inf)),
      Case(f"{c}/bf16-log-probs", lambda: call(jnp.full((B, T, U + 1), -0.7, jnp.bfloat16)),
           check=_close([oracles.rnnt_nll_of_edge_scores(
               np.full((T_LEN[i], U_LEN[i] + 1), float(jnp.bfloat16(-0.7))),
               np.full((T_LEN[i], U_LEN[i] + 1), float(jnp.bfloat16(-0.7)))) for i in range(B)])),
  ]


def _windowed_ref(logits, starts, s, lam=0.0):
  return np.array([oracles.rnnt_nll_windowed(np.asarray(logits, np.float64)[i, : T_LEN[i], : U_LEN[i] + 1],
                                             LABELS[i, : U_LEN[i]], starts[i, : T_LEN[i]], s) for i in range(B)])


def _pruned_only_cases():
  c = "losses/pruned_rnnt_loss"
  starts = np.array([[0, 0, 1], [0, 0, 0]], np.int32)  # S = 2 windows that hold a path for both rows
  win = np.take_along_axis(BASE, np.minimum(starts[:, :, None] + np.arange(2), U)[..., None], axis=2)
  call = lambda x, st, **kw: pruned_rnnt.pruned_rnnt_loss(x, st, *_args(), **kw)
  return [
      Case(f"{c}/windows-of-2", lambda: call(win, starts), check=_close(_windowed_ref(BASE, starts, 2))),
      Case(f"{c}/logits-rank-3", lambda: call(win[..., 0], starts), raises=ValueError,
           match=r"logits must be .*\[B, T, S, V\]"),
      Case(f"{c}/starts-float", lambda: call(win, starts.astype(np.float32)), raises=ValueError,
           match="starts must be an int array"),
      Case(f"{c}/starts-shape", lambda: call(win, starts[:, :2]), raises=ValueError,
           match=r"starts (must be )?\[B, T\]"),
      Case(f"{c}/labels-rank-1", lambda: pruned_rnnt.pruned_rnnt_loss(win, starts, _pads(T_LEN, T), np.ones(B, int),
                                                                      np.zeros(B)),
           raises=ValueError, match=r"labels must be \[B, U\]"),
      Case(f"{c}/T-0-is-inf", lambda: pruned_rnnt.pruned_rnnt_loss(
          np.zeros((B, 0, 2, V), np.float32), np.zeros((B, 0), np.int32), np.zeros((B, 0)), LABELS, _pads(U_LEN, U)),
           check=lambda got: np.all(np.asarray(got) == np.inf)),
  ]


def _simple_cases():
  c = "losses/simple_rnnt_loss"
  rng = np.random.default_rng(5)
  am, lm = rng.normal(size=(B, T, V)).astype(np.float32), rng.normal(size=(B, U + 1, V)).astype(np.float32)
  joined = lambda a, m: a[:, :, None, :].astype(np.float64) + m[:, None, :, :].astype(np.float64)
  am_off, lm_off = (am * 2 + 1e8).astype(np.float32), (lm * 2 - 1e8).astype(np.float32)
  call = lambda a, m, *args, **kw: pruned_rnnt.simple_rnnt_loss(a, m, *(args or _args()), **kw)[0]
  return [
      Case(f"{c}/baseline", lambda: call(am, lm), check=_close(_ref(joined(am, lm)))),
      Case(f"{c}/offset-1e8", lambda: call(am_off, lm_off), check=_close(_ref(joined(am_off, lm_off)))),
      Case(f"{c}/am-rank-2", lambda: call(am[..., 0], lm), raises=ValueError, match=r"am must be \[B, T, V\]"),
      Case(f"{c}/vocab-mismatch", lambda: call(am, lm[..., :3]), raises=ValueError,
           match=r"am must be \[B, T, V\] and lm \[B, U\+1, V\]"),
      Case(f"{c}/lm-rows", lambda: call(am, np.concatenate([lm, lm], 1)), raises=ValueError,
           match=r"lm has 6 rows; labels \(2, 2\) need U\+1 = 3"),
      Case(f"{c}/labels-float", lambda: call(am, lm, *_args(labels=LABELS.astype(np.float32))), raises=ValueError,
           match="labels must be (an int array|integers)"),
      Case(f"{c}/blank-id-equals-V", lambda: call(am, lm, blank_id=V), raises=ValueError,
           match=r"blank_id=4 must lie in \[0, V\)"),
      Case(f"{c}/jit-label-paddings-half-nan-row", lambda: jax.jit(lambda a, m, lp: pruned_rnnt.simple_rnnt_loss(
          a, m, _pads(T_LEN, T), LABELS, lp)[0])(am, lm, np.array([[0, 0], [0.5, 1]])),
           check=_nan_row(1, _ref(joined(am, lm)))),
      Case(f"{c}/T-0-is-inf", lambda: pruned_rnnt.simple_rnnt_loss(np.zeros((B, 0, V), np.float32), lm,
                                                                   np.zeros((B, 0)), LABELS, _pads(U_LEN, U)),
           check=lambda got: np.all(np.asarray(got[0]) == np.inf) and got[1].shape == (B, 0, U + 1)),
      Case("losses/prune_ranges/prune-range-1", lambda: pruned_rnnt.prune_ranges(
          jnp.ones((B, T, U + 1)), jnp.asarray(T_LEN), jnp.asarray(U_LEN), 1), raises=ValueError,
           match="prune_range must be (an int )?>= 2"),
      Case("losses/prune_ranges/prune-range-float", lambda: pruned_rnnt.prune_ranges(
          jnp.ones((B, T, U + 1)), jnp.asarray(T_LEN), jnp.asarray(U_LEN), 2.5), raises=ValueError,
           match="prune_range must be an int >= 2"),
  ]


def _contract_cases():
  c = "losses/validate_paddings"
  v = lambda p: validate_paddings(p, "logit_paddings")
  return [
      Case(f"{c}/trailing-float", lambda: v(np.array([[0, 0, 1], [0, 0, 0.]])), check=lambda r: r is None),
      Case(f"{c}/bool", lambda: v(np.array([[False, True], [True, True]])), check=lambda r: r is None),
      Case(f"{c}/rank-1", lambda: v(np.zeros(3)), raises=ValueError,
           match=r"logit_paddings must be a \[B, N\] array.*got shape \(3,\)"),
      Case(f"{c}/rank-3", lambda: v(np.zeros((1, 2, 3))), raises=ValueError, match=r"logit_paddings must be a \[B, N\]"),
      Case(f"{c}/half", lambda: v(np.array([[0, 0.5]])), raises=ValueError, match=r"logit_paddings\[0, 1\] = 0.5"),
      Case(f"{c}/non-trailing", lambda: v(np.array([[0, 0], [1, 0]])), raises=ValueError,
           match=r"logit_paddings row 1 has a valid position \(1\) after a padded one \(0\)"),
      Case(f"{c}/nan", lambda: v(np.array([[np.nan, 1]])), raises=ValueError, match=r"logit_paddings\[0, 0\] = nan"),
      Case(f"{c}/strings", lambda: v(np.array([["0", "1"]])), raises=ValueError,
           match="logit_paddings must hold real numbers"),
      Case(f"{c}/tracer", lambda: jax.jit(v)(jnp.zeros((1, 2))), raises=TypeError,
           match=r"validate_paddings\(logit_paddings\) needs a concrete array.*paddings_valid"),
      Case("losses/paddings_valid/jit", lambda: jax.jit(paddings_valid)(np.array([[0, 1, 1], [0, 1, 0], [0, .5, 1.]])),
           check=lambda r: np.array_equal(r, [True, False, False])),
      Case("losses/paddings_valid/rank-1", lambda: paddings_valid(jnp.zeros(3)), raises=ValueError,
           match=r"paddings must be a \[B, N\] array"),
  ]


CASES = (_entry_cases("rnnt_loss", rnnt_loss) + _entry_cases("rnnt_loss_from_log_probs", _gathered)
         + _entry_cases("pruned_rnnt_loss", _pruned) + _full_only_cases() + _gathered_only_cases()
         + _pruned_only_cases() + _simple_cases() + _contract_cases())


@pytest.mark.parametrize("case", CASES, ids=cases.ids(CASES))
def test_sweep(case):
  cases.assert_case(case)
