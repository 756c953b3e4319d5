"""Scoring and reporting: normalisation, WER/CER with sclite-style output, significance tests,
RESULTS.md and training curves. Import the submodules directly (plots pulls in matplotlib)."""
