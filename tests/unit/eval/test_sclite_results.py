"""result.txt/result.json round trip, the result.txt fallback reader, RESULTS.md from a fake exp tree, CLIs."""

import json
import os

import pytest

from audiorl.bin import compare as compare_cli
from audiorl.bin import make_results as make_results_cli
from audiorl.bin import score as score_cli
from audiorl.eval.results import experiment_table_md, find_scores, results_md, write_results
from audiorl.eval.sclite import read_result, write_result
from audiorl.eval.wer import score

REFS = {"s1-u1": "a b c d", "s1-u2": "x y", "s2-u3": "hello world", "s2-u4": ""}
HYPS = {"s1-u1": "a x c e d", "s1-u2": "x y", "s2-u4": "oops"}
UTT2SPK = {"s1-u1": "s1", "s1-u2": "s1", "s2-u3": "s2", "s2-u4": "s2"}


@pytest.fixture
def scored(tmp_path):
    res = score(REFS, HYPS, keywords={"s1-u1": ["c", "d"], "s2-u3": ["world"]})
    out = tmp_path / "score_wer"
    write_result(str(out), res, utt2spk=UTT2SPK, ref_path="data/test/text", hyp_path="exp/x/text")
    return res, out


def test_round_trip(scored):
    res, out = scored
    for path in (out, out / "result.json", out / "result.txt"):  # dir, sidecar, txt -> sidecar preferred
        sf = read_result(str(path))
        assert sf.path.endswith("result.json")
        assert sf.totals == res.totals
        assert sf.utts == {u: s.counts for u, s in res.utts.items()}
        assert list(sf.utts) == list(REFS)  # reference order kept
        assert sf.missing == ["s2-u3"]
        assert sf.speakers["s2"].dels == 2 and sf.speakers["s2"].ins == 1
        assert (sf.keywords.expected, sf.keywords.found, sf.keywords.hits) == (3, 2, 2)  # c d | world
    d = json.loads((out / "result.json").read_text())
    assert d["totals"]["wer"] == pytest.approx(res.totals.wer)
    assert d["utts"]["s2-u3"]["missing"] is True


def test_result_txt_layout(scored):
    _, out = scored
    txt = (out / "result.txt").read_text()
    # What ESPnet's `grep -e Avg -e SPKR -m 2 result.txt` picks up for RESULTS.md.
    lines = [ln for ln in txt.splitlines() if "Avg" in ln or "SPKR" in ln]
    assert lines[0].split("|")[1].strip() == "SPKR"
    assert lines[1].split() == ["|", "Sum/Avg", "|", "4", "8", "|", "62.5", "12.5", "25.0", "25.0", "62.5", "75.0", "|"]
    assert any(ln.split()[:2] == ["|", "s1"] for ln in txt.splitlines())
    assert "WARNING: 1 reference utterance(s) had no hypothesis" in txt and "s2-u3" in txt
    assert "id: (s1-u1)\nScores: (#C #S #D #I) 3 1 0 1\nREF:  a B c * d\nHYP:  a X c E d\nEval:   S   I\n" in txt
    # Every row of the box has the same width.
    box = [ln for ln in txt.splitlines() if ln.startswith(("|", ",", "`"))]
    assert len({len(ln) for ln in box}) == 1


def test_txt_only_fallback_and_error(scored, tmp_path):
    _, out = scored
    os.remove(out / "result.json")
    sf = read_result(str(out))
    assert sf.totals.err == 5 and sf.utts["s1-u1"].sub == 1
    bad = tmp_path / "bad.txt"
    bad.write_text("| Sum/Avg | 1 2 | ... |\n")
    with pytest.raises(ValueError, match="per-utterance"):
        read_result(str(bad))


def _fake_exp(root, name, hyps, dataset="decode_test/score_wer", refs=REFS):
    write_result(os.path.join(root, name, *dataset.split("/")), score(refs, hyps))


