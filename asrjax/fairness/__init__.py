"""ASR fairness (issue 20): cohort discovery, disparity metrics, and mitigation by elastic weight consolidation.

`cohorts` finds the cohorts a model fails (geographic split tree, geodemographic
partitions, k-means over speaker embeddings), all as one `Cohorts` object;
`disparity` measures their WER gap with speaker-bootstrap intervals.
"""
