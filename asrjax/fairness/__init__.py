"""ASR fairness (issue 20): cohort discovery, disparity metrics, and mitigation by elastic weight consolidation.

`cohorts` finds the cohorts a model fails (geographic split tree, geodemographic
partitions, k-means over speaker embeddings), all as one `Cohorts` object;
`disparity` measures their WER gap with speaker-bootstrap intervals; `audit` finds cohorts on
one half of the speakers and measures them on both halves (a map too); `ewc` is the
mitigation (an optax transformation, per-example Fisher), which the transducer task
applies through ``train.ewc``.
"""
