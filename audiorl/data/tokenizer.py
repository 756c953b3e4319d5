"""SentencePiece tokenizers (BPE, unigram, char): deterministic training and a small wrapper.

Training uses one thread, every input sentence (no sampling) and a fixed seed, so the same text
gives the same model byte for byte. Text is not normalised (``identity`` rule) so that
``decode(encode(s)) == s`` for text with single spaces; normalise transcripts before training.
``hard_vocab_limit=False`` by default: the vocabulary size is an upper bound, so tiny corpora (tests,
toy recipes) train instead of failing with "Vocabulary size too high".
Ids follow SentencePiece's defaults: ``<unk>`` 0, ``<s>`` 1, ``</s>`` 2, no padding piece.

``load_tokenizer(path)`` is what the stages call: a ``.model`` file gives this class, a Hugging Face model directory
or tokenizer.json gives ``audiorl.data.hf_tokenizer.HFTokenizer`` (same interface), used with ``model.init_llm``.
"""

from __future__ import annotations

import filecmp
import io
import os
from typing import Iterable, Literal, Sequence

import sentencepiece as spm

from audiorl.fileio import atomic_write_bytes
from audiorl.log import get_logger

logger = get_logger(__name__)

ModelType = Literal["bpe", "unigram", "char"]
MODEL_TYPES = ("bpe", "unigram", "char")


class Tokenizer:
    """A trained SentencePiece model: text <-> ids. Picklable (DataLoader workers)."""

    def __init__(self, model_path: str | None = None, *, model_proto: bytes | None = None):
        if (model_path is None) == (model_proto is None):
            raise ValueError("Tokenizer: give exactly one of model_path and model_proto")
        if model_path is not None:
            if not os.path.isfile(model_path):
                raise FileNotFoundError(f"{model_path}: no such tokenizer model; train one with "
                                        f"`python -m audiorl.bin.train_tokenizer` (it writes <out>.model)")
            with open(model_path, "rb") as f:
                model_proto = f.read()
        self.model_path = model_path
        self._load(model_proto)

    def _load(self, proto: bytes) -> None:
        self._proto = proto
        self._sp = spm.SentencePieceProcessor()
        try:
            self._sp.LoadFromSerializedProto(proto)
        except (RuntimeError, OSError) as e:
            raise ValueError(f"{self.model_path or 'model_proto'}: not a SentencePiece model ({e})") from None

    @classmethod
    def load(cls, path: str) -> "Tokenizer":
        return cls(path)

    def save(self, path: str) -> None:
        """Write the model (the ``.model`` file) to ``path``, atomically."""
        atomic_write_bytes(path, self._proto)

    def __getstate__(self):
        return {"model_path": self.model_path, "proto": self._proto}

    def __setstate__(self, state):
        self.model_path = state["model_path"]
        self._load(state["proto"])

    @property
    def vocab_size(self) -> int:
        return int(self._sp.get_piece_size())

    def __len__(self) -> int:
        return self.vocab_size

    @property
    def unk_id(self) -> int:
        return int(self._sp.unk_id())

    @property
    def bos_id(self) -> int:
        return int(self._sp.bos_id())

    @property
    def eos_id(self) -> int:
        return int(self._sp.eos_id())

    @property
    def pad_id(self) -> int:
        """-1 unless the model was trained with a pad piece."""
        return int(self._sp.pad_id())

    def encode(self, text: str) -> list[int]:
        return list(self._sp.encode(text, out_type=int))

    def encode_as_pieces(self, text: str) -> list[str]:
        return list(self._sp.encode(text, out_type=str))

    def decode(self, ids: Sequence[int]) -> str:
        ids = [int(i) for i in ids]
        bad = [i for i in ids if not 0 <= i < self.vocab_size]
        if bad:
            raise ValueError(f"decode: id(s) {bad[:5]} outside the vocabulary [0, {self.vocab_size}); "
                             f"strip padding/special ids added outside the tokenizer first")
        return self._sp.decode(ids)

    def id_to_piece(self, i: int) -> str:
        if not 0 <= int(i) < self.vocab_size:
            raise ValueError(f"id_to_piece: id {i} outside the vocabulary [0, {self.vocab_size})")
        return self._sp.id_to_piece(int(i))

    def piece_to_id(self, piece: str) -> int:
        """Id of ``piece``; unknown pieces give ``unk_id`` (SentencePiece's behaviour)."""
        return int(self._sp.piece_to_id(piece))

    def pieces(self) -> list[str]:
        """Every piece, in id order (a token list)."""
        return [self._sp.id_to_piece(i) for i in range(self.vocab_size)]


