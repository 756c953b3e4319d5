"""GRPO for LLM-based ASR (PAPER.md s3): the ASR side of ``audiorl.rl.grpo_task.GRPOTask``.

Starts from an SFT experiment: its config.yaml gives the model and tokenizer, its averaged weights the initial
policy (``train.init_from``) and the frozen reference. Prompts are the RL data dir's audio (a D0-D3 subset of
rl_pool, never the SFT training set: ENV.md measured ~0.95 reward and 25% zero-variance groups there);
completions are decoded to text and scored against the reference transcript and the utterance's keywords.
Validation is greedy decoding of the dev set: ``loss`` = WER, so the Trainer's best-checkpoint averaging keeps
the lowest-WER checkpoints. ``sample_hypotheses`` is the temperature-sampling decoder used to find the
utterances where the SFT model is unsure (RL data D1, audiorl/rl/data_select.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from audiorl.config import load_config, option
from audiorl.data.biasing import lists_wanted
from audiorl.data.kaldi import read_list_table
from audiorl.data.sampler import LengthBucketSampler, map_batches
from audiorl.log import get_logger
from audiorl.models.asr import ASRModel, ASRModelConfig
from audiorl.models.sampling import generate
from audiorl.rl.config import GRPOConfig
from audiorl.rl.grpo_task import GRPOStepConfig, GRPOTask
from audiorl.rl.rewards import RewardConfig, RewardInput, compute_rewards
from audiorl.rl.rollout import Rollout
from audiorl.tasks.asr import (DEFAULT_TOKENS_PER_SECOND, ASRTokens, ASRTrainConfig, FeatsData, decode_utts,
                               token_budget)
from audiorl.train import checkpoint as ckpt_lib
from audiorl.train.config import OptimConfig, SchedulerConfig, TrainConfig

logger = get_logger(__name__)


# ----------------------------------------------------------------------------------------------- config
@dataclass
class ASRGRPODataConfig:
    """The SFT model to start from and the RL / validation data."""

    sft_exp: str = option("exp/asr_train_asr", "SFT experiment dir: its config.yaml gives the model, tokenizer "
                                               "and CMVN; its weights the initial policy and the reference.")
    sft_checkpoint: str = option("", "SFT weights to start from; '' = the best-N average its config asks for, "
                                     "else its latest checkpoint. Ignored when train.init_from is set.")
    rl_dir: str = option("dump/fbank/rl_pool_D1", "RL prompts: a data dir with feats.scp, utt2num_frames and text "
                                                  "(one of the D0-D3 subsets of rl_pool, asr.sh stage 10).")
    keywords: str = option("", "Keyword table '<utt> <kw> ...' for the keyword reward (R3); '' = <rl_dir>/keywords "
                               "when it exists (utterances without keywords score no_keyword_value).")
    valid_dir: str = option("dump/fbank/dev", "Dev data dir for validation by greedy decoding.")
    valid_keywords: str = option("", "Keyword table of the dev set (logs valid kw_recall); '' = <valid_dir>/keywords "
                                     "when it exists.")
    valid_decode_utts: int = option(300, "Dev utterances decoded at each validation (the first N by id); their "
                                         "WER is the validation loss. 0 = all.")
    max_utt_frames: int = option(3000, "RL utterances with more feature frames are skipped (counted in the log).")
    biasing: str = option("auto", "Biasing lists in the prompts (audiorl/data/biasing.py): auto = as the SFT model "
                                  "was trained (its data.biasing), on / off to force. With lists, R3 (keywords) "
                                  "scores against each utterance's list, so inserting a distractor lowers its "
                                  "precision.")
    tokens_per_second: float = option(DEFAULT_TOKENS_PER_SECOND, "Sampling budget per batch: min(grpo.max_new_tokens, "
                                      "max(16, this x the longest audio in s)); see audiorl.tasks.asr.token_budget. "
                                      "Loops stop early instead of running every row to grpo.max_new_tokens.")


@dataclass
class ASRPolicyConfig:
    """What GRPO may change (PAPER.md s1 leaves it open; default: the whole model, as SFT trained it)."""

    freeze_encoder: bool = option(False, "Keep the audio encoder fixed during RL (its gradient comes only "
                                         "through step.prompt_grad=true).")
    freeze_adaptor: bool = option(False, "Keep the adaptor fixed during RL.")
    sft_weight: float = option(0.0, "Add sft_weight x the SFT loss (CE + CTC, as SFT trained it) on the batch's "
                                    "reference transcripts to the GRPO loss: an anchor against drift on small RL "
                                    "sets (ENV.md lists it among the untried levers). 0 = pure GRPO (the paper).")

    def __post_init__(self) -> None:
        if self.sft_weight < 0:
            raise ValueError(f"policy.sft_weight={self.sft_weight} must be >= 0 (0 = off)")


def _default_rewards() -> RewardConfig:
    return RewardConfig([{"name": "accuracy", "weight": 1.0}])


def _default_train() -> TrainConfig:
    # The paper's lr 1e-5 (s2); ENV.md: 5e-5 on ~1k utterances drifted and made test WER worse.
    return TrainConfig(max_steps=300, batch_size=8, optim=OptimConfig(lr=1e-5, weight_decay=0.0),
                       scheduler=SchedulerConfig(warmup_steps=10, decay="constant"), grad_clip=1.0,
                       log_interval=10, valid_interval=50, valid_at_start=True, save_interval=50, keep_last_n=2,
                       average_best_n=1)


@dataclass
class ASRGRPOConfig:
    """GRPO stage for LLM-based ASR (asr.sh stage 11)."""

    data: ASRGRPODataConfig = option(default_factory=ASRGRPODataConfig, help="SFT model and data.")
    policy: ASRPolicyConfig = option(default_factory=ASRPolicyConfig, help="Which parts RL trains.")
    grpo: GRPOConfig = option(default_factory=lambda: GRPOConfig(num_generations=8, max_new_tokens=96),
                              help="The GRPO objective and sampling.")
    step: GRPOStepConfig = option(default_factory=GRPOStepConfig, help="How the GRPO step runs.")
    rewards: RewardConfig = option(default_factory=_default_rewards, help="Rewards (R1 accuracy, R2 "
                                   "hallucination, R3 keywords, ...) and their weights.")
    train: TrainConfig = option(default_factory=_default_train, help="The training loop; batch_size = prompts "
                                "(utterances) per step, each sampled grpo.num_generations times.")
    model: ASRModelConfig = option(default_factory=ASRModelConfig, help="Filled from <data.sft_exp>/config.yaml "
                                   "(values given here are replaced); recorded so this config is self-contained.")


def sft_weights(exp_dir: str, checkpoint: str = "") -> str:
    """The SFT weights RL starts from: ``checkpoint``, else the averaged model, else the latest checkpoint."""
    if checkpoint:
        return checkpoint
    latest = ckpt_lib.final_weights(exp_dir)
    if latest is None:
        raise FileNotFoundError(f"{exp_dir}: no averaged model and no checkpoint to start RL from; train SFT first "
                                "(asr.sh stage 5) or set data.sft_checkpoint")
    return str(latest)


def _table_or_default(path: str, data_dir: str) -> dict[str, list[str]]:
    path = path or os.path.join(data_dir, "keywords")
    return read_list_table(path) if path and os.path.isfile(path) else {}


# ----------------------------------------------------------------------------------------------- the task
class ASRGRPOTask(GRPOTask):
    def __init__(self, cfg: ASRGRPOConfig):
        d = cfg.data
        sft_cfg_path = Path(d.sft_exp) / "config.yaml"
        if not sft_cfg_path.is_file():
            raise FileNotFoundError(f"{sft_cfg_path}: no such file; data.sft_exp must be a trained SFT experiment")
        sft = load_config(ASRTrainConfig, sft_cfg_path)
        self.tokens = ASRTokens(sft.data.token_model)
        model = replace(self.tokens.fill(sft.model),
                        freeze_encoder=cfg.policy.freeze_encoder or sft.model.freeze_encoder,
                        freeze_adaptor=cfg.policy.freeze_adaptor or sft.model.freeze_adaptor)
        train = cfg.train if cfg.train.init_from else replace(
            cfg.train, init_from=sft_weights(d.sft_exp, d.sft_checkpoint))
        self.cfg = cfg = replace(cfg, model=model, train=train)
        super().__init__(cfg.grpo, cfg.step, cfg.rewards, seed=cfg.train.seed)
        self.cmvn = sft.data.cmvn
        self.data = FeatsData(d.rl_dir, self.tokens, self.cmvn, d.max_utt_frames)
        self.valid_data = FeatsData(d.valid_dir, self.tokens, self.cmvn) if d.valid_dir else None
        if lists_wanted(d.biasing, sft.data.biasing, "data.biasing"):
            # the lists need the tables (a missing one is an error there); R3 and valid recall reuse what they read
            self.keywords = self.data.use_biasing(sft.data.biasing, d.keywords).keywords
            self.valid_keywords = ({} if self.valid_data is None else
                                   self.valid_data.use_biasing(sft.data.biasing, d.valid_keywords).keywords)
        else:
            self.keywords = _table_or_default(d.keywords, d.rl_dir)
            self.valid_keywords = _table_or_default(d.valid_keywords, d.valid_dir) if d.valid_dir else {}
        self._sampler: LengthBucketSampler | None = None
        logger.info("GRPO from %s (%s): %d RL utterances in %s (%d with keywords), B %d x G %d per step",
                    d.sft_exp, cfg.train.init_from, len(self.data.frames), d.rl_dir,
                    sum(1 for u in self.data.frames if self.keywords.get(u)), cfg.train.batch_size,
                    cfg.grpo.num_generations)

    # --- GRPOTask hooks
    def build_model(self) -> ASRModel:
        return ASRModel(self.cfg.model)

    def prompt_batches(self, epoch: int, rank: int, world_size: int):
        t = self.cfg.train
        if self._sampler is None:
            # batch_size utterances of similar length: one long utterance does not stretch a whole rollout
            self._sampler = LengthBucketSampler(self.data.items(), max_frames=t.max_frames, batch_size=t.batch_size,
                                                seed=t.seed, rank=rank, world_size=world_size)
        return map_batches(self._sampler.for_epoch(epoch), self.data.collate)

    def encode_prompts(self, model: ASRModel, batch: dict):
        return model.encode(batch["feats"], batch["feat_lens"], batch.get("prompt_ids"), batch.get("prompt_lens"))

    def policy_llm(self, model: ASRModel):
        return model.llm

    @property
    def eos_id(self) -> int:
        return self.cfg.model.eos_id

    @property
    def pad_id(self) -> int:
        return self.cfg.model.pad_id

    def rollout_budget(self, batch: dict) -> int:
        return token_budget(int(batch["feat_lens"].max()), self.cfg.data.tokens_per_second)

    def reward_inputs(self, batch: dict, rollout: Rollout) -> list[RewardInput]:
        G, utts = rollout.num_generations, batch["utts"]
        lists = batch.get("bias_lists")  # with biasing, R3 scores the list: true keywords and distractors
        out = []
        for i, ids in enumerate(rollout.completion_ids(self.eos_id)):
            u = utts[i // G]
            kws = lists[i // G] if lists is not None else self.keywords.get(u)
            out.append(RewardInput(hyp_text=self.tokens.decode(ids), ref_text=self.data.text[u], hyp_tokens=ids,
                                   group_index=i // G, keywords=kws, meta={"utt": u}))
        return out

    def extra_loss(self, model: ASRModel, batch: dict, cache: dict):
        # Inside GRPOTask's update forward (so DDP sees this graph too); in train mode, as SFT trained it.
        w = self.cfg.policy.sft_weight
        if w <= 0:
            return None
        was = model.training
        model.train()
        try:
            out = model(batch["feats"], batch["feat_lens"], batch.get("prompt_ids"), batch["target_ids"],
                        batch["target_lens"], batch.get("prompt_lens"))
        finally:
            model.train(was)
        return w * out["loss"], {"sft_loss": out["loss"].detach()}

    # --- validation: dev greedy WER (the loss) and the greedy hypotheses' mean reward
    def valid(self, model: ASRModel) -> dict[str, float] | None:
        if self.valid_data is None:
            return None
        from audiorl.eval.wer import score

        n = self.cfg.data.valid_decode_utts
        utts = sorted(self.valid_data.utt_ids())
        utts = utts[:n] if n else utts
        device = next(model.parameters()).device
        hyps = decode_utts(model, self.valid_data, self.tokens, utts, device)
        refs = {u: self.valid_data.text[u] for u in utts}
        kws = {u: self.valid_keywords[u] for u in utts if u in self.valid_keywords}
        res = score(refs, hyps, keywords=kws or None)
        t = res.totals
        out = {"loss": t.wer, "wer": t.wer, "sub": t.pct("sub") / 100, "del": t.pct("del") / 100,
               "ins": t.pct("ins") / 100}
        if res.keyword_totals is not None:
            out["kw_recall"] = res.keyword_totals.recall
        b = self.valid_data.biasing
        samples = [RewardInput(hyp_text=hyps[u], ref_text=refs[u], hyp_tokens=self.tokens.encode(hyps[u]), group_index=i,
                               keywords=b.words(u) if b is not None else self.valid_keywords.get(u))
                   for i, u in enumerate(utts)]
        total, per = compute_rewards(self.rewards, samples)
        out["reward"] = float(total.mean())
        out.update({f"reward_{k}": float(v.mean()) for k, v in per.items()})
        return out


# ----------------------------------------------------------------------------------------------- sampling decoder
@torch.no_grad()
def sample_hypotheses(model: ASRModel, data: FeatsData, tokens: ASRTokens, utts: list[str], device,
                      num_samples: int, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                      tokens_per_second: float = DEFAULT_TOKENS_PER_SECOND, max_frames: int = 20000, seed: int = 0) -> dict[str, list[str]]:
    """``num_samples`` temperature-sampled transcripts per utterance (length-sorted batches); utt -> texts."""
    model.eval()
    gen = torch.Generator(device=device).manual_seed(seed)
    c = model.config
    order = sorted(utts, key=lambda u: data.frames[u])
    out: dict[str, list[str]] = {}
    i = 0
    while i < len(order):
        n = max(1, max_frames // max(1, data.frames[order[min(len(order) - 1, i + 1)]] * num_samples))
        chunk = order[i: i + n]
        i += len(chunk)
        b = data.collate(chunk)
        x, lens = model.encode(b["feats"].to(device), b["feat_lens"].to(device), b.get("prompt_ids"),
                               b.get("prompt_lens"))
        limit = token_budget(int(b["feat_lens"].max()), tokens_per_second)
        g = generate(model.llm, x, lens, limit, c.eos_id, temperature=temperature, top_k=top_k, top_p=top_p,
                     num_samples=num_samples, generator=gen, pad_id=c.pad_id)
        keep = (g.lengths - g.finished.long()).cpu()
        rows = [tokens.decode(r[:k].tolist()) for r, k in zip(g.tokens.cpu(), keep)]
        for j, u in enumerate(chunk):
            out[u] = rows[j * num_samples:(j + 1) * num_samples]
    model.llm.clear_caches()
    return out
