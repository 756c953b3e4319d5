"""Thin command-line entry points, run as ``python -m audiorl.bin.<name>``."""
