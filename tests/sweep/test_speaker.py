"""Bad-input sweep: the speaker-verification APIs (issue 19).

References: errors by hand; "correct" cases against hand-derived values (EER of
separated scores is 0, an utterance's embedding alone equals its padded-batch row).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from asrjax.losses import speaker as losses
from asrjax.metrics import verification
from asrjax.speaker import clusters, data, ecapa, evaluation, protocol, scoring
from tests.sweep import cases
from tests.sweep.cases import Case

_EXTRACTOR = ecapa.ECAPATDNN(channels=8, scale=2, aggregate=8, se_bottleneck=4, attention=4, embed_dim=8)
_PARAMS = {}


def _embed(audio, pads):
  if not _PARAMS:
    f = jnp.zeros((1, 50, 80))
    _PARAMS["p"] = _EXTRACTOR.init(jax.random.key(0), f, jnp.zeros((1, 50)))
  return evaluation.embed(_EXTRACTOR, _PARAMS["p"], audio, pads)


def _padded_row_equals_alone():
  rng = np.random.default_rng(0)
  a = (rng.normal(size=(2, 16_000)) * 3000).astype(np.int16)
  p = np.zeros((2, 16_000), np.float32)
  p[1, 8_000:] = 1.0
  both = _embed(a, p)
  alone = _embed(a[1:, :8_000], np.zeros((1, 8_000), np.float32))
  return np.allclose(both[1], alone[0], atol=2e-4)


def _split(n=4):
  return [{"audio": np.zeros(800, np.int16), "speaker_id": f"s{i % 2}".encode()} for i in range(n)]


CASES = [
    Case("verification/eer/separated", lambda: verification.eer([0.9, 0.8, 0.1], [1, 1, 0]), check=lambda e: e == 0.0),
    Case("verification/eer/one-class", lambda: verification.eer([0.9, 0.8], [1, 1]), raises=ValueError,
         match="both target and non-target trials are needed"),
    Case("verification/eer/nan-score", lambda: verification.eer([0.9, np.nan], [1, 0]), raises=ValueError,
         match="scores must be finite"),
    Case("verification/eer/bool-labels", lambda: verification.eer([0.9, 0.1], [True, False]),
         check=lambda e: e == 0.0),
    Case("verification/eer/label-2", lambda: verification.eer([0.9, 0.1], [2, 0]), raises=ValueError,
         match=r"labels must be 0 \(different speakers\) or 1"),
    Case("verification/eer/other-lengths", lambda: verification.eer([0.9, 0.1, 0.3], [1, 0]), raises=ValueError,
         match=r"scores and labels must both be \[N\]"),
    Case("verification/eer/string-scores", lambda: verification.eer(np.array(["a", "b"]), [1, 0]), raises=ValueError,
         match="scores must be numbers"),
    Case("verification/min_dcf/p_target-0", lambda: verification.min_dcf([0.9, 0.1], [1, 0], p_target=0.0),
         raises=ValueError, match="0 < p_target < 1"),
    Case("verification/bootstrap/draws-0", lambda: verification.speaker_bootstrap(lambda w: 0.0, ["a"], ["b"], key=0,
                                                                                  draws=0),
         raises=ValueError, match="draws must be an integer >= 1"),
    Case("scoring/cosine/zero-embedding", lambda: scoring.cosine_scores(np.zeros((1, 4)), np.ones((1, 4))),
         raises=ValueError, match="all-zero embeddings: cosine is undefined"),
    Case("scoring/cosine/other-dims", lambda: scoring.cosine_scores(np.ones((1, 4)), np.ones((1, 3))),
         raises=ValueError, match=r"test must be \[N, 4\]"),
    Case("scoring/as_norm/top_n-1", lambda: scoring.as_norm(np.zeros(1), np.ones((1, 2)), np.ones((1, 2)),
                                                            np.ones((3, 2)), top_n=1),
         raises=ValueError, match="top_n must be an integer >= 2"),
    Case("losses/aam/float-labels", lambda: losses.aam_softmax(jnp.ones((2, 3)), jnp.ones((4, 3)), jnp.zeros(2)),
         raises=ValueError, match=r"labels must be \[B\] integers"),
    Case("losses/pairwise/one-example", lambda: losses.pairwise_loss(jnp.ones((1, 3)), jnp.zeros(1, jnp.int32),
                                                                     scale=1.0, offset=0.0),
         raises=ValueError, match="B >= 2"),
    Case("clusters/k-above-n", lambda: clusters.kmeans_clusters(np.ones((2, 3)), 5, seed=0), raises=ValueError,
         match=r"k must be an integer in \[1, N = 2\]"),
    Case("data/speaker_table/no-speaker", lambda: data.speaker_table([{"audio": np.zeros(5, np.int16)}]),
         raises=ValueError, match="no speaker_id"),
    Case("data/speaker_table/empty", lambda: data.speaker_table([]), raises=ValueError, match="no examples"),
    Case("data/batches/more-speakers-than-the-split",
         lambda: data.CropBatches(_split(), data.speaker_table(_split()), speakers_per_batch=3,
                                  utterances_per_speaker=2, crop_samples=400, seed=0),
         raises=ValueError, match="speakers_per_batch=3 but the split has 2 speakers"),
    Case("data/batches/bad-field-length",
         lambda: data.CropBatches(_split(), data.speaker_table(_split()), speakers_per_batch=2,
                                  utterances_per_speaker=2, crop_samples=400, seed=0, fields={"cluster": [0, 1]}),
         raises=ValueError, match=r"fields\['cluster'\] must have one value per utterance \(4\)"),
    Case("embed/float-audio", lambda: _embed(np.zeros((1, 16_000), np.float32), np.zeros((1, 16_000))),
         raises=ValueError, match="audio must be int16 samples"),
    Case("embed/empty-audio", lambda: _embed(np.zeros((1, 16_000), np.int16), np.ones((1, 16_000))),
         raises=ValueError, match=r"utterances \[0\] have no audio"),
    Case("embed/rank-1", lambda: _embed(np.zeros(16_000, np.int16), np.zeros(16_000)), raises=ValueError,
         match=r"audio and audio_paddings must both be \[B, N\]"),
    Case("embed/padded-row-equals-alone", lambda: None, check=lambda _: _padded_row_equals_alone()),
    Case("protocol/speakers/backwards-range", lambda: protocol.parse_speakers("id10309-id10270"), raises=ValueError,
         match="low end first"),
    Case("protocol/metadata/missing-file", lambda: protocol.read_speaker_metadata("/nonexistent/vox1_meta.csv"),
         raises=FileNotFoundError, match="does not exist"),
    Case("protocol/trials/one-speaker", lambda: protocol.make_trials(np.array(["a", "a", "a"]), seed=0, targets=1,
                                                                     nontargets=1),
         raises=ValueError, match="at least two speakers"),
    Case("protocol/trials/negative", lambda: protocol.make_trials(np.array(["a", "b"]), seed=0, targets=-1,
                                                                  nontargets=1),
         raises=ValueError, match="must be >= 0"),
    Case("protocol/trials/two-speakers", lambda: protocol.make_trials(np.array(["a", "a", "b"]), seed=0, targets=1,
                                                                      nontargets=0),
         check=lambda t: t.tolist() == [[0, 1, 1]]),  # (1, 0) is the same pair; b has no second utterance
    Case("protocol/split/bad-group-length", lambda: protocol.ProtocolSplit(_split(), [0, 1], groups={"gender": ["m"]}),
         raises=ValueError, match=r"groups\['gender'\] has 1 values for 2 examples"),
]


@pytest.mark.parametrize("case", CASES, ids=cases.ids(CASES))
def test_speaker_sweep(case):
  cases.assert_case(case)
