#!/usr/bin/env bash
# Compute log-mel filterbank features of a data dir in parallel jobs, in the spirit of Kaldi's
# steps/make_fbank.sh: split the utterances into nj contiguous parts, run one
# `python -m audiorl.bin.compute_fbank` per part through $cmd (run.pl, slurm.pl), then merge the parts
# into <data-dir>/feats.scp and <data-dir>/utt2num_frames (C-sorted). The ark files stay in <fbank-dir>;
# paths in feats.scp are as given (keep them relative to the recipe directory).
# Idempotent: nothing is done when feats.scp already covers every utterance (counting those listed as
# skipped) and its ark files exist, unless --force true. The feature config is not compared: after
# changing --fbank_conf, rerun with --force true.
set -euo pipefail
export LC_ALL=C

nj=4             # number of parallel jobs (reduced to the number of utterances if larger)
cmd=run.pl       # job runner with its options, e.g. "run.pl --max-jobs-run 2" or "slurm.pl --mem 2G"
fbank_conf=      # Kaldi-style feature config (--num-mel-bins=80 lines); empty: 80 bins, 16 kHz, dither 0
skip_bad=false   # true: skip utterances whose audio fails to load and list them in <fbank-dir>/skipped_<name>.txt
force=false      # true: recompute even if feats.scp is complete
help_message="Usage: $0 [options] <data-dir> <log-dir> <fbank-dir>
e.g.: $0 --nj 4 --cmd run.pl data/train exp/make_fbank/train fbank
Writes <data-dir>/feats.scp and <data-dir>/utt2num_frames; ark files go to <fbank-dir>/raw_fbank_<name>.<job>.ark."

. "$(dirname "${BASH_SOURCE[0]}")/parse_options.sh"
utils=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$utils/_python.sh"
export PATH="$utils:$PATH"  # so that cmd=run.pl / slurm.pl find ours

log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') (${0##*/}:${BASH_LINENO[0]}) INFO: $*" >&2; }
die() { echo "$0: $*" >&2; exit 1; }

