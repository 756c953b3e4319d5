"""Contextual biasing through the ASR task: SFT with keyword lists, decoding with (and without) them, per-row
prompts that do not change other rows, and GRPO whose R3 scores the list (audiorl/data/biasing.py)."""

import json

import pytest
import torch

from audiorl.bin import asr_decode
from audiorl.config import load_config
from audiorl.data.kaldi import DataDirError, read_list_table, read_table, write_table
from audiorl.tasks.asr import ASRTask, FeatsData, decode_utts, load_asr_model
from audiorl.tasks.asr_grpo import ASRGRPOConfig, ASRGRPOTask
from audiorl.train.trainer import Trainer

from .test_asr_task import _tiny_cfg, feats_dir  # noqa: F401  (the fixture)

BIAS = ["--data.biasing.enabled", "true", "--data.biasing.eval_distractors", "3", "--data.biasing.train_prob", "1"]


@pytest.fixture()
def biased_exp(feats_dir, tmp_path):  # noqa: F811
    d, model_path, _ = feats_dir
    text = read_table(str(d / "text"))
    # each utterance's first word is its keyword; a third have none (empty value)
    write_table(str(d / "keywords"), {u: ("" if i % 3 == 0 else t.split()[0]) for i, (u, t) in enumerate(sorted(text.items()))})
    task = ASRTask(_tiny_cfg(d, model_path, BIAS))
    b = next(iter(task.train_batches(0, 0, 1)))
    assert b["prompt_ids"].shape[0] == b["feats"].shape[0] and len(b["bias_lists"]) == b["feats"].shape[0]
    assert (b["prompt_ids"].gather(1, (b["prompt_lens"] - 1)[:, None]) == task.tokens.transcribe_id).all()
    Trainer(task, task.cfg.train, tmp_path / "sft", config=task.cfg).fit()
    return d, tmp_path / "sft"


def test_per_row_prompts_do_not_change_other_rows(biased_exp):
    d, exp = biased_exp
    model, cfg, tokens, _ = load_asr_model(str(exp))
    assert cfg.data.biasing.enabled
    data = FeatsData(str(d), tokens)
    data.use_biasing(cfg.data.biasing)
    utts = data.utt_ids()[:4]
    b = data.collate(utts)
    assert len(set(b["prompt_lens"].tolist())) > 1, "the batch must mix prompt lengths"
    x, lens = model.encode(b["feats"], b["feat_lens"], b["prompt_ids"], b["prompt_lens"])
    for i, u in enumerate(utts):
        one = data.collate([u])
        xi, li = model.encode(one["feats"], one["feat_lens"], one["prompt_ids"], one["prompt_lens"])
        assert int(lens[i]) == int(li[0])
        torch.testing.assert_close(x[i, : lens[i]], xi[0, : li[0]], atol=1e-5, rtol=1e-4)
    batched = decode_utts(model, data, tokens, utts, torch.device("cpu"))
    alone = {u: decode_utts(model, data, tokens, [u], torch.device("cpu"))[u] for u in utts}
    assert batched == alone


def test_decode_cli_follows_the_model_and_can_switch_lists_off(biased_exp, tmp_path, monkeypatch):
    d, exp = biased_exp
    seen = []
    real = FeatsData.collate
    monkeypatch.setattr(FeatsData, "collate", lambda self, us, epoch=None: seen.append(real(self, us, epoch)) or seen[-1])
    for flag, want in (("auto", 3), ("off", None)):
        seen.clear()
        out = tmp_path / f"dec_{flag}"
        assert asr_decode.main(["--exp_dir", str(exp), "--data_dir", str(d), "--out_dir", str(out),
                                "--biasing", flag, "--bias_distractors", "3"]) == 0
        assert set(read_table(str(out / "text"), allow_empty_value=True)) == set(read_table(str(d / "text")))
        assert json.loads((out / "rtf.json").read_text())["biasing_distractors"] == want
        assert all(("prompt_ids" in b) == (want is not None) for b in seen) and seen
        if want:  # the lists the prompts held are written for scoring
            lists = read_list_table(str(out / "bias_lists"))
            assert lists == {u: w for b in seen for u, w in zip(b["utts"], b["bias_lists"])}
            assert all(len(w) >= 3 for w in lists.values())
        else:
            assert not (out / "bias_lists").exists()
    # decoding again into a dir with lists, now without: the stale lists go, so scoring cannot pick them up
    out = tmp_path / "dec_auto"
    assert asr_decode.main(["--exp_dir", str(exp), "--data_dir", str(d), "--out_dir", str(out), "--biasing", "off"]) == 0
    assert not (out / "bias_lists").exists()
    (d / "keywords").unlink()
    with pytest.raises(DataDirError, match="keywords: no such file"):
        asr_decode.main(["--exp_dir", str(exp), "--data_dir", str(d), "--out_dir", str(tmp_path / "x")])


def test_grpo_with_lists_scores_r3_against_the_list(biased_exp, tmp_path):
    d, exp = biased_exp
    conf = tmp_path / "grpo.yaml"
    conf.write_text("rewards:\n  rewards:\n    - {name: accuracy}\n    - {name: keywords}\n")
    cfg = load_config(ASRGRPOConfig, conf, overrides=[
        "--data.sft_exp", str(exp), "--data.rl_dir", str(d), "--data.valid_dir", "",
        "--grpo.num_generations", "2", "--grpo.max_new_tokens", "8", "--grpo.beta", "0", "--train.batch_size", "3"])
    task = ASRGRPOTask(cfg)
    assert task.keywords and task.keywords is task.data.biasing.keywords  # the table is read once
    model = task.build_model()
    task.setup(model, torch.device("cpu"))
    item = next(iter(task.train_batches(0, 0, 1)))  # (batch, reuse index k)
    batch = item[0]
    assert "prompt_ids" in batch
    lists = batch["bias_lists"]
    assert all(len(set(w) - set(task.keywords.get(u, []))) == 3 for u, w in zip(batch["utts"], lists))
    emb, lens = task.encode_prompts(model, batch)
    plain, plain_lens = model.encode(batch["feats"], batch["feat_lens"])
    assert (lens - plain_lens).tolist() == [len(w) and len(task.tokens.encode(" ".join(w))) for w in lists]
    from audiorl.rl.rollout import sample_rollouts
    with torch.no_grad():
        ro = sample_rollouts(model.llm, emb, lens, task.grpo, eos_id=task.eos_id, pad_id=task.pad_id)
    inputs = task.reward_inputs(batch, ro)
    assert [r.keywords for r in inputs] == [w for w in lists for _ in range(2)]
    loss, stats = task.train_step(model, item, 1)
    assert torch.isfinite(loss)
    off = ASRGRPOTask(load_config(ASRGRPOConfig, overrides=[
        "--data.sft_exp", str(exp), "--data.rl_dir", str(d), "--data.valid_dir", "", "--data.biasing", "off"]))
    assert off.data.biasing is None and off.keywords == task.keywords
    with pytest.raises(ValueError, match="data.biasing"):
        ASRGRPOTask(load_config(ASRGRPOConfig, overrides=["--data.sft_exp", str(exp), "--data.rl_dir", str(d),
                                                          "--data.valid_dir", "", "--data.biasing", "yes"]))
