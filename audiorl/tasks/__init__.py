"""What makes a task: ASR (asr.py) and, later, TTS. Models, trainer and RL core stay task-agnostic."""