def test_results_md_from_fake_exp_tree(tmp_path):
    exp = tmp_path / "exp"
    refs = {f"u{i:03d}": "the cat sat on the mat" for i in range(60)}
    bad = {u: "the cat sat on a hat" for u in refs}  # 2 errors / utt
    good = {u: ("the cat sat on the mat" if i % 2 else "the cat sat on a mat") for i, u in enumerate(refs)}
    _fake_exp(exp, "asr_sft", bad, refs=refs)
    _fake_exp(exp, "asr_grpo", good, refs=refs)
    # ESPnet2 nested layout with a differently named decode dir still matches the baseline row.
    _fake_exp(exp, "asr_diffro", good, dataset="decode_asr_beam5/test/score_wer", refs=refs)
    _fake_exp(exp, "asr_sft", bad, dataset="decode_asr_beam1/test/score_wer", refs=refs)
    (exp / "asr_grpo" / "train").mkdir()  # not a score dir: ignored
    found = find_scores(str(exp))
    assert sorted(found) == ["asr_diffro", "asr_grpo", "asr_sft"]
    assert sorted(found["asr_sft"]) == ["decode_asr_beam1/test/score_wer", "decode_test/score_wer"]

    env = {"date": "today", "Git hash": "abc123 (dirty: uncommitted changes)", "command": "make_results --exp exp"}
    md = results_md(found, env=env, baseline="asr_sft", extra=("missing",))
    assert "- Git hash: `abc123 (dirty: uncommitted changes)`" in md and "- command: `make_results --exp exp`" in md
    assert md.index("## asr_sft") < md.index("## asr_diffro")  # baseline first
    head = "|dataset|Snt|Wrd|Corr|Sub|Del|Ins|Err (WER)|S.Err|95% CI|Missing hyps|vs asr_sft|"
    assert head in md
    sft_row = next(ln for ln in md.splitlines() if ln.startswith("|decode_test/score_wer|60|360|"))
    assert "|33.3|" in sft_row and sft_row.endswith("|(baseline)|")
    grpo = md.split("## asr_grpo")[1]
    row = next(ln for ln in grpo.splitlines() if ln.startswith("|decode_test/score_wer|"))
    cells = row.strip("|").split("|")
    assert cells[7] == "8.3"  # 30 errors / 360 words
    lo, hi = (float(x) for x in cells[9].strip("[]").split(","))
    assert lo < 8.3 < hi
    assert cells[-1].startswith("better, p<0.001, ΔWER -25.00")
    diffro = md.split("## asr_diffro")[1]
    assert "better, p<0.001" in diffro  # matched through decode_*/test/score_wer


def test_table_units_and_unknown_extra(tmp_path):
    a = read_result(str(_write(tmp_path / "w", score(REFS, HYPS))))
    c = read_result(str(_write(tmp_path / "c", score(REFS, HYPS, unit="char"))))
    md = experiment_table_md("x", {"decode/score_wer": a, "decode/score_cer": c})
    assert md.index("### WER") < md.index("### CER") and "Err (CER)" in md
    with pytest.raises(ValueError, match="unknown extra"):
        experiment_table_md("x", {"d": a}, extra=("bogus",))
    with pytest.raises(ValueError, match="baseline"):
        results_md({"x": {"d": a}}, baseline="nope")


def _write(d, res):
    write_result(str(d), res)
    return d


def test_write_results_records_command_and_git(tmp_path):
    exp = tmp_path / "exp"
    _fake_exp(exp, "a", HYPS)
    md = write_results(str(tmp_path / "RESULTS.md"), exp_root=str(exp), command="python -m x --y",
                       repo_dir=str(tmp_path))
    assert (tmp_path / "RESULTS.md").read_text() == md
    assert "- command: `python -m x --y`" in md and "- Git hash: `not a git checkout`" in md
    assert "- torch version:" in md and "- python version:" in md


