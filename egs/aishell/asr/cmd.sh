# Job backend of the stage scripts: every parallel step runs as
#   ${train_cmd} JOB=1:N <log-dir>/x.JOB.log <command>   (or ${decode_cmd} for decoding)
# run.pl runs the jobs on this machine (utils/run.pl; --max-jobs-run K limits concurrency).
# On a Slurm cluster use utils/slurm.pl, which takes the same interface and options, e.g.
#   export train_cmd="slurm.pl --mem 4G --time 4:00:00"
#   export decode_cmd="slurm.pl --mem 2G"
export train_cmd="run.pl"
export decode_cmd="run.pl"
