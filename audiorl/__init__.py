"""audiorl: reinforcement learning (GRPO, DiffRO) for LLM-based ASR and TTS, with Kaldi/ESPnet-style recipes."""

__version__ = "0.1.0"
