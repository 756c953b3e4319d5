#!/usr/bin/env bash
# Global CMVN statistics of a data dir's features: <data-dir>/feats.scp -> <data-dir>/cmvn.ark, in
# Kaldi's (2, D+1) stats format (what `compute-cmvn-stats scp:feats.scp cmvn.ark` writes). Load them
# with audiorl.data.features.load_cmvn. Always recomputed: one pass over the features.
set -euo pipefail

cmvn_out=   # output file; empty: <data-dir>/cmvn.ark
help_message="Usage: $0 [options] <data-dir>
e.g.: $0 data/train   # writes data/train/cmvn.ark"

. "$(dirname "${BASH_SOURCE[0]}")/parse_options.sh"
utils=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$utils/_python.sh"

if [ $# -ne 1 ]; then
    echo "$help_message" >&2
    echo "$0: expected 1 argument, got $#" >&2
    exit 2
fi
data=$1
[ -f "$data/feats.scp" ] || { echo "$0: $data/feats.scp: no such file; run utils/make_fbank.sh first" >&2; exit 1; }
out=${cmvn_out:-$data/cmvn.ark}
"$python" -m audiorl.bin.compute_cmvn_stats "$data/feats.scp" "$out" || {
    echo "$0: computing CMVN stats of $data/feats.scp failed (message above)" >&2; exit 1; }
