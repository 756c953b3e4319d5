"""utils/slurm.pl against a fake `sbatch` (first on PATH) that runs the array tasks locally.

The fake records its arguments, prints a job id (as --parsable does) and runs each task of --array
in turn with SLURM_ARRAY_TASK_ID set, like `sbatch --wait`. FAKE_SBATCH_SKIP=<id> leaves a task out
(as if Slurm killed it before it could write its status); FAKE_SBATCH_FAIL=1 refuses the submission.
"""

import os
import re
import stat
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SLURM_PL = os.path.join(ROOT, "utils", "slurm.pl")

FAKE_SBATCH = r"""#!/usr/bin/env bash
echo "$*" >> "$FAKE_SBATCH_ARGS"
if [ -n "${FAKE_SBATCH_FAIL:-}" ]; then echo "sbatch: error: invalid partition specified: nope" >&2; exit 1; fi
array= out= script=
for a in "$@"; do
  case $a in --array=*) array=${a#--array=} ;; --output=*) out=${a#--output=} ;; esac
  script=$a
done
echo "4242"
array=${array%%%*}
rc=0
for part in ${array//,/ }; do
  lo=${part%-*}; hi=${part#*-}
  for ((i = lo; i <= hi; i++)); do
    [ "$i" = "${FAKE_SBATCH_SKIP:-}" ] && continue
    SLURM_JOB_ID=4242 SLURM_ARRAY_TASK_ID=$i bash "$script" > "${out//%a/$i}" 2>&1 || rc=$?
  done
done
exit $rc
"""


