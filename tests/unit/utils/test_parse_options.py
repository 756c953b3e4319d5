"""utils/parse_options.sh: Kaldi's option rules (declared variables only, booleans, --config, --help)."""

import subprocess
from pathlib import Path

UTILS = Path(__file__).resolve().parents[3] / "utils"
SCRIPT = """#!/usr/bin/env bash
set -euo pipefail
stage=1          # first stage to run
use_gpu=false    # a boolean
name="x y"       # a name with a space
empty=           # declared but empty
. {utils}/parse_options.sh
echo "stage=$stage use_gpu=$use_gpu name=$name empty=$empty rest=$*"
"""


def _run(tmp_path, *args):
    s = tmp_path / "s.sh"
    s.write_text(SCRIPT.format(utils=UTILS))
    return subprocess.run(["bash", str(s), *args], capture_output=True, text=True)


def test_sets_declared_variables_and_keeps_positionals(tmp_path):
    r = _run(tmp_path, "--stage", "3", "--use-gpu", "true", "--name", "a b", "--empty", "e", "p1", "p2")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "stage=3 use_gpu=true name=a b empty=e rest=p1 p2"


def test_defaults_and_double_dash(tmp_path):
    r = _run(tmp_path, "--", "--stage")
    assert r.stdout.strip() == 'stage=1 use_gpu=false name=x y empty= rest=--stage'


def test_unknown_option_is_a_usage_error(tmp_path):
    r = _run(tmp_path, "--stgae", "3")
    assert r.returncode == 2 and "unknown option '--stgae'" in r.stderr


def test_boolean_takes_only_true_or_false(tmp_path):
    r = _run(tmp_path, "--use_gpu", "yes")
    assert r.returncode == 2 and "'true' or 'false'" in r.stderr


def test_missing_value_and_equals_form(tmp_path):
    r = _run(tmp_path, "--stage")
    assert r.returncode == 2 and "needs a value" in r.stderr
    r = _run(tmp_path, "--stage=3")
    assert r.returncode == 2 and "--stage 3" in r.stderr


def test_config_file_ranks_below_the_command_line(tmp_path):
    conf = tmp_path / "c.conf"
    conf.write_text("stage=7\nname=fromconf\n")
    r = _run(tmp_path, "--config", str(conf), "--stage", "9")
    assert r.returncode == 0, r.stderr
    assert "stage=9" in r.stdout and "name=fromconf" in r.stdout
    r = _run(tmp_path, "--config", str(tmp_path / "missing.conf"))
    assert r.returncode == 2 and "no such file" in r.stderr


def test_help_lists_options_with_defaults_and_comments(tmp_path):
    r = _run(tmp_path, "--help")
    assert r.returncode == 0
    assert "--stage" in r.stdout and "first stage to run [1]" in r.stdout
    assert "--use_gpu" in r.stdout and "[false]" in r.stdout
