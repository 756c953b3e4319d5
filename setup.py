"""audiorl: GRPO and DiffRO for LLM-based ASR and TTS. ``pip install -e .``; pinned set in tools/."""

from setuptools import find_packages, setup

setup(
    name="audiorl",
    version="0.1.0",
    description="Reinforcement learning (GRPO, DiffRO) for LLM-based ASR and TTS, with Kaldi/ESPnet-style recipes",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["audiorl", "audiorl.*"]),
    python_requires=">=3.10",
    install_requires=[
        "torch>=2.4",
        "torchaudio>=2.4",
        "numpy>=1.24",
        "sentencepiece>=0.2",
        "jiwer>=3.0",
        "rapidfuzz>=3.0",
        "soundfile>=0.12",
        "kaldiio>=2.17",
        "pyyaml>=6.0",
        "tqdm>=4.60",
        "matplotlib>=3.7",
        "tensorboard>=2.14",
        "safetensors>=0.4",
    ],
    extras_require={
        "test": ["pytest>=7", "transformers>=4.40"],
        "tts": ["resemblyzer>=0.1.4", "speechmos>=0.0.1", "onnxruntime>=1.16"],
        # model.init_llm with a Hugging Face tokenizer.json (audiorl/data/hf_tokenizer.py); transformers brings it
        "hf": ["tokenizers>=0.19"],
    },
)
