"""utils/download_and_untar.sh: usage errors (exit 2), a resumed download (wget --continue) checked against the md5
before extraction, a complete archive not fetched again, the done marker, --remove_archive. wget is a stand-in that
appends the rest of a served file to a partial one, as wget --continue does (no network in the tests)."""

import hashlib
import os
import subprocess
import tarfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
TOOL = os.path.join(ROOT, "utils", "download_and_untar.sh")
FAKE_WGET = """#!/usr/bin/env bash
# '--continue ... -O FILE URL': appends the part of $FAKE_SERVER/<basename of URL> that FILE lacks; logs each call.
out=; url=
while [ $# -gt 0 ]; do case "$1" in -O) out=$2; shift 2;; *) url=$1; shift;; esac; done
echo "$url" >> "$FAKE_SERVER/calls"
have=$(stat -c %s "$out" 2>/dev/null || echo 0)
tail -c +$((have + 1)) "$FAKE_SERVER/${url##*/}" >> "$out"
"""


def setup(tmp_path):
    (tmp_path / "src/corpus").mkdir(parents=True)
    (tmp_path / "src/corpus/a.txt").write_text("hello\n" * 1000)
    server = tmp_path / "server"
    server.mkdir()
    with tarfile.open(server / "part1.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "src/corpus", arcname="corpus")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin/wget").write_text(FAKE_WGET)
    (tmp_path / "bin/wget").chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}", "FAKE_SERVER": str(server)}
    return env, hashlib.md5((server / "part1.tar.gz").read_bytes()).hexdigest()


def tool(*args, env, cwd):
    return subprocess.run([TOOL, *args], capture_output=True, text=True, env=env, cwd=cwd)


def test_usage_errors(tmp_path):
    env, _ = setup(tmp_path)
    p = tool("url", "a.tar.gz", env=env, cwd=tmp_path)
    assert p.returncode == 2 and "expected 3 arguments" in p.stderr
    p = tool("--md5", "abc", "url", "a.tar.gz", "out", env=env, cwd=tmp_path)
    assert p.returncode == 2 and "not an md5 sum" in p.stderr and "--check_md5 false" in p.stderr
    p = tool("url", "a.tar.gz", "out", env=env, cwd=tmp_path)  # no --md5 at all
    assert p.returncode == 2 and not (tmp_path / "a.tar.gz").exists()


def test_resume_md5_extract_skip_and_remove(tmp_path):
    env, md5 = setup(tmp_path)
    served = (tmp_path / "server/part1.tar.gz").read_bytes()
    (tmp_path / "dl").mkdir()
    (tmp_path / "dl/part1.tar.gz").write_bytes(served[: len(served) // 2])  # an interrupted download
    args = ["--md5", md5, "http://x/part1.tar.gz", "dl/part1.tar.gz", "dl"]
    p = tool(*args, env=env, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "dl/part1.tar.gz").read_bytes() == served, "resumed, not restarted"
    assert (tmp_path / "dl/corpus/a.txt").read_text() == "hello\n" * 1000
    assert (tmp_path / "dl/.part1.complete").is_file(), "the default done marker"
    p = tool(*args, env=env, cwd=tmp_path)
    assert p.returncode == 0 and "part1: already extracted" in p.stderr
    assert (tmp_path / "server/calls").read_text().count("part1.tar.gz") == 1

    # A complete archive (right md5) is extracted without a fetch; --remove_archive deletes it afterwards.
    p = tool("--done_mark", "dl/corpus/.done", "--remove_archive", "true", *args, env=env, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "dl/corpus/.done").is_file() and not (tmp_path / "dl/part1.tar.gz").exists()
    assert (tmp_path / "server/calls").read_text().count("part1.tar.gz") == 1


def test_wrong_md5_is_not_extracted(tmp_path):
    env, md5 = setup(tmp_path)
    p = tool("--md5", "0" * 32, "http://x/part1.tar.gz", "dl/part1.tar.gz", "dl", env=env, cwd=tmp_path)
    assert p.returncode == 1 and f"md5 {md5}, expected {'0' * 32}" in p.stderr and "delete it and rerun" in p.stderr
    assert not (tmp_path / "dl/corpus").exists() and not (tmp_path / "dl/.part1.complete").exists()
    p = tool("--check_md5", "false", "http://x/part1.tar.gz", "dl/part1.tar.gz", "dl", env=env, cwd=tmp_path)
    assert p.returncode == 0 and (tmp_path / "dl/corpus/a.txt").is_file(), p.stderr
