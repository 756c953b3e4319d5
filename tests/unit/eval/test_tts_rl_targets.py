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