if [ $# -ne 3 ]; then
    echo "$help_message" >&2
    echo "$0: expected 3 arguments, got $#" >&2
    exit 2
fi
data=$1
logdir=$2
fbankdir=$3

[[ "$nj" =~ ^[1-9][0-9]*$ ]] || { echo "$0: --nj must be a positive integer, not '$nj'" >&2; exit 2; }
[ -f "$data/wav.scp" ] || die "$data/wav.scp: no such file; <data-dir> must be a Kaldi data dir (check the path)"
[ -z "$fbank_conf" ] || [ -f "$fbank_conf" ] || die "--fbank_conf $fbank_conf: no such file"

name=$(basename "$data")
# Utterance ids: those of segments when the data dir has one, else the recordings of wav.scp.
keysrc=$data/wav.scp
[ -f "$data/segments" ] && keysrc=$data/segments
n=$(wc -l < "$keysrc")
[ "$n" -gt 0 ] || die "$keysrc is empty: nothing to compute"
skipped=$fbankdir/skipped_$name.txt

# Complete: feats.scp + the skipped list cover exactly the utterances, and every ark file exists.
is_complete() {
    [ -s "$data/feats.scp" ] && [ -s "$data/utt2num_frames" ] || return 1
    local have want
    have=$( { cut -d' ' -f1 "$data/feats.scp"; [ -f "$skipped" ] && cut -d' ' -f1 "$skipped"; true; } | sort)
    want=$(cut -d' ' -f1 "$keysrc" | sort)
    [ "$have" = "$want" ] || return 1
    cmp -s <(cut -d' ' -f1 "$data/feats.scp") <(cut -d' ' -f1 "$data/utt2num_frames") || return 1
    local ark
    for ark in $(awk '{ sub(/:[0-9]+$/, "", $2); print $2 }' "$data/feats.scp" | sort -u); do
        [ -f "$ark" ] || return 1
    done
}

if [ "$force" = false ] && is_complete; then
    log "$data/feats.scp is complete ($(wc -l < "$data/feats.scp") utterances); nothing to do (--force true recomputes)"
    exit 0
fi

if [ "$nj" -gt "$n" ]; then
    log "--nj $nj > $n utterances: using nj=$n"
    nj=$n
fi
mkdir -p "$logdir" "$fbankdir"
# Old outputs must not mix with new ones (a rerun with fewer jobs would leave stale parts behind).
rm -f "$data/feats.scp" "$data/utt2num_frames" "$skipped" "$logdir"/keys.* "$logdir"/make_fbank.*.log
rm -f "$fbankdir/raw_fbank_$name".*.ark "$fbankdir/raw_fbank_$name".*.scp \
      "$fbankdir/raw_fbank_$name".*.utt2num_frames "$fbankdir/raw_fbank_$name".*.skipped

# Contiguous parts of the sorted list, so that segments of one recording mostly share a job (the
# loader caches the last recording). Part j gets lines (j-1)*n/nj+1 .. j*n/nj; none is empty as n >= nj.
awk -v nj="$nj" -v n="$n" -v dir="$logdir" '{ print $1 > (dir "/keys." (int((NR - 1) * nj / n) + 1)) }' "$keysrc"

conf_opt=()
[ -n "$fbank_conf" ] && conf_opt=(--fbank_conf "$fbank_conf")
log "computing fbank for $n utterances of $data in $nj jobs: logs $logdir/make_fbank.*.log, arks $fbankdir"
# shellcheck disable=SC2086  # $cmd is a command with options: split it
if ! $cmd JOB=1:"$nj" "$logdir/make_fbank.JOB.log" \
        "$python" -m audiorl.bin.compute_fbank "${conf_opt[@]}" --utt_list "$logdir/keys.JOB" \
        --skip_bad "$skip_bad" "$data" "$fbankdir/raw_fbank_$name.JOB"; then
    failed=()
    for j in $(seq "$nj"); do
        grep -q '^# Ended (code 0)' "$logdir/make_fbank.$j.log" 2>/dev/null || failed+=("$logdir/make_fbank.$j.log")
    done
    echo "$0: ${#failed[@]} of $nj fbank jobs failed: ${failed[*]}" >&2
    if [ ${#failed[@]} -gt 0 ] && [ -f "${failed[0]}" ]; then
        echo "$0: last lines of ${failed[0]}:" >&2
        grep -v '^#' "${failed[0]}" | tail -n 5 | sed 's/^/    /' >&2
    fi
    [ "$skip_bad" = true ] || echo "$0: if some recordings are unusable, fix or remove them, or rerun with --skip_bad true" >&2
    exit 1
fi

for j in $(seq "$nj"); do
    [ -f "$fbankdir/raw_fbank_$name.$j.scp" ] || die "job $j left no $fbankdir/raw_fbank_$name.$j.scp; see $logdir/make_fbank.$j.log"
done
# Merge through temporary files so that a half-written feats.scp never looks complete.
for j in $(seq "$nj"); do cat "$fbankdir/raw_fbank_$name.$j.scp"; done | sort -k1,1 > "$data/feats.scp.tmp"
for j in $(seq "$nj"); do cat "$fbankdir/raw_fbank_$name.$j.utt2num_frames"; done | sort -k1,1 > "$data/utt2num_frames.tmp"
mv "$data/utt2num_frames.tmp" "$data/utt2num_frames"
nbad=0
if [ "$skip_bad" = true ]; then
    for j in $(seq "$nj"); do cat "$fbankdir/raw_fbank_$name.$j.skipped"; done | sort -k1,1 > "$skipped"
    nbad=$(wc -l < "$skipped")
    [ "$nbad" -eq 0 ] || echo "$0: WARNING: skipped $nbad of $n utterances whose audio failed to load;" \
        "they are listed with the reason in $skipped. Remove them from the data dir with utils/fix_data_dir.sh" >&2
fi
nf=$(wc -l < "$data/feats.scp.tmp")
if [ $((nf + nbad)) -ne "$n" ]; then
    rm -f "$data/feats.scp.tmp"
    die "the jobs wrote $nf feature entries (+ $nbad skipped) for $n utterances; see the logs in $logdir"
fi
mv "$data/feats.scp.tmp" "$data/feats.scp"
log "wrote $data/feats.scp and $data/utt2num_frames ($nf utterances, $nbad skipped)"
