"""Kaldi-format data directories, audio loading, features and tokenizers."""
