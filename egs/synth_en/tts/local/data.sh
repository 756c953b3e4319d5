#!/usr/bin/env bash
# Data preparation for synth_en TTS: the same corpus as ../asr, from the same db (db.sh), so the audio
# is synthesised once and shared. Runs the asr recipe's script from this dir: it writes data/<set> here,
# with the same options (--nj, --seed, --smoke, size options; see ../asr/local/data.sh --help).
exec ../asr/local/data.sh "$@"
