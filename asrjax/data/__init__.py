"""The runtime input pipeline: opening prepared splits (`sources`, `catalog`), audio rules,
tokenizers and length-bucketed batches (`pipeline`). Corpus synthesis lives in `asrjax.corpus`,
the feature front end in `asrjax.frontend`."""
