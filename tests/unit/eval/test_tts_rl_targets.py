"""audiorl.bin.tts_results.rl_targets: the Table-2 lines against SFT and issue 6's target checks."""

from audiorl.bin.tts_results import rl_targets


def m(wer, sim=0.80, dur=1.00, verdict="better (p=0.01)"):
    return {"wer": wer, "sim": sim, "dur": dur, "verdict": verdict}


def test_relative_changes_and_targets():
    lines = rl_targets({"SFT": m(0.20), "grpo_r1": m(0.18), "diffro": m(0.15, sim=0.785),
                        "comb_filter_r1": m(0.14), "comb_filter_r12": m(0.16, dur=1.08)})
    text = "\n".join(lines)
    assert "- grpo_r1: WER 18.0% (-10.0% rel., better (p=0.01)); SIM +0.000; duration ratio +0.0%" in text
    assert "DiffRO lowers judge WER by 25.0% relative (target >= 20%: met)" in text
    assert "comb_filter_r1 WER 14.0% vs DiffRO 15.0% (target: at least as good: met)" in text
    assert "comb_filter_r12 WER 16.0% vs DiffRO 15.0% (target: at least as good: NOT met)" in text
    assert "diffro: SIM drops by 0.015 (target <= 0.01: NOT met)" in text
    assert "comb_filter_r12 (with R2): duration ratio within 8.0% of SFT's (target <= 5%: NOT met)" in text


def test_missing_scores_do_not_crash():
    assert rl_targets({"SFT": m(None), "diffro": m(0.1)})[-1] == "- SFT is not scored yet"
    lines = rl_targets({"SFT": m(0.2, sim=None, dur=None), "diffro": m(None), "grpo_r1": m(0.3, sim=None, dur=None)})
    assert any("grpo_r1: WER 30.0% (+50.0% rel." in x and "SIM -" in x for x in lines)
    assert not any("DiffRO lowers" in x for x in lines)


def test_no_target_section_for_rows_outside_table_2():
    lines = rl_targets({"SFT": m(0.2), "DiffRO long, own samples": m(0.18)})  # a tuning comparison's labels
    assert any("DiffRO long, own samples: WER 18.0%" in x for x in lines)
    assert not any("Targets" in x for x in lines), "an empty 'Targets' heading reads as a bug"
    assert any("Targets (issue 6):" in x for x in rl_targets({"SFT": m(0.2), "diffro": m(0.18)}))


def test_combined_vs_diffro_carries_the_paired_test():
    """With scored results the combined-vs-DiffRO line adds their paired test: a slightly higher WER that the test
    cannot tell apart is reported as such; a clearly higher one is NOT met."""
    from audiorl.eval.wer import score

    refs = {f"u{i:03d}": "the cat sat on the mat" for i in range(200)}
    diffro = score(refs, {u: ("the cat sat on a mat" if i % 10 == 0 else r) for i, (u, r) in enumerate(refs.items())})
    close = score(refs, {u: ("the cat sat on a mat" if i % 10 in (0, 1) and i < 30 else
                             "the cat sat on a mat" if i % 10 == 0 else r) for i, (u, r) in enumerate(refs.items())})
    far = score(refs, {u: ("a cat sat in a mat" if i % 2 == 0 else r) for i, (u, r) in enumerate(refs.items())})
    sc = lambda s, **k: {**m(s.totals.wer, **k), "scored": s}  # noqa: E731
    text = "\n".join(rl_targets({"SFT": m(0.5), "diffro": sc(diffro), "comb_filter_r1": sc(close),
                                 "comb_filter_r12": sc(far), "comb_filter_r123": sc(diffro)}, n_boot=200))
    assert close.totals.wer > diffro.totals.wer
    assert ("comb_filter_r1 WER 1.9% vs DiffRO 1.7% (target: at least as good: NOT met by the point estimate, but "
            "not significantly worse; paired against DiffRO: no significant difference, p=") in text
    assert "comb_filter_r12 WER 25.0% vs DiffRO 1.7% (target: at least as good: NOT met; paired against DiffRO: worse" \
        in text
    assert "comb_filter_r123 WER 1.7% vs DiffRO 1.7% (target: at least as good: met; paired against DiffRO: no " in text
