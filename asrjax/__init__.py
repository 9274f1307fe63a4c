"""asrjax: streaming end-to-end speech recognition and speech fairness in JAX."""

__version__ = "0.1.0"
