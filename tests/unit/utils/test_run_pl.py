"""utils/run.pl: JOB substitution, log header/footer, parallelism limit, failures and exit codes."""

import os
import re
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
RUN_PL = os.path.join(ROOT, "utils", "run.pl")


def run_pl(*args, cwd):
    return subprocess.run(["perl", RUN_PL, *args], capture_output=True, text=True, cwd=cwd)


def test_job_substitution_and_log_format(tmp_path):
    p = run_pl("JOB=1:3", "exp/log/x.JOB.log", "echo", "job", "JOB", "of", "3", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    for j in (1, 2, 3):
        lines = (tmp_path / f"exp/log/x.{j}.log").read_text().splitlines()
        assert lines[0] == f"# echo job {j} of 3"
        assert lines[1].startswith("# Started at ")
        assert lines[2] == f"job {j} of 3"
        assert re.fullmatch(r"# Accounting: time=\d+ threads=1", lines[3])
        assert re.fullmatch(r"# Ended \(code 0\) at .*, elapsed time \d+ seconds", lines[4])


def test_single_job_without_range_and_other_job_name(tmp_path):
    assert run_pl("log/one.log", "echo", "JOB", cwd=tmp_path).returncode == 0
    assert "JOB\n" in (tmp_path / "log/one.log").read_text()  # no range: JOB is left alone
    assert run_pl("TASK=2:3", "log/t.TASK.log", "echo", "TASK", cwd=tmp_path).returncode == 0
    assert "\n3\n" in (tmp_path / "log/t.3.log").read_text() and not (tmp_path / "log/t.1.log").exists()


def test_kaldi_quoting_pipes_and_stderr(tmp_path):
    p = run_pl("JOB=1:1", "l.JOB.log", "echo", "a b", "JOB", "|", "tr", "a-z", "A-Z", ";", "echo", "oops", ">&2",
               cwd=tmp_path)
    assert p.returncode == 0
    log = (tmp_path / "l.1.log").read_text()
    assert '# echo "a b" 1 | tr a-z A-Z ; echo oops >&2' in log and "A B 1\n" in log and "oops\n" in log


def test_failures_counted_and_logs_named(tmp_path):
    p = run_pl("JOB=1:4", "exp/log/x.JOB.log", "test", "JOB", "-ne", "2", "-a", "JOB", "-ne", "4", cwd=tmp_path)
    assert p.returncode == 1
    assert "run.pl: 2 / 4 failed, log is in exp/log/x.*.log" in p.stderr
    assert "exp/log/x.2.log exp/log/x.4.log" in p.stderr
    assert "# Ended (code 1)" in (tmp_path / "exp/log/x.2.log").read_text()
    assert "# Ended (code 0)" in (tmp_path / "exp/log/x.3.log").read_text()


def test_single_job_failure_and_exit_code_in_log(tmp_path):
    p = run_pl("exp/one.log", "exit", "7", cwd=tmp_path)
    assert p.returncode == 1 and "run.pl: job failed, log is in exp/one.log" in p.stderr
    assert "# Ended (code 7)" in (tmp_path / "exp/one.log").read_text()
    p = run_pl("exp/kill.log", "kill", "-9", "$$", cwd=tmp_path)
    assert p.returncode == 1 and "# Ended (code 137)" in (tmp_path / "exp/kill.log").read_text()


def test_max_jobs_run_serialises(tmp_path):
    # Each job writes start/end around a short sleep; with one slot they never interleave.
    cmd = ["echo", "start", "JOB", ">>", "trace", ";", "sleep", "0.1", ";", "echo", "end", "JOB", ">>", "trace"]
    assert run_pl("--max-jobs-run", "1", "JOB=1:3", "l/JOB.log", *cmd, cwd=tmp_path).returncode == 0
    trace = (tmp_path / "trace").read_text().split("\n")[:-1]
    assert [t.split()[0] for t in trace] == ["start", "end"] * 3
    assert all(trace[i].split()[1] == trace[i + 1].split()[1] for i in range(0, 6, 2))


def test_scheduler_options_accepted(tmp_path):
    p = run_pl("--mem", "4G", "--num-threads", "2", "--gpu", "1", "--time", "1:00:00", "--config", "conf/x.conf",
               "JOB=1:2", "l/JOB.log", "true", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    log = (tmp_path / "l/1.log").read_text()
    assert "threads=2" in log and "--gpu 1 requested, but run.pl does not allocate GPUs" in log


def test_pick_failed_reruns_only_failed_jobs(tmp_path):
    (tmp_path / "ok1").touch()
    cmd = ["echo", "ran", "JOB", ">>", "trace", ";", "test", "-e", "okJOB"]
    assert run_pl("JOB=1:3", "l/JOB.log", *cmd, cwd=tmp_path).returncode == 1
    (tmp_path / "ok2").touch()
    (tmp_path / "ok3").touch()
    p = run_pl("--pick", "failed", "JOB=1:3", "l/JOB.log", *cmd, cwd=tmp_path)
    assert p.returncode == 0
    assert sorted((tmp_path / "trace").read_text().splitlines()[3:]) == ["ran 2", "ran 3"]  # parallel: any order
    p = run_pl("--pick", "incomplete", "JOB=1:3", "l/JOB.log", *cmd, cwd=tmp_path)
    assert p.returncode == 0 and "nothing to rerun" in p.stderr


@pytest.mark.parametrize("args,msg", [
    ([], "expected a log file and a command"),
    (["JOB=1:3", "one.log", "true"], "put JOB in its name"),
    (["JOB=3:1", "l.JOB.log", "true"], "is empty"),
    (["--max-jobs-run", "0", "l.log", "true"], "positive integer"),
    (["--pick", "some", "l.log", "true"], "all, failed or incomplete"),
])
def test_usage_errors(tmp_path, args, msg):
    p = run_pl(*args, cwd=tmp_path)
    assert p.returncode == 2 and msg in p.stderr and "usage: run.pl" in p.stderr and "--help" in p.stderr


def test_help(tmp_path):
    p = run_pl("--help", cwd=tmp_path)
    assert p.returncode == 0 and "--max-jobs-run K" in p.stdout and "Accounting" in p.stdout
