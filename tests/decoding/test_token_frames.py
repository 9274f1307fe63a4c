"""Every decoder's emission frames (`NBest.frames`), on toy transducers whose frames are known by construction.

`scripted_params` builds weights for the toy of `tests.decoding.toy` (any hidden width) in which each hidden
unit is one *transition* ``prev -> label``: it fires, and makes ``label`` win by a wide margin, exactly when
the encoder frame switches the unit on and the last label emitted (the prediction network's state; its
recurrence is zero) is ``prev``. Blank wins everywhere else. An encoder row then scripts the labels and the
frame of each: a frame switching on two chained transitions emits two labels (greedy, several symbols per
frame). Padded frames switch transitions on too, so reading one would show in the result.
"""

import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from asrjax import decoding
from tests.decoding import toy

greedy_lib = importlib.import_module("asrjax.decoding.greedy")  # the package exports the functions by these names
mbs_lib = importlib.import_module("asrjax.decoding.modified_beam_search")

V = 5  # blank 0, labels 1..4; the prediction state has toy.P = 5 dims, one per id
SHARP = 12.0  # pre-activation scale: tanh saturates, a fired unit is ~+1, every other ~-1
MARGIN = 10.0  # logit of a transition's label when it fires (-MARGIN otherwise)
TRANSITIONS = [(0, 3), (3, 1), (1, 4), (4, 2), (0, 2), (2, 1), (1, 3)]  # (prev, label), one hidden unit each


def scripted_params(transitions=TRANSITIONS) -> dict:
  """Toy weights: unit u fires iff enc[u] = 1 and the last label is transitions[u][0] (input ``enc [..., U + 1]``,
  the last entry a constant 1). A label's logit is +MARGIN when one of its units fires, else -MARGIN (its
  bias undoes the -MARGIN of its other units); blank's is 0."""
  units = len(transitions)
  w_enc = np.zeros((units + 1, units), np.float32)
  w_pred = np.zeros((toy.P, units), np.float32)
  w_out = np.zeros((units, V), np.float32)
  bias = np.zeros(V, np.float32)
  for u, (prev, label) in enumerate(transitions):
    w_enc[u, u], w_enc[units, u] = SHARP, -1.5 * SHARP  # SHARP * (enc_u + pred_prev - 1.5)
    w_pred[prev, u] = SHARP
    w_out[u, label] = MARGIN
    bias[label] += MARGIN
  bias[bias > 0] -= MARGIN
  return {"bias": bias, "emb": (3.0 * np.eye(V, toy.P)).astype(np.float32),
          "rec": np.zeros((toy.P, toy.P), np.float32), "enc": w_enc, "pred": w_pred, "out": w_out}


def scripted_enc(rows, t_max, lengths, transitions=TRANSITIONS) -> np.ndarray:
  """``[B, t_max, U + 1]`` encoder output: row b emits ``rows[b] = [(frame, label), ...]`` (labels in order, each
  following the previous one by a transition); frames from ``lengths[b]`` on switch every transition on."""
  units = len(transitions)
  enc = np.zeros((len(rows), t_max, units + 1), np.float32)
  enc[..., units] = 1.0
  for b, script in enumerate(rows):
    prev = 0
    for frame, label in script:
      enc[b, frame, transitions.index((prev, label))] = 1.0
      prev = label
    enc[b, lengths[b]:, :units] = 1.0  # padding that would emit if it were read
  return enc


# row 0: frame 2 emits two labels (1 then 4: not for modified beam search); rows 1, 2: one label per frame
SCRIPTS = [[(1, 3), (2, 1), (2, 4), (5, 2)], [(0, 2), (1, 1), (4, 3)], [(0, 3)]]
ONE_PER_FRAME = [[(1, 3), (2, 1), (3, 4), (6, 2)], [(0, 2), (1, 1), (4, 3)], [(0, 3)]]
T_MAX, LENGTHS = 7, [7, 6, 2]


def _expect(scripts):
  return [([label for _, label in s], [frame for frame, _ in s]) for s in scripts]


