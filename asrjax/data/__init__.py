"""Data: corpora, text generation and input pipelines."""
