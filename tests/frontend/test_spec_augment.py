"""SpecAugment masks checked by counting masked cells, rows, columns and runs."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from asrjax.frontend.spec_augment import spec_augment


def _batch(lengths, t, f, seed=0, pad_value=0.0):
  rng = np.random.default_rng(seed)
  x = rng.uniform(1.0, 2.0, size=(len(lengths), t, f)).astype(np.float32)  # no accidental zeros
  pads = (np.arange(t)[None, :] >= np.asarray(lengths)[:, None]).astype(np.float32)
  x[pads == 1.0] = pad_value
  return x, pads


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
  """Maximal runs of True as (start, end) pairs, end exclusive."""
  edges = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
  return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))


def test_deterministic_for_key_and_keys_differ():
  x, pads = _batch([300, 200], 300, 80)
  a = np.asarray(spec_augment(jax.random.key(0), x, pads))
  b = np.asarray(spec_augment(jax.random.key(0), x, pads))
  c = np.asarray(spec_augment(jax.random.key(1), x, pads))
  np.testing.assert_array_equal(a, b)
  assert not np.array_equal(a, c)
  assert not np.array_equal(a[0] == 0, a[1] == 0)  # per-utterance masks, not one shared mask
  for only in (dict(num_time_masks=0), dict(num_freq_masks=0)):  # both kinds of mask follow the key
    a = np.asarray(spec_augment(jax.random.key(0), x, pads, **only))
    c = np.asarray(spec_augment(jax.random.key(1), x, pads, **only))
    assert not np.array_equal(a, c)


def test_masks_are_bands_within_bounds_and_valid_frames():
  lengths = [1000, 640, 400, 100, 19, 0]
  t, f = 1000, 80
  x, pads = _batch(lengths, t, f, pad_value=0.0)
  for seed in range(4):
    out = np.asarray(spec_augment(jax.random.key(seed), x, pads))  # defaults: 2 x F<=27, 10 x 5%
    zero = out == 0.0
    for b, length in enumerate(lengths):
      assert np.all(zero[b, length:])  # padding stays zero
      if length == 0:
        continue
      z = zero[b, :length]  # [L, F]
      cols = np.all(z, axis=0)  # frequency-masked channels
      rows = np.all(z, axis=1)  # time-masked frames
      # Every zero is explained by a masked row or column, and vice versa.
      np.testing.assert_array_equal(z, cols[None, :] | rows[:, None])
      col_runs = _runs(cols)
      assert len(col_runs) <= 2 and cols.sum() <= 2 * 27
      assert all(e - s <= 27 for s, e in col_runs) or len(col_runs) == 1  # two bands may merge
      max_width = int(0.05 * length)
      assert len(_runs(rows)) <= 10 and rows.sum() <= 10 * max_width
      if max_width == 0:
        assert rows.sum() == 0
      # Unmasked cells keep their values.
      np.testing.assert_array_equal(out[b, :length][~z], x[b, :length][~z])


def test_width_distributions_match_uniform_inclusive_ranges():
  n = 4096  # P(never drawing the maximum width) = (27/28)^4096 ~ 1e-65
  x, pads = _batch([200] * n, 200, 80, seed=1)
  out = np.asarray(
      spec_augment(jax.random.key(7), x, pads, num_freq_masks=1, max_freq_mask=27, num_time_masks=0)
  )
  cols = np.all(out == 0.0, axis=1)  # [n, F]
  widths = cols.sum(axis=1)
  assert widths.min() == 0 and widths.max() == 27
  assert abs(widths.mean() - 13.5) < 0.6  # U{0..27}: mean 13.5, standard error 0.13
  assert all(len(_runs(c)) <= 1 for c in cols[:256])
  nonempty = [(_runs(c)[0]) for c in cols if c.any()]
  assert min(s for s, _ in nonempty) == 0 and max(e for _, e in nonempty) == 80  # both edges reachable

  x, pads = _batch([200] * n, 300, 2, seed=1, pad_value=7.0)  # 100 padded frames after each utterance
  out = np.asarray(
      spec_augment(jax.random.key(8), x, pads, num_freq_masks=0, num_time_masks=1, max_time_mask_ratio=0.05)
  )
  np.testing.assert_array_equal(out[:, 200:], x[:, 200:])
  rows = np.all(out == 0.0, axis=2)  # [n, T]
  widths = rows.sum(axis=1)
  assert widths.min() == 0 and widths.max() == 10  # floor(0.05 * 200)
  assert abs(widths.mean() - 5.0) < 0.3  # U{0..10}: mean 5, standard error 0.05
  nonempty = [_runs(r)[0] for r in rows if r.any()]
  assert min(s for s, _ in nonempty) == 0 and max(e for _, e in nonempty) == 200


@pytest.mark.parametrize("pad_value", [0.0, 7.0])
def test_time_masks_adapt_to_length_and_padding_untouched(pad_value):
  lengths = [400, 100, 40]
  x, pads = _batch(lengths * 64, 400, 4, seed=2, pad_value=pad_value)
  out = np.asarray(
      spec_augment(
          jax.random.key(3), x, pads, num_freq_masks=2, max_freq_mask=1, num_time_masks=3, max_time_mask_ratio=0.1
      )
  )
  np.testing.assert_array_equal(out[pads == 1.0], x[pads == 1.0])  # no mask of either kind in padding
  rows = np.all(out == 0.0, axis=2) & (pads == 0.0)  # time-masked valid frames
  for b in range(len(x)):
    length = lengths[b % 3]
    runs = _runs(rows[b])
    assert all(e <= length for _, e in runs)
    assert len(runs) <= 3 and rows[b].sum() <= 3 * (length // 10)
  # The longest single-mask run seen per length reaches its own bound (40, 10, 4 frames).
  for i, length in enumerate(lengths):
    longest = max(max((e - s for s, e in _runs(r)), default=0) for r in rows[i::3])
    assert length // 10 <= longest <= 3 * (length // 10)


def test_multiplicity_ratio_limits_number_of_time_masks():
  lengths = [100, 40] * 128
  x, pads = _batch(lengths, 100, 2, seed=4)
  out = np.asarray(
      spec_augment(
          jax.random.key(5),
          x,
          pads,
          num_freq_masks=0,
          num_time_masks=10,
          max_time_mask_ratio=0.05,
          time_mask_multiplicity_ratio=0.02,
      )
  )
  rows = np.all(out == 0.0, axis=2) & (pads == 0.0)  # time-masked valid frames
  assert rows[1::2].sum() == 0  # floor(0.02 * 40) = 0 masks
  counts = [len(_runs(r)) for r in rows[0::2]]
  assert max(counts) == 2 and rows[0::2].sum(axis=1).max() <= 2 * 5  # floor(0.02 * 100) = 2 masks of <= 5


def test_bad_shapes_raise():
  with pytest.raises(ValueError, match="B, T, F"):
    spec_augment(jax.random.key(0), np.zeros((3, 4), np.float32), np.zeros((3,), np.float32))
