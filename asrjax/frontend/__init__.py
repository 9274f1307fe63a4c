"""The on-device front end: log-mel features, normalisation, VTLP and SpecAugment (`featurize`),
and the streaming log-mel of live audio (`log_mel_stream`). Runs inside the jitted step."""