def _best(out):
  return [(row[0][0], row[0][2]) for row in out.to_timed_lists()]


def test_the_scripted_toy_emits_what_it_scripts():
  """The construction itself, on the NumPy model: at every frame the argmax is the scripted label or blank,
  by a margin that makes every decoder's best path the script."""
  params = scripted_params()
  enc = scripted_enc(SCRIPTS, T_MAX, LENGTHS)
  for b, script in enumerate(SCRIPTS):
    model = toy.NumpyModel(params, enc[b])
    y, frames = numpy_greedy_frames(model, LENGTHS[b], 4)
    assert (y, frames) == _expect([script])[0]
    assert model.log_probs(script[0][0], ())[script[0][1]] > -1e-3  # a near-certain emission


@pytest.mark.parametrize("max_symbols", [2, 4])
def test_greedy_frames_are_the_scripted_ones_with_two_labels_on_one_frame(max_symbols):
  enc = scripted_enc(SCRIPTS, T_MAX, LENGTHS)
  out = decoding.greedy_search(toy.FNS, scripted_params(), enc, toy.paddings(LENGTHS, T_MAX),
                               max_symbols_per_frame=max_symbols)
  assert _best(out) == _expect(SCRIPTS)
  assert np.asarray(out.frames).shape == np.asarray(out.labels).shape and out.frames.dtype == np.int32
  assert np.all(np.asarray(out.frames)[np.asarray(out.label_paddings) > 0] == 0)  # 0 at padded positions


def test_greedy_with_one_symbol_per_frame_moves_the_second_label_on():
  """max_symbols_per_frame = 1: frame 2 of row 0 emits 1 only, and 4 -> 2 at frame 5 cannot follow 1."""
  enc = scripted_enc(SCRIPTS, T_MAX, LENGTHS)
  out = decoding.greedy_search(toy.FNS, scripted_params(), enc, toy.paddings(LENGTHS, T_MAX), max_symbols_per_frame=1)
  assert _best(out) == [([3, 1], [1, 2])] + _expect(SCRIPTS[1:])


def test_beam_search_frames_are_the_scripted_ones():
  enc = scripted_enc(SCRIPTS, T_MAX, LENGTHS)
  for options in (dict(beam=1), dict(beam=4), dict(beam=4, length_norm=True, nbest=2)):
    out = decoding.beam_search(toy.FNS, scripted_params(), enc, toy.paddings(LENGTHS, T_MAX), **options)
    assert _best(out) == _expect(SCRIPTS), options


@pytest.mark.parametrize("beam", [1, 4])
def test_modified_beam_search_frames_are_the_scripted_ones(beam):
  enc = scripted_enc(ONE_PER_FRAME, T_MAX, LENGTHS)
  out = decoding.modified_beam_search(toy.FNS, scripted_params(), enc, toy.paddings(LENGTHS, T_MAX), beam=beam)
  assert _best(out) == _expect(ONE_PER_FRAME)
  assert np.all(np.asarray(out.frames)[np.asarray(out.label_paddings) > 0] == 0)


def test_modified_beam_search_under_jit_gives_the_frames_too():
  enc = scripted_enc(ONE_PER_FRAME, T_MAX, LENGTHS)
  params = scripted_params()
  run = jax.jit(lambda e, p: decoding.modified_beam_search(toy.FNS, params, e, p, beam=4))
  assert _best(run(enc, toy.paddings(LENGTHS, T_MAX))) == _expect(ONE_PER_FRAME)


def numpy_greedy_frames(model: toy.NumpyModel, num_frames: int, max_symbols: int) -> tuple[list[int], list[int]]:
  """`toy.numpy_greedy` that also records the frame t of every label it emits."""
  y, frames = (), []
  for t in range(num_frames):
    emitted = 0
    while True:
      k = int(np.argmax(model.log_probs(t, y)))
      if k == model.blank or emitted == max_symbols:
        break
      y, emitted = y + (k,), emitted + 1
      frames.append(t)
  return list(y), frames


