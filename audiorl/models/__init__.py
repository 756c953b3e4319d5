"""Model code, one file per idea: llm (Qwen2 decoder), lora, encoder, adaptor, asr, sampling, beam.

Import from the submodules (``from audiorl.models.llm import LLM``); this package imports nothing eagerly.
"""
