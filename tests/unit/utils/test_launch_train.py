"""utils/launch_train.sh: one process as before, torchrun for several processes or nodes (srun inside Slurm)."""

import os
import stat
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
LAUNCH = os.path.join(ROOT, "utils", "launch_train.sh")


def launch(*args, env=None, cwd=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "MASTER_"))}
    return subprocess.run(["bash", LAUNCH, *args], capture_output=True, text=True, env={**e, **(env or {})}, cwd=cwd)


def dry(*args, env=None):
    p = launch("--dry_run", "true", *args, env=env)
    assert p.returncode == 0, p.stderr
    return p.stdout.split()


@pytest.mark.parametrize("opts", [[], ["--ngpu", "0"], ["--ngpu", "1"], ["--nproc", "1", "--ngpu", "4"]])
def test_one_process_is_the_plain_command(opts):
    assert dry("--python", "py", *opts, "audiorl.bin.asr_train", "--config", "a b.yaml") == \
        ["py", "-m", "audiorl.bin.asr_train", "--config", "a\\", "b.yaml"]


def test_several_processes_and_nodes_use_torchrun():
    cmd = dry("--python", "py", "--ngpu", "4", "m", "--x", "1")
    assert cmd == ["py", "-m", "torch.distributed.run", "--standalone", "--nnodes", "1", "--nproc_per_node", "4",
                   "-m", "m", "--x", "1"]
    cmd = dry("--ngpu", "0", "--nproc", "2", "m")  # two CPU processes (gloo)
    assert "--standalone" in cmd and cmd[cmd.index("--nproc_per_node") + 1] == "2"
    cmd = dry("--ngpu", "8", "--num_nodes", "2", "m", env={"MASTER_ADDR": "node1", "MASTER_PORT": "1234"})
    assert cmd[:2] == ["python3", "-m"] and "--standalone" not in cmd
    for flag, value in [("--nnodes", "2"), ("--nproc_per_node", "8"), ("--rdzv_backend", "c10d"),
                        ("--rdzv_endpoint", "node1:1234"), ("--rdzv_id", "audiorl")]:
        assert cmd[cmd.index(flag) + 1] == value


def test_slurm_allocation_starts_one_torchrun_per_node(tmp_path):
    scontrol = tmp_path / "scontrol"
    scontrol.write_text("#!/usr/bin/env bash\necho gpu-a01; echo gpu-a02\n")
    scontrol.chmod(scontrol.stat().st_mode | stat.S_IEXEC)
    env = {"PATH": f"{tmp_path}:{os.environ['PATH']}", "SLURM_JOB_ID": "77", "SLURM_JOB_NUM_NODES": "2",
           "SLURM_JOB_NODELIST": "gpu-a[01-02]"}
    cmd = dry("--ngpu", "8", "--num_nodes", "2", "m", env=env)
    assert cmd[:7] == ["srun", "--nodes", "2", "--ntasks", "2", "--ntasks-per-node", "1"]
    assert cmd[cmd.index("--rdzv_endpoint") + 1] == "gpu-a01:29500" and cmd[cmd.index("--rdzv_id") + 1] == "77"
    p = launch("--dry_run", "true", "--num_nodes", "4", "m", env=env)
    assert p.returncode == 2 and "pass --num-nodes 4 to slurm.pl" in p.stderr


@pytest.mark.parametrize("args,msg", [
    (["--num_nodes", "2", "m"], "set MASTER_ADDR"),
    (["--ngpu", "two", "m"], "--ngpu must be a non-negative integer"),
    ([], "expected a python module"),
])
def test_usage_errors(args, msg):
    p = launch(*args)
    assert p.returncode == 2 and msg in p.stderr


def test_two_cpu_processes_really_run(tmp_path):
    (tmp_path / "show_rank.py").write_text(
        "import os, sys\nopen(os.path.join(sys.argv[1], 'rank%s' % os.environ.get('RANK', '-')), 'w')"
        ".write(os.environ.get('WORLD_SIZE', '-'))\n")
    env = {"PYTHONPATH": str(tmp_path), "OMP_NUM_THREADS": "1"}
    p = launch("--python", sys.executable, "--ngpu", "0", "show_rank", str(tmp_path), env=env)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "rank-").read_text() == "-"  # plain python: no torchrun environment
    p = launch("--python", sys.executable, "--ngpu", "0", "--nproc", "2", "show_rank", str(tmp_path), env=env)
    assert p.returncode == 0, p.stderr
    assert [(tmp_path / f"rank{r}").read_text() for r in (0, 1)] == ["2", "2"]