@pytest.mark.parametrize("max_symbols", [1, 3])
def test_greedy_frames_match_the_numpy_greedy_search_on_random_toys(max_symbols):
  """Random (history-dependent) toys with rare blanks emit several labels on many frames."""
  rng = np.random.default_rng(0)
  checked = 0
  for seed in range(4):
    params = toy.make_params(seed, 4, 6, scale=2.0, blank_bias=-1.0)
    enc = rng.normal(size=(3, 7, 4)).astype(np.float32)
    lengths = [7, 4, 1]
    out = decoding.greedy_search(toy.FNS, params, enc, toy.paddings(lengths, 7), max_symbols_per_frame=max_symbols)
    for b, (labels, _, frames) in enumerate(row[0] for row in out.to_timed_lists()):
      assert (labels, frames) == numpy_greedy_frames(toy.NumpyModel(params, enc[b]), lengths[b], max_symbols)
      checked += len(frames) - len(set(frames))  # labels sharing a frame
  assert checked > 0 or max_symbols == 1


def test_streamed_greedy_frames_are_absolute_and_equal_whole_utterance_ones():
  """`greedy_continue(..., with_frames=True)` chunk by chunk: frames count from the utterance start (the state's
  t0), so their concatenation is the whole-utterance frames, also where a row ends inside a chunk."""
  params = toy.make_params(2, 4, 6, scale=2.0, blank_bias=-1.0)
  enc = np.random.default_rng(5).normal(size=(2, 9, 4)).astype(np.float32)
  lengths = [9, 5]
  pads = toy.paddings(lengths, 9)
  whole = [row[0] for row in decoding.greedy_search(toy.FNS, params, enc, pads, max_symbols_per_frame=3)
           .to_timed_lists()]
  state = greedy_lib.greedy_start(toy.FNS, params, 2)
  got = [([], []), ([], [])]
  for a, b in [(0, 3), (3, 3), (3, 6), (6, 9)]:  # an empty chunk too
    labels, label_pads, frames, state = greedy_lib.greedy_continue(
        toy.FNS, params, enc[:, a:b], pads[:, a:b], state, max_symbols_per_frame=3, with_frames=True)
    for row in range(2):
      keep = np.asarray(label_pads[row]) == 0
      got[row][0].extend(np.asarray(labels[row])[keep].tolist())
      got[row][1].extend(np.asarray(frames[row])[keep].tolist())
  assert got == [(y, f) for y, _, f in whole] and sum(len(f) for _, f in got) > 5
  np.testing.assert_array_equal(np.asarray(state.t0), lengths)
  three = greedy_lib.greedy_continue(toy.FNS, params, enc[:, :3], pads[:, :3], greedy_lib.greedy_start(toy.FNS, params, 2))
  assert len(three) == 3  # without with_frames: (labels, label_paddings, state) as before


def test_merged_duplicates_keep_the_frames_of_the_better_candidate():
  """`_merge_duplicates` at frame t = 4: hypothesis i = (2, 1) with frames (0, 1) and j = (2,) with frame (3,).
  j's 1-extension (frames (3, 4)) beats i's own blank entry when its score is higher, else i keeps (0, 1)."""
  labels = np.array([[[2, 1, 0], [2, 0, 0]]], np.int32)
  frames = np.array([[[0, 1, 0], [3, 0, 0]]], np.int32)
  num_labels = np.array([[2, 1]], np.int32)
  scores = np.zeros((1, 2), np.float32)
  for own, ext, want in [(-1.0, -2.0, [0, 1, 0]), (-2.0, -1.0, [3, 4, 0]), (-1.0, -1.0, [0, 1, 0])]:
    cand = np.full((1, 2, 3), -5.0, np.float32)
    cand[0, 0, 0], cand[0, 1, 1] = own, ext
    merged, blank_frames = mbs_lib._merge_duplicates(*map(jnp.asarray, (cand, labels, num_labels, scores)), 0,
                                                     jnp.asarray(frames), 4)
    np.testing.assert_allclose(merged[0, 0, 0], np.logaddexp(own, ext), rtol=1e-6)
    assert np.asarray(blank_frames)[0, 0].tolist() == want, (own, ext)
    assert np.asarray(blank_frames)[0, 1].tolist() == [3, 0, 0]  # j was merged into nothing


