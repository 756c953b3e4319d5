# Where corpora live. Shared by egs/synth_en/asr and egs/synth_en/tts: both point at the same
# synthesised audio, so it is made once. A relative path is relative to the recipe dir (wav.scp
# paths then stay relative too); set SYNTH_EN in the environment to put the audio elsewhere.
SYNTH_EN=${SYNTH_EN:-../db}
