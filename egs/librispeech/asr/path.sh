# Sourced by the stage scripts from the recipe dir (egs/<corpus>/<task>): environment of every stage.
MAIN_ROOT=$PWD/../../..
# The project venv first (python, and the audiorl of this tree), utils/ for run.pl / slurm.pl.
export PATH=$MAIN_ROOT/tools/venv/bin:$PWD/utils:$PATH
export PYTHONPATH=$MAIN_ROOT${PYTHONPATH:+:$PYTHONPATH}
export LC_ALL=C                # byte-order sorting, as every Kaldi table needs
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # parallelism from jobs (nj), not threads, on 2-core machines; set it to use more
export PYTHONIOENCODING=UTF-8
