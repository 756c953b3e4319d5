"""A Hugging Face ``tokenizer.json`` behind the interface of the sentencepiece ``Tokenizer`` (data/tokenizer.py).

A stage that starts its LLM from a pretrained model (``model.init_llm DIR``) must feed it the ids of that model's own
tokenizer, so the text ids come from ``DIR/tokenizer.json`` instead of a sentencepiece model. Both classes answer the
same calls (``encode``, ``decode``, ``vocab_size``, ``id_to_piece``, ``piece_to_id``, ``pieces``, ``save``), so token
layouts (ASRTokens, TextTokens), decoding, scoring and rewards never ask which one they hold; ``load_tokenizer`` picks.

Conventions that match the sentencepiece wrapper:
* ``encode`` adds no special tokens (no BOS/EOS post-processing): text ids only; the task layouts add their own ids.
* ``decode`` drops the tokenizer's special tokens (e.g. ``<|endoftext|>``) and rejects ids outside [0, vocab_size).
* ``vocab_size`` = 1 + the largest id, added tokens included: every id the tokenizer can produce is below it.
The ``tokenizers`` library (installed with ``transformers``) reads the file; transformers itself is not needed.
"""

from __future__ import annotations

import os
from typing import Sequence

from audiorl.fileio import atomic_write_bytes

TOKENIZER_JSON = "tokenizer.json"


def tokenizer_json_path(path: str) -> str:
    """``path`` itself (a tokenizer.json) or ``path/tokenizer.json`` (a HF model directory); FileNotFoundError names
    what is missing and how to get it."""
    file = os.path.join(path, TOKENIZER_JSON) if os.path.isdir(path) else path
    if not os.path.isfile(file):
        raise FileNotFoundError(f"{file}: no such file; a Hugging Face tokenizer is a tokenizer.json (a model "
                                f"directory has one next to config.json; write it with "
                                f"transformers.AutoTokenizer.from_pretrained(name).save_pretrained(DIR))")
    return file


class HFTokenizer:
    """text <-> ids with a ``tokenizers.Tokenizer`` loaded from a tokenizer.json. Picklable (DataLoader workers)."""

    def __init__(self, path: str):
        self.model_path = tokenizer_json_path(path)
        with open(self.model_path, encoding="utf-8") as f:
            self._load(f.read())

    def _load(self, text: str) -> None:
        from tokenizers import Tokenizer as _Tok

        self._json = text
        try:
            self._tok = _Tok.from_str(text)
        except Exception as e:  # tokenizers raises its own Exception type
            raise ValueError(f"{self.model_path}: not a Hugging Face tokenizer.json ({e})") from None
        vocab = self._tok.get_vocab(with_added_tokens=True)
        self._size = 1 + max(vocab.values()) if vocab else 0

    def __getstate__(self):
        return {"model_path": self.model_path, "json": self._json}

    def __setstate__(self, state):
        self.model_path = state["model_path"]
        self._load(state["json"])

    def save(self, path: str) -> None:
        """Write the tokenizer.json to ``path``, atomically."""
        atomic_write_bytes(path, self._json.encode("utf-8"))

    @property
    def vocab_size(self) -> int:
        return self._size

    def __len__(self) -> int:
        return self._size

    def _id(self, token: str | None) -> int:
        i = self._tok.token_to_id(token) if token else None
        return -1 if i is None else int(i)

    @property
    def unk_id(self) -> int:
        """-1 when the model has no unknown token (byte-level BPE never needs one)."""
        return self._id(getattr(self._tok.model, "unk_token", None))

    @property
    def bos_id(self) -> int:
        return -1  # text ids carry no BOS/EOS here (see the module docstring); the task layouts add their own

    @property
    def eos_id(self) -> int:
        return -1

    @property
    def pad_id(self) -> int:
        return -1

    def encode(self, text: str) -> list[int]:
        return list(self._tok.encode(text, add_special_tokens=False).ids)

    def encode_as_pieces(self, text: str) -> list[str]:
        return list(self._tok.encode(text, add_special_tokens=False).tokens)

    def decode(self, ids: Sequence[int]) -> str:
        ids = [int(i) for i in ids]
        bad = [i for i in ids if not 0 <= i < self._size]
        if bad:
            raise ValueError(f"decode: id(s) {bad[:5]} outside the vocabulary [0, {self._size}); strip padding/special "
                             f"ids added outside the tokenizer first")
        return self._tok.decode(ids, skip_special_tokens=True)

    def id_to_piece(self, i: int) -> str:
        piece = self._tok.id_to_token(int(i)) if 0 <= int(i) < self._size else None
        if piece is None:
            raise ValueError(f"id_to_piece: id {i} is not in {self.model_path} (vocabulary [0, {self._size}))")
        return piece

    def piece_to_id(self, piece: str) -> int:
        """Id of ``piece``; unknown pieces give ``unk_id`` (as sentencepiece)."""
        i = self._tok.token_to_id(piece)
        return self.unk_id if i is None else int(i)

    def pieces(self) -> list[str]:
        """Every piece in id order ('' for an id the tokenizer leaves unassigned)."""
        return [self._tok.id_to_token(i) or "" for i in range(self._size)]
