#!/usr/bin/env bash
# Check a Kaldi data dir: sorted unique files, matching ids, sane values (validate_data_dir.sh).
# Kaldi's name, options and behaviour; run with --help for the usage. Implemented by
# `python -m audiorl.bin.validate_data_dir` (see there and audiorl/data/). Exit status: 0 success, 1 failure,
# 2 usage error; errors go to stderr prefixed with $0.
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/_python.sh"
AUDIORL_PROG=$0 exec "$python" -m audiorl.bin.validate_data_dir "$@"
