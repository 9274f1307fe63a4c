"""Speaker verification (issue 19): the ECAPA-TDNN extractor, its data, scoring, the ARW adversary.

`embed` (``[B, N]`` int16 audio -> ``[B, D]`` embeddings) is the stable entry point; the
fairness work clusters its output.
"""

from asrjax.speaker.evaluation import embed

__all__ = ["embed"]
