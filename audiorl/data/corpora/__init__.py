"""Readers of real corpora in their official layouts (LibriSpeech, AISHELL-1, LibriTTS) and the shared
preparation of a recipe's Kaldi data dirs from them (``common.prepare``; entry point:
``python -m audiorl.bin.prepare_corpus``)."""