@pytest.fixture
def env(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    sb = bindir / "sbatch"
    sb.write_text(FAKE_SBATCH)
    sb.chmod(sb.stat().st_mode | stat.S_IEXEC)
    return {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}", "FAKE_SBATCH_ARGS": str(tmp_path / "sbatch.args")}


def slurm_pl(*args, cwd, env, **extra):
    return subprocess.run(["perl", SLURM_PL, *args], capture_output=True, text=True, cwd=cwd, env={**env, **extra})


def sbatch_args(tmp_path):
    return (tmp_path / "sbatch.args").read_text().splitlines()


def test_job_substitution_log_format_and_flags(tmp_path, env):
    p = slurm_pl("--mem", "3G", "--num-threads", "4", "--gpu", "2", "--max-jobs-run", "2",
                 "JOB=1:3", "exp/log/x.JOB.log", "echo", "job", "JOB", "|", "tr", "a-z", "A-Z", cwd=tmp_path, env=env)
    assert p.returncode == 0, p.stderr
    for j in (1, 2, 3):
        lines = (tmp_path / f"exp/log/x.{j}.log").read_text().splitlines()
        assert lines[0] == f"# echo job {j} | tr a-z A-Z"
        assert lines[1].startswith("# Started at ")
        assert lines[2] == f"# slurm.pl: Slurm job 4242 task {j} on {os.uname().nodename}"
        assert lines[3] == f"JOB {j}"
        assert re.fullmatch(r"# Accounting: time=\d+ threads=4", lines[4])
        assert re.fullmatch(r"# Ended \(code 0\) at .*, elapsed time \d+ seconds", lines[5])
    (args,) = sbatch_args(tmp_path)
    assert "--array=1-3%2" in args and "--parsable" in args and "--wait" in args
    assert "--gres=gpu:2" in args and "--mem 3G" in args and "--cpus-per-task 4" in args
    assert args.endswith("exp/log/q/x.array.sh")


def test_config_file_partition_and_exact_values(tmp_path, env):
    conf = tmp_path / "slurm.conf"
    conf.write_text("command sbatch --partition=debug --account=asr  # site flags\n"
                    "option gpu=* -p gpu --gres=gpu:$0\noption gpu=0 -p cpu\n"
                    "option qos=* --qos=$0\ndefault time=0:30:00\n")
    assert slurm_pl("--config", str(conf), "--gpu", "0", "l.log", "true", cwd=tmp_path, env=env).returncode == 0
    assert slurm_pl("--config", str(conf), "--gpu", "1", "--qos", "high", "l.log", "true",
                    cwd=tmp_path, env=env).returncode == 0
    a0, a1 = sbatch_args(tmp_path)
    assert "--partition=debug --account=asr" in a0 and "-p cpu" in a0 and "--gres" not in a0 and "--time 0:30:00" in a0
    assert "-p gpu --gres=gpu:1" in a1 and "--qos=high" in a1


def test_failures_counted_and_logs_named(tmp_path, env):
    p = slurm_pl("JOB=1:4", "exp/log/x.JOB.log", "test", "JOB", "-ne", "2", "-a", "JOB", "-ne", "4",
                 cwd=tmp_path, env=env)
    assert p.returncode == 1
    assert "slurm.pl: 2 / 4 failed, log is in exp/log/x.*.log" in p.stderr
    assert "exp/log/x.2.log exp/log/x.4.log" in p.stderr
    assert "# Ended (code 1)" in (tmp_path / "exp/log/x.4.log").read_text()
    p = slurm_pl("one.log", "exit", "5", cwd=tmp_path, env=env)
    assert p.returncode == 1 and "slurm.pl: job failed, log is in one.log" in p.stderr
    assert "# Ended (code 5)" in (tmp_path / "one.log").read_text()


def test_task_killed_without_status(tmp_path, env):
    p = slurm_pl("--sync-wait", "0", "JOB=1:3", "l/x.JOB.log", "true", cwd=tmp_path, env=env, FAKE_SBATCH_SKIP="2")
    assert p.returncode == 1
    assert "1 task(s) of Slurm job 4242 ended without an exit status" in p.stderr and "sacct -j 4242" in p.stderr
    assert "slurm.pl: 1 / 3 failed" in p.stderr and "l/x.2.log" in p.stderr
    # --pick incomplete resubmits only the task that never finished.
    p = slurm_pl("--pick", "incomplete", "JOB=1:3", "l/x.JOB.log", "true", cwd=tmp_path, env=env)
    assert p.returncode == 0 and "--array=2 " in sbatch_args(tmp_path)[-1]


def test_submission_failure(tmp_path, env):
    p = slurm_pl("l.log", "true", cwd=tmp_path, env=env, FAKE_SBATCH_FAIL="1")
    assert p.returncode == 1 and "submission failed" in p.stderr and "invalid partition" in p.stderr


@pytest.mark.parametrize("args,msg", [
    (["--foo", "1", "l.log", "true"], "unknown option --foo"),
    (["JOB=1:2", "one.log", "true"], "put JOB in its name"),
    (["JOB=1:2", "d.JOB/x.log", "true"], "not in its directory"),
    (["--config", "/nonexistent.conf", "l.log", "true"], "cannot read"),
    ([], "expected a log file and a command"),
])
def test_usage_errors(tmp_path, env, args, msg):
    p = slurm_pl(*args, cwd=tmp_path, env=env)
    assert p.returncode == 2 and msg in p.stderr


def test_bad_config_line(tmp_path, env):
    (tmp_path / "c.conf").write_text("command sbatch\nbogus line\n")
    p = slurm_pl("--config", str(tmp_path / "c.conf"), "l.log", "true", cwd=tmp_path, env=env)
    assert p.returncode == 2 and "c.conf:2: cannot parse 'bogus line'" in p.stderr


def test_num_nodes_asks_for_the_nodes(tmp_path, env):
    assert slurm_pl("--num-nodes", "2", "--gpu", "8", "l.log", "true", cwd=tmp_path, env=env).returncode == 0
    assert slurm_pl("--num-nodes", "1", "l.log", "true", cwd=tmp_path, env=env).returncode == 0
    two, one = sbatch_args(tmp_path)
    assert "--nodes=2" in two.split() and "--gres=gpu:8" in two.split()
    assert "--nodes" not in one
