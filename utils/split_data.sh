#!/usr/bin/env bash
# Split a Kaldi data dir into N parts, <data>/split<N>[utt]/<n> (split_data.sh).
# Kaldi's name, options and behaviour; run with --help for the usage. Implemented by
# `python -m audiorl.bin.split_data` (see there and audiorl/data/). Exit status: 0 success, 1 failure,
# 2 usage error; errors go to stderr prefixed with $0.
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/_python.sh"
AUDIORL_PROG=$0 exec "$python" -m audiorl.bin.split_data "$@"