def test_clis_end_to_end(tmp_path, capsys):
    ref, hyp_a, hyp_b = tmp_path / "text", tmp_path / "hyp_a", tmp_path / "hyp_b"
    ref.write_text("".join(f"u{i} a b c d\n" for i in range(30)))
    hyp_a.write_text("".join(f"u{i} a x c\n" for i in range(30)))
    hyp_b.write_text("".join(f"u{i} a b c d\n" for i in range(30)))
    exp = tmp_path / "exp"
    for name, hyp in (("base", hyp_a), ("rl", hyp_b)):
        rc = score_cli.main(["--ref", str(ref), "--hyp", str(hyp), "--out", str(exp / name / "decode_test" / "score_wer")])
        assert rc == 0
    out = capsys.readouterr().out
    assert "%WER 50.00 [ 60 / 120, 0 ins, 30 del, 30 sub ]" in out and "%WER 0.00" in out
    assert compare_cli.main([str(exp / "base/decode_test/score_wer"), str(exp / "rl/decode_test/score_wer")]) == 0
    assert "B better, p<0.001, ΔWER -50.00" in capsys.readouterr().out
    rc = make_results_cli.main(["--exp", str(exp), "--out", str(tmp_path / "R.md"), "--baseline", "base"])
    assert rc == 0 and "|better, p<0.001" in (tmp_path / "R.md").read_text()
    # A hypothesis with no reference: exit 1 with the fix in the message.
    hyp_a.write_text(hyp_a.read_text() + "zz extra\n")
    assert score_cli.main(["--ref", str(ref), "--hyp", str(hyp_a), "--out", str(tmp_path / "o")]) == 1
    assert score_cli.main(["--ref", str(ref), "--hyp", str(hyp_a), "--out", str(tmp_path / "o"),
                           "--ignore-extra", "true"]) == 0


def test_score_cli_reports_biasing_false_alarms(tmp_path, capsys):
    ref, hyp, lists = tmp_path / "ref", tmp_path / "hyp", tmp_path / "bias_lists"
    ref.write_text("u1 i saw paris\nu2 we met anna\nu3 nothing\n")
    hyp.write_text("u1 i saw berlin\nu2 we met anna\nu3 nothing\n")
    lists.write_text("u1 berlin paris oslo\nu2 anna rome\nu3\n")
    out = tmp_path / "score_wer"
    assert score_cli.main(["--ref", str(ref), "--hyp", str(hyp), "--out", str(out), "--bias_lists", str(lists)]) == 0
    assert "%BIAS FA 1 [ list words written beyond the reference, 1 utterances ] R 50.00 [ 1 / 2" in \
        capsys.readouterr().out
    d = json.loads((out / "result.json").read_text())["bias_lists"]
    assert d["totals"]["false_alarms"] == 1 and d["utts"]["u1"] == [1, 1, 0] and d["utts"]["u3"] == [0, 0, 0]
    assert "1 false alarms (list words written beyond the reference) in 1 utterances" in (out / "result.txt").read_text()


def test_merge_decode_joins_bias_lists_of_every_job_or_refuses(tmp_path, capsys):
    from audiorl.bin import merge_decode

    dec = tmp_path / "decode_test"
    for j, (utt, words) in enumerate((("u1", "paris oslo"), ("u2", "")), 1):
        d = dec / "split" / str(j)
        d.mkdir(parents=True)
        (d / "text").write_text(f"{utt} hello\n")
        (d / "rtf.json").write_text(json.dumps({"utts": 1, "decode_seconds": 1.0, "audio_seconds": 2.0}))
        (d / "bias_lists").write_text(f"{utt} {words}\n")
    assert merge_decode.main([str(dec), "--nj", "2"]) == 0
    assert (dec / "bias_lists").read_text().splitlines() == ["u1 paris oslo", "u2"]
    (dec / "split" / "2" / "bias_lists").unlink()  # one job decoded without lists: a mixed dir is an error
    assert merge_decode.main([str(dec), "--nj", "2"]) == 1
    assert "bias_lists in 1 of 2 job dirs" in capsys.readouterr().err
    (dec / "split" / "1" / "bias_lists").unlink()  # none now: the merged file of the earlier decoding goes
    assert merge_decode.main([str(dec), "--nj", "2"]) == 0 and not (dec / "bias_lists").exists()
