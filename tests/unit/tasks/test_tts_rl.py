"""audiorl.tasks.tts_rl: GRPO, DiffRO and GRPO + DiffRO on a tiny TTS LM through the Trainer (metrics, checkpoints,
resume), parity of the task's log-probs with the LM's own, the advantage filter's switch, and clear errors for
missing models. Random speech tokens (no tokenizer) and a tiny token-to-text reward model, CPU."""

import json
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import torch

from audiorl.config import load_config
from audiorl.data.kaldi import write_table
from audiorl.data.tokenizer import train_tokenizer
from audiorl.models.tts_lm import SpeechSamplingConfig
from audiorl.rl.rewards import unbind_reward
from audiorl.tasks import tts as T
from audiorl.tasks.token2text import Token2TextTask, Token2TextTrainConfig
from audiorl.tasks.tts_rl import TTSDiffROTask, TTSGRPOTask, TTSRLConfig, make_tts_rl_task
from audiorl.train.metrics import read_metrics
from audiorl.train.trainer import Trainer

WORDS = "the cat sat on a mat and then it ran to the big red barn near old town".split()
VS, SPK = 20, 8
QUIET = ["--train.log_interval", "1", "--train.progress_bar", "false", "--train.tensorboard", "false",
         "--train.scheduler.warmup_steps", "1"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """data/{train,rl_pool,dev} (text, utt2spk), random speech tokens and speaker embeddings, a BPE model, a 2-step
    TTS LM and a 2-step token-to-text reward model."""
    root = tmp_path_factory.mktemp("ttsrl")
    rng = np.random.default_rng(0)
    texts = []
    for name, n in (("train", 12), ("rl_pool", 8), ("dev", 4)):
        d = root / "data" / name
        d.mkdir(parents=True)
        text = {f"spk{i % 2}-{name}-{i:02d}": " ".join(rng.choice(WORDS, size=2 + i % 3)) for i in range(n)}
        write_table(str(d / "text"), text)
        write_table(str(d / "utt2spk"), {u: u.split("-")[0] for u in text})
        texts += list(text.values())
        for sub, fn in (("tokens", lambda u: rng.integers(0, VS, 6 + 2 * len(text[u].split())).astype(np.int32)),
                        ("spk_embed", lambda u: rng.standard_normal(SPK).astype(np.float32))):
            o = root / "dump" / sub / name
            o.mkdir(parents=True)
            with kaldiio.WriteHelper(f"ark,scp:{o}/{sub}.ark,{o}/{sub}.scp") as w:
                for u in sorted(text):
                    w(u, fn(u))
    train_tokenizer(texts * 5, str(root / "bpe"), 30, "bpe")
    bpe = str(root / "bpe.model")
    loop = ["--train.max_steps", "2", "--train.valid_interval", "2", "--train.save_interval", "2", *QUIET]
    data = ["--data.train_dir", f"{root}/data/train", "--data.train_tokens", f"{root}/dump/tokens/train/tokens.scp",
            "--data.valid_dir", f"{root}/data/dev", "--data.valid_tokens", f"{root}/dump/tokens/dev/tokens.scp",
            "--data.codebook_size", str(VS), "--data.token_model", bpe]
    lm_cfg = load_config(T.TTSLMTrainConfig, overrides=[
        *data, "--data.train_spk_embed", f"{root}/dump/spk_embed/train/spk_embed.scp",
        "--data.valid_spk_embed", f"{root}/dump/spk_embed/dev/spk_embed.scp", "--model.spk_embed_dim", str(SPK),
        "--model.llm.dim", "32", "--model.llm.n_layers", "1", "--model.llm.n_heads", "2", "--model.llm.n_kv_heads",
        "1", "--model.llm.intermediate_size", "64", "--model.llm.max_seq_len", "256", "--train.batch_size", "4",
        *loop])
    task = T.TTSLMTask(lm_cfg)
    Trainer(task, task.cfg.train, root / "exp/lm", config=task.cfg).fit()
    rm_cfg = load_config(Token2TextTrainConfig, overrides=[
        *data, "--data.attributes", "[rate]", "--data.valid_decode_utts", "2", "--model.dim", "32", "--model.n_layers", "1",
        "--model.n_heads", "2", "--model.ffn_dim", "64", "--model.conv_kernel", "5",
        "--train.batch_size", "4", *loop])
    task = Token2TextTask(rm_cfg)
    Trainer(task, task.cfg.train, root / "exp/rm", config=task.cfg).fit()
    yield root
    for name in ("token2text", "asr_judge", "sim"):
        unbind_reward(name)


def _cfg(root, method="grpo", *extra):
    return load_config(TTSRLConfig, overrides=[
        "--method", method, "--data.sft_exp", f"{root}/exp/lm", "--data.rl_dir", f"{root}/data/rl_pool",
        "--data.rl_tokens", f"{root}/dump/tokens/rl_pool/tokens.scp",
        "--data.rl_spk_embed", f"{root}/dump/spk_embed/rl_pool/spk_embed.scp", "--data.valid_dir", f"{root}/data/dev",
        "--data.valid_tokens", f"{root}/dump/tokens/dev/tokens.scp",
        "--data.valid_spk_embed", f"{root}/dump/spk_embed/dev/spk_embed.scp", "--data.valid_utts", "3",
        "--models.reward_model_exp", f"{root}/exp/rm",
        "--rewards.rewards", '[{name: token2text, weight: 1.0, kwargs: {mode: logprob}}, {name: duration, weight: 0.5},'
                             ' {name: diversity, weight: 0.1}]',
        "--grpo.num_generations", "4", "--grpo.max_new_tokens", "30", "--sampling.max_new_tokens", "30",
        "--valid_sampling.max_new_tokens", "30", "--train.batch_size", "2", "--train.max_steps", "2",
        "--train.valid_interval", "2", "--train.save_interval", "2", *QUIET, *extra])


def _fit(task, exp):
    return Trainer(task, task.cfg.train, exp, config=task.cfg).fit()


def test_grpo_trains_logs_and_resumes(corpus, tmp_path):
    task = make_tts_rl_task(_cfg(corpus))
    assert isinstance(task, TTSGRPOTask) and task.cfg.model.speech_vocab_size == VS
    res = _fit(task, tmp_path / "grpo")
    assert res["step"] == 2
    rows = [r for r in read_metrics(tmp_path / "grpo" / "metrics.jsonl") if r.get("split") == "train"]
    keys = set().union(*rows)
    assert {"reward", "reward_token2text", "reward_duration", "reward_diversity", "kl", "entropy", "completion_len",
            "frac_reward_zero_std", "time_rollout", "time_reward", "time_update"} <= keys
    valid = res["valid"]
    assert {"rm_wer", "dur_ratio", "frac_looped", "loss"} <= set(valid) and valid["loss"] == valid["rm_wer"]
    # resume: a longer run continues from step 2 with the same config
    task2 = make_tts_rl_task(_cfg(corpus, "grpo", "--train.max_steps", "3", "--train.save_interval", "1",
                                  "--train.valid_interval", "1"))
    assert _fit(task2, tmp_path / "grpo")["step"] == 3
    steps = [r["step"] for r in read_metrics(tmp_path / "grpo" / "metrics.jsonl") if r.get("split") == "train"]
    assert steps == [1, 2, 3]


def test_completion_logprobs_match_the_lm_and_the_sampler(corpus):
    task = make_tts_rl_task(_cfg(corpus, "grpo", "--grpo.top_k", "0", "--grpo.top_p", "1.0",
                                 "--sampling.loop_window", "0", "--sampling.min_tokens_per_text", "0",
                                 "--sampling.max_tokens_per_text", "0"))
    model = task.build_model()
    task.setup(model, torch.device("cpu"))
    batch = next(iter(task.prompt_batches(0, 0, 1)))
    model.eval()
    with torch.no_grad():
        embeds, lens = task.encode_prompts(model, batch)
        r = task.sample(model, embeds, lens, batch)
        assert r.tokens.shape[0] == 2 * 4 and int(r.tokens.max()) <= VS
        logp, ent = task.completion_logprobs(model, embeds, lens, r, with_entropy=True)
        ref = model.sequence_logprobs(embeds, lens, r.tokens, r.lengths)
    assert torch.allclose(logp, ref, atol=1e-5)
    # no forced tokens and no filtering: the sampler's log-probs are the policy's (pi_old for num_iterations > 1)
    assert torch.allclose(logp * r.mask, r.old_logp * r.mask, atol=1e-4)
    assert ent is not None and (ent[r.mask] > 0).all()


def test_diffro_trains_on_reference_tokens_and_moves_the_weights(corpus, tmp_path):
    cfg = _cfg(corpus, "diffro", "--diffro.attribute_weights", "{rate: 0.5}", "--train.optim.lr", "1e-3")
    task = make_tts_rl_task(cfg)
    assert isinstance(task, TTSDiffROTask)
    res = _fit(task, tmp_path / "diffro")
    assert res["step"] == 2
    rows = [r for r in read_metrics(tmp_path / "diffro" / "metrics.jsonl") if r.get("split") == "train"]
    assert all(np.isfinite(r["loss"]) for r in rows)
    assert {"reward", "text_logprob", "kl", "attr_rate_logprob", "sample_max_prob"} <= set().union(*rows)
    from audiorl.train import checkpoint as ckpt_lib

    sft = task.build_model()
    ckpt_lib.load_model_weights(sft, task.cfg.train.init_from)
    rl = task.build_model()
    ckpt_lib.load_model_weights(rl, str(ckpt_lib.final_weights(str(tmp_path / "diffro"))))
    with torch.no_grad():
        moved = sum(float((a - b).abs().sum()) for a, b in zip(sft.parameters(), rl.parameters()))
    assert moved > 0


@pytest.mark.parametrize("flt", [True, False])
def test_grpo_diffro_filter_switch(corpus, tmp_path, flt):
    rewards = '[{name: token2text, weight: 1.0, kwargs: {mode: wer}}, {name: duration, weight: 1.0}]'
    task = make_tts_rl_task(_cfg(corpus, "grpo_diffro", "--diffro.advantage_filter", str(flt).lower(),
                                 "--data.valid_dir", "", "--rewards.rewards", rewards))
    _fit(task, tmp_path / f"comb{flt}")
    rows = [r for r in read_metrics(tmp_path / f"comb{flt}" / "metrics.jsonl") if r.get("split") == "train"]
    sel = [r["diffro_frac_selected"] for r in rows]
    if flt:
        assert all(s < 1.0 for s in sel)  # rows with advantage <= 0 are dropped (half of a normalised group or more)
    else:
        assert all(s == 1.0 for s in sel)
    assert all("diffro_kl" in r or r["diffro_frac_selected"] == 0 for r in rows)


def test_errors_name_the_missing_model(corpus):
    with pytest.raises(ValueError, match="models.reward_model_exp"):
        make_tts_rl_task(_cfg(corpus, "diffro", "--models.reward_model_exp", ""))
    with pytest.raises(ValueError, match="models.t2m_exp"):
        make_tts_rl_task(_cfg(corpus, "grpo", "--rewards.rewards", "[{name: asr_judge}]"))
    with pytest.raises(FileNotFoundError, match="stage 7"):
        make_tts_rl_task(_cfg(corpus, "grpo", "--data.sft_exp", str(corpus / "exp/none")))
    with pytest.raises(Exception, match="method"):
        _cfg(corpus, "ppo")


def test_config_is_self_contained(corpus, tmp_path):
    task = make_tts_rl_task(_cfg(corpus, "grpo", "--train.max_steps", "1", "--train.save_interval", "1",
                                 "--train.valid_interval", "1", "--data.valid_dir", ""))
    _fit(task, tmp_path / "one")
    saved = load_config(TTSRLConfig, tmp_path / "one" / "config.yaml")
    assert saved.model.speech_vocab_size == VS and saved.train.init_from
    assert json.loads(json.dumps(saved.rewards.rewards[0].kwargs)) == {"mode": "logprob"}


@pytest.mark.parametrize("conf", sorted(Path(__file__).resolve().parents[3].glob("egs/*/tts/conf/rl/**/*.yaml")),
                         ids=lambda p: p.name)
def test_recipe_rl_configs_load(conf):
    cfg = load_config(TTSRLConfig, conf)
    assert cfg.train.max_steps > 0 and cfg.rewards.rewards
    if cfg.method == "grpo_diffro":
        assert cfg.diffro.beta >= 0


def test_token2mel_settings_come_from_the_synthesis_config(corpus, tmp_path):
    """models.synth_config: the rewards run token-to-mel as the synthesis stage does (its token2mel section),
    validation samples the LM as it does (its sampling section); a bad file names itself."""
    synth = tmp_path / "synth.yaml"
    synth.write_text("sampling: {temperature: 0.4, max_new_tokens: 90}\n"
                     "token2mel: {t_start: 0.8, n_steps: 4, cfg_strength: 0.0}\n")
    task = make_tts_rl_task(_cfg(corpus, "grpo", "--models.synth_config", str(synth)))
    s = task.cfg.models.t2m_sampling
    assert (s.t_start, s.n_steps, s.cfg_strength) == (0.8, 4, 0.0)
    # validation samples the LM as the synthesis stage does: the file's keys, the synthesis tool's defaults elsewhere
    v = task.cfg.valid_sampling
    default = SpeechSamplingConfig()
    assert (v.temperature, v.max_new_tokens, v.min_tokens_per_text) == (0.4, 90, default.min_tokens_per_text)
    assert task.cfg.grpo.temperature == TTSRLConfig().grpo.temperature  # rollouts keep their own sampler
    plain = make_tts_rl_task(_cfg(corpus, "grpo")).cfg  # not given: as configured
    assert plain.models.t2m_sampling.t_start == 0.0 and plain.valid_sampling == _cfg(corpus).valid_sampling
    synth.write_text("token2mel: {t_begin: 0.8}\n")
    with pytest.raises(Exception, match="t_begin"):
        make_tts_rl_task(_cfg(corpus, "grpo", "--models.synth_config", str(synth)))
    synth.write_text("token2mel: {t_start: [0.8\n")
    with pytest.raises(Exception, match="not valid YAML"):
        make_tts_rl_task(_cfg(corpus, "grpo", "--models.synth_config", str(synth)))
    with pytest.raises(FileNotFoundError, match="no such synthesis config"):
        make_tts_rl_task(_cfg(corpus, "grpo", "--models.synth_config", str(tmp_path / "none.yaml")))
