"""RL core: the GRPO objective (grpo.py, config.py) and the reward registry (rewards/).

No ASR/TTS specifics: the objective sees token ids, masks, log-probs and rewards only.
"""
