"""The data-dir tools of utils/ as subprocesses: --help, exit codes 0/1/2, $0-prefixed errors, Perl helpers."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from audiorl.data.ops import split_scp_keys

UTILS = Path(__file__).resolve().parents[3] / "utils"
TOOLS = ["validate_data_dir.sh", "fix_data_dir.sh", "subset_data_dir.sh", "combine_data.sh", "copy_data_dir.sh",
         "split_data.sh", "utt2spk_to_spk2utt.pl", "spk2utt_to_utt2spk.pl", "split_scp.pl"]


def run(tool: str, *args, rc: int, stdin: str | None = None) -> subprocess.CompletedProcess:
    r = subprocess.run([str(UTILS / tool), *map(str, args)], capture_output=True, text=True, input=stdin)
    assert r.returncode == rc, (tool, args, r.returncode, r.stdout, r.stderr)
    return r


def make_dir(path: Path, spk_utts: dict[str, int]) -> Path:
    path.mkdir(parents=True)
    utts = [(f"{s}-{i}", s) for s, n in sorted(spk_utts.items()) for i in range(n)]
    (path / "text").write_text("".join(f"{u} hello\n" for u, _ in utts))
    (path / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s in utts))
    (path / "spk2utt").write_text("".join(f"{s} {' '.join(f'{s}-{i}' for i in range(n))}\n"
                                          for s, n in sorted(spk_utts.items())))
    (path / "wav.scp").write_text("".join(f"{u} /audio/{u}.wav\n" for u, _ in utts))
    return path


def lines(p: Path) -> list[str]:
    return p.read_text().splitlines()


@pytest.mark.parametrize("tool", TOOLS)
def test_help_exits_0(tool):
    out = run(tool, "--help", rc=0).stdout
    assert "usage" in out.lower()


@pytest.mark.parametrize("tool,args", [
    ("fix_data_dir.sh", []), ("subset_data_dir.sh", ["a", "b"]), ("subset_data_dir.sh", ["a", "x", "b"]),
    ("subset_data_dir.sh", ["--first", "--last", "a", "1", "b"]), ("combine_data.sh", ["dest"]),
    ("copy_data_dir.sh", ["--utt-prefix"]), ("split_data.sh", ["d", "0"]), ("split_data.sh", ["--bogus", "d", "2"]),
    ("split_scp.pl", ["in.scp"]), ("utt2spk_to_spk2utt.pl", ["--bogus"]),
])
def test_usage_errors_exit_2(tool, args):
    r = run(tool, *args, rc=2)
    assert f"{UTILS / tool}: " in r.stderr


def test_failures_exit_1_with_prefixed_message(tmp_path):
    missing = tmp_path / "nope"
    for tool, args in (("validate_data_dir.sh", [missing]), ("fix_data_dir.sh", [missing]),
                       ("subset_data_dir.sh", [missing, 1, tmp_path / "x"]),
                       ("copy_data_dir.sh", [missing, tmp_path / "x"]),
                       ("split_data.sh", [missing, 2]), ("combine_data.sh", [tmp_path / "x", missing])):
        r = run(tool, *args, rc=1)
        assert f"{UTILS / tool}: " in r.stderr and str(missing) in r.stderr


def test_validate_and_fix(tmp_path):
    d = make_dir(tmp_path / "d", {"a": 2, "b": 2})
    assert "Successfully validated" in run("validate_data_dir.sh", "--no-feats", d, rc=0).stdout
    (d / "text").write_text("a-1 hello\na-0 hello\nb-0 hello\n")  # unsorted, b-1 missing
    run("validate_data_dir.sh", "--no-feats", d, rc=1)
    r = run("fix_data_dir.sh", d, rc=0)
    assert "kept 3 of 4 utterances" in r.stderr and "dropping 1 utterance(s) not in text: b-1" in r.stderr
    run("validate_data_dir.sh", "--no-feats", d, rc=0)
    assert lines(d / "spk2utt") == ["a a-0 a-1", "b b-0"] and (d / ".backup" / "text").exists()


def test_subset_forms(tmp_path):
    d = make_dir(tmp_path / "d", {"a": 3, "b": 3})
    run("subset_data_dir.sh", d, 2, tmp_path / "n", rc=0)
    assert lines(tmp_path / "n" / "utt2spk") == ["a-2 a", "b-2 b"]  # evenly spread (Kaldi's default)
    run("subset_data_dir.sh", "--first", d, 2, tmp_path / "f", rc=0)
    assert lines(tmp_path / "f" / "utt2spk") == ["a-0 a", "a-1 a"]
    run("subset_data_dir.sh", "--last", d, 1, tmp_path / "l", rc=0)
    assert lines(tmp_path / "l" / "utt2spk") == ["b-2 b"]
    run("subset_data_dir.sh", "--random", "--seed", 7, d, 3, tmp_path / "r", rc=0)
    assert len(lines(tmp_path / "r" / "utt2spk")) == 3
    (tmp_path / "list").write_text("b-0\na-2 ignored\n")
    run("subset_data_dir.sh", "--utt-list", tmp_path / "list", d, tmp_path / "u", rc=0)
    assert lines(tmp_path / "u" / "utt2spk") == ["a-2 a", "b-0 b"]
    (tmp_path / "spks").write_text("b\n")
    run("subset_data_dir.sh", "--spk-list", tmp_path / "spks", d, tmp_path / "s", rc=0)
    assert lines(tmp_path / "s" / "spk2utt") == ["b b-0 b-1 b-2"]
    assert "the source has only 6" in run("subset_data_dir.sh", d, 7, tmp_path / "x", rc=1).stderr


def test_combine_copy_split(tmp_path):
    a = make_dir(tmp_path / "a", {"a": 2})
    b = make_dir(tmp_path / "b", {"b": 1})
    run("combine_data.sh", tmp_path / "c", a, b, rc=0)
    assert len(lines(tmp_path / "c" / "utt2spk")) == 3
    r = run("combine_data.sh", tmp_path / "c2", a, a.parent / "a", rc=1)
    assert "occur in more than one source" in r.stderr and "--utt-prefix" in r.stderr
    run("copy_data_dir.sh", "--utt-prefix", "x-", "--spk-prefix", "x-", a, tmp_path / "p", rc=0)
    assert lines(tmp_path / "p" / "utt2spk") == ["x-a-0 x-a", "x-a-1 x-a"]
    run("split_data.sh", tmp_path / "c", 2, rc=0)
    assert lines(tmp_path / "c" / "split2" / "2" / "utt2spk") == ["b-0 b"]
    run("split_data.sh", "--per-utt", tmp_path / "c", 3, rc=0)
    assert lines(tmp_path / "c" / "split3utt" / "3" / "utt2spk") == ["b-0 b"]
    assert "2 speakers into 3 parts" in run("split_data.sh", tmp_path / "c", 3, rc=1).stderr


def test_utt2spk_spk2utt_round_trip(tmp_path):
    utt2spk = "a-1 a\na-2 a\nb-1 b\nc-1 c\nc-2 c\n"
    spk2utt = run("utt2spk_to_spk2utt.pl", rc=0, stdin=utt2spk).stdout
    assert spk2utt == "a a-1 a-2\nb b-1\nc c-1 c-2\n"
    (tmp_path / "s2u").write_text(spk2utt)
    assert run("spk2utt_to_utt2spk.pl", tmp_path / "s2u", rc=0).stdout == utt2spk
    (tmp_path / "u2s").write_text(utt2spk)
    assert run("utt2spk_to_spk2utt.pl", tmp_path / "u2s", rc=0).stdout == spk2utt  # file argument
    (tmp_path / "bad").write_text("a-1 a\na-2 a b\n")
    assert f"{tmp_path}/bad:2: expected 2 fields" in run("utt2spk_to_spk2utt.pl", tmp_path / "bad", rc=1).stderr
    (tmp_path / "bad2").write_text("a a-1\nb\n")
    assert f"{tmp_path}/bad2:2:" in run("spk2utt_to_utt2spk.pl", tmp_path / "bad2", rc=1).stderr
    assert "no such file" in run("spk2utt_to_utt2spk.pl", tmp_path / "nope", rc=1).stderr


def test_split_scp(tmp_path):
    keys = [f"u{i:02d}" for i in range(11)]
    (tmp_path / "in.scp").write_text("".join(f"{k} /x/{k}.wav\n" for k in keys))
    outs = [tmp_path / f"o{j}.scp" for j in range(3)]
    run("split_scp.pl", tmp_path / "in.scp", *outs, rc=0)
    assert [len(lines(o)) for o in outs] == [4, 4, 3]
    assert sum((lines(o) for o in outs), []) == lines(tmp_path / "in.scp")
    r = run("split_scp.pl", tmp_path / "in.scp", *[tmp_path / f"m{j}" for j in range(12)], rc=1)
    assert "refusing to split 11 lines" in r.stderr
    assert run("split_scp.pl", "-j", 3, 2, tmp_path / "in.scp", rc=0).stdout.split("\n")[0] == "u08 /x/u08.wav"
    assert run("split_scp.pl", "-j", 3, 1, "--one-based", tmp_path / "in.scp", rc=0).stdout.startswith("u00 ")
    # With speakers: the same parts as the Python port used by split_data.sh
    spk = {k: f"s{[0, 0, 0, 0, 0, 1, 2, 2, 3, 4, 4][i]}" for i, k in enumerate(keys)}
    (tmp_path / "utt2spk").write_text("".join(f"{k} {s}\n" for k, s in spk.items()))
    run("split_scp.pl", f"--utt2spk={tmp_path / 'utt2spk'}", tmp_path / "in.scp", *outs, rc=0)
    got = [[line.split()[0] for line in lines(o)] for o in outs]
    assert got == split_scp_keys(keys, 3, spk)
    assert all(sum(s in {spk[k] for k in part} for part in got) == 1 for s in set(spk.values()))  # speakers whole
    assert sum(map(len, got)) == 11
    r = run("split_scp.pl", f"--utt2spk={tmp_path / 'utt2spk'}", tmp_path / "in.scp",
            *[tmp_path / f"m{j}" for j in range(6)], rc=1)
    assert "5 speakers into 6 parts" in r.stderr