def one_per_frame_frames(model: toy.NumpyModel, num_frames: int) -> dict:
  """``{y: frames}`` for every one-label-per-frame sequence: the forward recursion over label sequences that
  modified beam search runs without pruning, keeping at each frame the frames of the larger of y's two
  incoming terms (y's own blank step; y[:-1] emitting y[-1]), y's own on a tie."""
  alpha, frames = {(): 0.0}, {(): ()}
  for t in range(num_frames):
    new, new_frames = {}, {}
    for y in set(alpha) | {y + (k,) for y in alpha for k in range(model.p["out"].shape[1]) if k != model.blank}:
      stay = alpha[y] + model.log_probs(t, y)[model.blank] if y in alpha else -np.inf
      emit = alpha[y[:-1]] + model.log_probs(t, y[:-1])[y[-1]] if y and y[:-1] in alpha else -np.inf
      new[y] = np.logaddexp(stay, emit)
      new_frames[y] = frames[y[:-1]] + (t,) if emit > stay else frames[y]
    alpha, frames = new, new_frames
  return frames


@pytest.mark.parametrize("blank_id", [0, 1])
def test_wide_modified_beam_search_frames_match_the_unpruned_recursion(blank_id):
  """With beam >= the number of label sequences nothing is pruned: every hypothesis' frames are the reference's."""
  v, d, t = 3, 3, 3
  params = toy.make_params(11, d, v)
  enc = np.random.default_rng(12).normal(size=(2, t, d)).astype(np.float32)
  lengths = [3, 2]
  out = decoding.modified_beam_search(toy.fns(blank_id), params, enc, toy.paddings(lengths, t), beam=16)
  moved = 0
  for b, row in enumerate(out.to_timed_lists()):
    ref = one_per_frame_frames(toy.NumpyModel(params, enc[b, : lengths[b]], blank_id), lengths[b])
    assert len(row) == len(ref)
    for y, _, frames in row:
      assert tuple(frames) == ref[tuple(y)], (b, y)
      moved += len(y) > 0 and tuple(frames) != tuple(range(len(y)))  # not all labels as early as possible
  assert moved > 0


def test_prefix_merging_keeps_the_frames_of_the_largest_term():
  beam_lib = importlib.import_module("asrjax.decoding.beam_search")
  prev = {(2,): (1,), (2, 3): (0, 0)}
  assert beam_lib._merged_frames((2, 3), [-1.0, -3.0], [1], prev, 5) == (0, 0)
  assert beam_lib._merged_frames((2, 3), [-3.0, -1.0], [1], prev, 5) == (1, 5)
  assert beam_lib._merged_frames((2, 3), [-2.0, -4.0, -1.0], [1, 0], {(): (), **prev}, 5) == (5, 5)


def test_timed_lists_agree_with_to_lists_and_need_frames():
  params = toy.make_params(1, 4, 6, scale=2.0)
  enc = np.random.default_rng(1).normal(size=(2, 5, 4)).astype(np.float32)
  for name, decoder in decoding.DECODERS.items():
    out = decoder(toy.FNS, params, enc, toy.paddings([5, 3], 5))
    timed = out.to_timed_lists()
    assert [[(y, s) for y, s, _ in row] for row in timed] == out.to_lists(), name
    assert all(len(y) == len(f) and f == sorted(f) and all(0 <= x < n for x in f)
               for row, n in zip(timed, [5, 3]) for y, _, f in row), name
  bare = decoding.NBest(out.labels, out.label_paddings, out.scores)
  assert bare.to_lists() == out.to_lists()
  with pytest.raises(ValueError, match="no frames"):
    bare.to_timed_lists()
