"""k-means clusters recover well-separated groups (scikit-learn does the clustering)."""

import numpy as np
import pytest

from asrjax.speaker import clusters


def test_three_separated_directions_are_three_clusters(tmp_path):
  rng = np.random.default_rng(0)
  centres = np.eye(3) * 5
  truth = np.repeat(np.arange(3), 20)
  x = centres[truth] + 0.3 * rng.normal(size=(60, 3))
  got = clusters.kmeans_clusters(x * rng.uniform(0.5, 3.0, (60, 1)), 3, seed=0)  # scale must not matter
  # the same partition up to renaming: each true group maps to one cluster, all distinct
  mapping = {t: set(got[truth == t]) for t in range(3)}
  assert all(len(m) == 1 for m in mapping.values()) and len(set.union(*mapping.values())) == 3
  path = tmp_path / "c.json"
  clusters.write_clusters(str(path), got, k=3)
  import json
  assert json.loads(path.read_text())["clusters"] == got.tolist()


@pytest.mark.parametrize("x,k,match", [(np.ones((2, 3)), 3, r"k must be an integer in \[1, N = 2\]"),
                                       (np.full((4, 2), np.nan), 2, "finite"), (np.ones(4), 2, "finite")])
def test_bad_input_is_refused(x, k, match):
  with pytest.raises(ValueError, match=match):
    clusters.kmeans_clusters(x, k, seed=0)
