"""A tiny random Hugging Face Qwen2 directory (config.json, model.safetensors, tokenizer.json), written with
transformers / tokenizers (nothing is downloaded): the stand-in for a pretrained LLM in the ``model.init_llm`` tests
(tests/unit/models/test_hf_io.py, tests/recipe/test_synth_en_asr_init_llm.py)."""

import torch

WORDS = "the cat sat on a mat and then it ran to the big red barn near old town".split()
PAD_ROWS = 3  # the pretrained embedding has rows no tokenizer id reaches (as Qwen2.5: 151665 ids, 151936 rows)


def write_hf_dir(d, tie: bool = True, seed: int = 0, words=WORDS):
    """A tiny random Qwen2ForCausalLM (save_pretrained, safetensors) + a WordLevel tokenizer.json of ``words`` in
    ``d``. Returns (the transformers model, the number of tokenizer ids)."""
    import transformers
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator([" ".join(words)] * 3, trainers.WordLevelTrainer(special_tokens=["[UNK]", "<|endoftext|>"]))
    d.mkdir(parents=True, exist_ok=True)
    tok.save(str(d / "tokenizer.json"))
    torch.manual_seed(seed)
    cfg = transformers.Qwen2Config(vocab_size=tok.get_vocab_size() + PAD_ROWS, hidden_size=32, intermediate_size=64,
                                   num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                   max_position_embeddings=512, tie_word_embeddings=tie, rope_theta=1e4)
    model = transformers.Qwen2ForCausalLM(cfg).eval()
    with torch.no_grad():  # HF init has unit norms and zero biases: make every tensor matter
        for name, p in model.named_parameters():
            p.copy_(torch.randn_like(p) * 0.3 + (1.0 if p.dim() == 1 and not name.endswith("bias") else 0.0))
    model.save_pretrained(d, safe_serialization=True)
    return model, tok.get_vocab_size()
