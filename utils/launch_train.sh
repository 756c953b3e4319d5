#!/usr/bin/env bash
# Launch a training entry point (python -m <module> <args>) in one process or under torchrun, so that every
# training stage of asr.sh / tts.sh scales out the same way. Run it inside the job runner:
#   ${train_cmd} --gpu 8 --num-nodes 2 exp/x/log/train.log utils/launch_train.sh --ngpu 8 --num_nodes 2 audiorl.bin.asr_train ...
# * one process (nproc <= 1 and num_nodes = 1): exactly `$python -m <module> <args>`, as without this script;
# * several processes on one node: `$python -m torch.distributed.run --standalone --nproc_per_node N -m <module> ...`
#   (the Trainer joins the process group; nccl on GPUs, gloo on CPU: --ngpu 0 --nproc 2 runs 2 CPU processes);
# * several nodes: torchrun on each node with --nnodes M and a c10d rendezvous at $MASTER_ADDR:$MASTER_PORT. Inside
#   a Slurm allocation (slurm.pl --num-nodes M; SLURM_JOB_ID set) it starts one torchrun per node itself with
#   `srun --nodes M --ntasks-per-node 1`, the rendezvous host defaulting to the allocation's first node. Outside
#   Slurm, run the same command on every node with the same MASTER_ADDR (a host all nodes reach) and MASTER_PORT.
set -euo pipefail

python=python3      # Python interpreter with audiorl installed
ngpu=0              # GPUs per node; 0 = CPU. One process per GPU unless --nproc says otherwise
num_nodes=1         # nodes; > 1 needs $MASTER_ADDR, or a Slurm allocation of that many nodes
nproc=0             # processes per node; 0 = max(1, ngpu). e.g. --ngpu 0 --nproc 2: two gloo processes on the CPU
rdzv_id=            # rendezvous id shared by all nodes of a run (num_nodes > 1); default $SLURM_JOB_ID, else audiorl
dry_run=false       # true: print the command that would run (one line) and exit
help_message="Usage: $0 [options] <python-module> [module arguments...]
e.g.: $0 --ngpu 2 audiorl.bin.asr_train --config conf/train_asr.yaml --exp_dir exp/asr
Environment: MASTER_ADDR, MASTER_PORT (default 29500) for --num_nodes > 1."

. "$(dirname "${BASH_SOURCE[0]}")/parse_options.sh"

if [ $# -lt 1 ]; then
    echo "$help_message" >&2
    echo "$0: expected a python module (and its arguments)" >&2
    exit 2
fi
for _o in ngpu num_nodes nproc; do
    [[ "${!_o}" =~ ^[0-9]+$ ]] || { echo "$0: --${_o} must be a non-negative integer, not '${!_o}'" >&2; exit 2; }
done
[ "${num_nodes}" -ge 1 ] || { echo "$0: --num_nodes must be >= 1" >&2; exit 2; }
module=$1
shift

per_node=${nproc}
if [ "${per_node}" -eq 0 ]; then
    per_node=$(( ngpu > 1 ? ngpu : 1 ))
fi

cmd=()
if [ "${per_node}" -le 1 ] && [ "${num_nodes}" -eq 1 ]; then
    cmd=("${python}" -m "${module}" "$@")
elif [ "${num_nodes}" -eq 1 ]; then
    cmd=("${python}" -m torch.distributed.run --standalone --nnodes 1 --nproc_per_node "${per_node}" -m "${module}" "$@")
else
    in_slurm=false
    [ -n "${SLURM_JOB_ID:-}" ] && [ -z "${SLURM_STEP_ID:-}" ] && in_slurm=true
    addr=${MASTER_ADDR:-}
    if [ -z "${addr}" ] && [ "${in_slurm}" = true ]; then
        # Not `| head -n 1`: head exits early, scontrol dies of SIGPIPE and pipefail fails the script.
        hosts=$(scontrol show hostnames "${SLURM_JOB_NODELIST}")
        addr=${hosts%%$'\n'*}
    fi
    [ -n "${addr}" ] || { echo "$0: --num_nodes ${num_nodes}: set MASTER_ADDR to a host every node reaches (or run inside a Slurm allocation of ${num_nodes} nodes: slurm.pl --num-nodes ${num_nodes})" >&2; exit 2; }
    if [ "${in_slurm}" = true ] && [ "${SLURM_JOB_NUM_NODES:-1}" -lt "${num_nodes}" ]; then
        echo "$0: --num_nodes ${num_nodes} but this Slurm job has ${SLURM_JOB_NUM_NODES:-1} node(s): pass --num-nodes ${num_nodes} to slurm.pl (train_cmd)" >&2
        exit 2
    fi
    cmd=("${python}" -m torch.distributed.run --nnodes "${num_nodes}" --nproc_per_node "${per_node}"
         --rdzv_backend c10d --rdzv_endpoint "${addr}:${MASTER_PORT:-29500}" --rdzv_id "${rdzv_id:-${SLURM_JOB_ID:-audiorl}}"
         -m "${module}" "$@")
    # One torchrun per node: srun starts them on the allocation's nodes (and waits for all).
    [ "${in_slurm}" = true ] && cmd=(srun --nodes "${num_nodes}" --ntasks "${num_nodes}" --ntasks-per-node 1 "${cmd[@]}")
fi

if [ "${dry_run}" = true ]; then
    printf '%q ' "${cmd[@]}"
    echo
    exit 0
fi
echo "$0: ${cmd[*]}" >&2
exec "${cmd[@]}"