def load_tokenizer(path: str) -> "Tokenizer":
    """The text tokenizer at ``path``: a HF model directory or a ``*.json`` -> ``HFTokenizer`` (its tokenizer.json),
    anything else -> a SentencePiece ``Tokenizer``. Both have the same interface (encode, decode, vocab_size, ...)."""
    if os.path.isdir(path) or path.endswith(".json"):
        from audiorl.data.hf_tokenizer import HFTokenizer

        return HFTokenizer(path)  # type: ignore[return-value]  # duck-typed: the same interface
    return Tokenizer(path)


def same_tokenizer(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` are the same text units: one existing path, or two files with identical bytes (a
    copied ``bpe.model``). Output heads over the same units are interchangeable (a CTC head can be copied)."""
    if os.path.abspath(a) == os.path.abspath(b):
        return os.path.exists(a)
    return os.path.isfile(a) and os.path.isfile(b) and filecmp.cmp(a, b, shallow=False)


def _read_lines(text: str | os.PathLike | Iterable[str]) -> list[str]:
    if isinstance(text, (str, os.PathLike)):
        with open(text, encoding="utf-8") as f:
            lines = f.read().splitlines()
    else:
        lines = list(text)
    return [s.strip() for s in lines if s.strip()]


def train_tokenizer(text: str | os.PathLike | Iterable[str], model_prefix: str, vocab_size: int,
                    model_type: ModelType = "bpe", *, user_defined_symbols: Sequence[str] = (),
                    character_coverage: float = 1.0, seed: int = 0, hard_vocab_limit: bool = False) -> Tokenizer:
    """Train a SentencePiece model on raw text lines; write ``<model_prefix>.model`` and ``.vocab``.

    ``text`` is a file path (one sentence per line, no ids: see ``audiorl.bin.train_tokenizer`` for
    Kaldi ``text`` files) or an iterable of lines. ``user_defined_symbols`` become single pieces
    that are never split (e.g. ``<sos/eos>``, ``<lang:en>``). With ``hard_vocab_limit=False`` the
    model may have fewer than ``vocab_size`` pieces on a small corpus (a warning says so).
    """
    if model_type not in MODEL_TYPES:
        raise ValueError(f"model_type must be one of {MODEL_TYPES}, got '{model_type}'")
    if vocab_size < 4:
        raise ValueError(f"vocab_size must be at least 4 (unk, bos, eos and one piece), got {vocab_size}")
    lines = _read_lines(text)
    if not lines:
        raise ValueError(f"train_tokenizer: no non-empty lines in {text if isinstance(text, str) else 'the input'}")
    spm.set_random_generator_seed(seed)
    model = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(lines), model_writer=model, vocab_size=vocab_size, model_type=model_type,
            user_defined_symbols=list(user_defined_symbols), character_coverage=character_coverage,
            hard_vocab_limit=hard_vocab_limit, normalization_rule_name="identity",
            num_threads=1, input_sentence_size=0, shuffle_input_sentence=False, minloglevel=2,
        )
    except RuntimeError as e:
        raise ValueError(f"SentencePiece training failed ({e}); with a small corpus, lower vocab_size or "
                         f"keep hard_vocab_limit=False") from None
    tok = Tokenizer(model_proto=model.getvalue())
    atomic_write_bytes(model_prefix + ".model", model.getvalue())
    vocab = "".join(f"{tok._sp.id_to_piece(i)}\t{tok._sp.get_score(i):g}\n" for i in range(tok.vocab_size))
    atomic_write_bytes(model_prefix + ".vocab", vocab.encode("utf-8"))
    tok.model_path = model_prefix + ".model"
    if tok.vocab_size < vocab_size:
        logger.warning("%s: the corpus (%d lines) supports only %d of the %d pieces asked for", tok.model_path,
                       len(lines), tok.vocab_size, vocab_size)
    logger.info("trained %s tokenizer with %d pieces: %s", model_type, tok.vocab_size, tok.model_path)
    return tok
