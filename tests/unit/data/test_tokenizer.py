"""audiorl.data.tokenizer and audiorl.bin.train_tokenizer."""

import pickle

import pytest

from audiorl.bin import train_tokenizer as bin_train
from audiorl.data.tokenizer import Tokenizer, same_tokenizer, train_tokenizer

CORPUS = [
    "the quick brown fox jumps over the lazy dog",
    "hello world this is a tiny corpus",
    "seven of clubs and four of hearts",
    "he might even have been made amiable himself",
    "the dog and the fox are friends",
] * 3


@pytest.mark.parametrize("model_type", ["bpe", "unigram", "char"])
def test_train_encode_decode(tmp_path, model_type):
    tok = train_tokenizer(CORPUS, str(tmp_path / "m"), 60, model_type)
    assert (tmp_path / "m.model").is_file() and (tmp_path / "m.vocab").is_file()
    assert 4 <= tok.vocab_size <= 60 and len(tok) == tok.vocab_size
    assert len((tmp_path / "m.vocab").read_text().splitlines()) == tok.vocab_size
    for s in CORPUS[:5] + ["a new sentence with the fox"]:
        ids = tok.encode(s)
        assert all(isinstance(i, int) and 0 <= i < tok.vocab_size for i in ids)
        assert tok.decode(ids) == s
    assert (tok.unk_id, tok.bos_id, tok.eos_id, tok.pad_id) == (0, 1, 2, -1)
    for i in range(tok.vocab_size):
        assert tok.piece_to_id(tok.id_to_piece(i)) == i
    if model_type == "char":
        assert all(len(p.lstrip("\u2581")) <= 1 for p in tok.pieces()[3:])


def test_deterministic(tmp_path):
    for mt in ("bpe", "unigram"):
        train_tokenizer(CORPUS, str(tmp_path / f"a_{mt}"), 50, mt, seed=3)
        train_tokenizer(CORPUS, str(tmp_path / f"b_{mt}"), 50, mt, seed=3)
        assert (tmp_path / f"a_{mt}.model").read_bytes() == (tmp_path / f"b_{mt}.model").read_bytes()


def test_small_corpus_soft_limit_and_user_symbols(tmp_path):
    tok = train_tokenizer(["ab ab", "ba"], str(tmp_path / "m"), 400, "bpe", user_defined_symbols=["<sos/eos>", "<lang:en>"])
    assert tok.vocab_size < 400  # soft limit: a tiny corpus does not fail
    sid = tok.piece_to_id("<sos/eos>")
    assert sid not in (tok.unk_id,) and tok.encode("ab <sos/eos>")[-1] == sid
    assert tok.piece_to_id("never-seen-piece") == tok.unk_id


def test_file_input_save_load_pickle(tmp_path):
    (tmp_path / "corpus.txt").write_text("\n".join(CORPUS) + "\n\n")
    tok = train_tokenizer(str(tmp_path / "corpus.txt"), str(tmp_path / "m"), 40, "unigram")
    tok.save(str(tmp_path / "copy" / "x.model"))
    t2 = Tokenizer.load(str(tmp_path / "copy" / "x.model"))
    t3 = pickle.loads(pickle.dumps(tok))
    s = "the lazy fox"
    assert tok.encode(s) == t2.encode(s) == t3.encode(s) and t3.vocab_size == tok.vocab_size


def test_errors(tmp_path):
    tok = train_tokenizer(CORPUS, str(tmp_path / "m"), 40, "bpe")
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tok.decode([1, tok.vocab_size])
    with pytest.raises(ValueError, match="model_type must be one of"):
        train_tokenizer(CORPUS, str(tmp_path / "x"), 40, "wordpiece")
    with pytest.raises(ValueError, match="no non-empty lines"):
        train_tokenizer(["", "  "], str(tmp_path / "x"), 40)
    with pytest.raises(FileNotFoundError, match="train_tokenizer"):
        Tokenizer(str(tmp_path / "missing.model"))
    (tmp_path / "bad.model").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="not a SentencePiece model"):
        Tokenizer(str(tmp_path / "bad.model"))


def test_bin_reads_transcripts_not_ids(tmp_path):
    # Utterance ids use letters (Q, X, Z) that never occur in the transcripts.
    text = tmp_path / "text"
    text.write_text("".join(f"QXZ-{i:03d} {s}\n" for i, s in enumerate(CORPUS)) + "QXZ-999\n")
    out = tmp_path / "token_list" / "bpe40" / "bpe"
    rc = bin_train.main(["--text", str(text), "--model_type", "char", "--vocab_size", "400", "--out", str(out),
                         "--user_defined_symbols", "<sos/eos>"])
    assert rc == 0
    tok = Tokenizer.load(str(out) + ".model")
    pieces = "".join(tok.pieces())
    assert not set("QXZ0123456789") & set(pieces) and "<sos/eos>" in tok.pieces()


def test_bin_error_names_file_and_line(tmp_path, capsys):
    text = tmp_path / "text"
    text.write_text("u1 hello\nu1 again\n")
    rc = bin_train.main(["--text", str(text), "--out", str(tmp_path / "m")])
    assert rc == 1 and f"{text}:2: duplicate key 'u1'" in capsys.readouterr().err


def test_same_tokenizer(tmp_path):
    """Same units = one existing path or byte-identical files (a copied bpe.model); a retrained model with another
    vocabulary, or a missing file, is not (its CTC head could not be copied)."""
    train_tokenizer(CORPUS, str(tmp_path / "a"), 40, "bpe")
    train_tokenizer(CORPUS, str(tmp_path / "b"), 50, "bpe")
    a, b = str(tmp_path / "a.model"), str(tmp_path / "b.model")
    (tmp_path / "copy.model").write_bytes((tmp_path / "a.model").read_bytes())
    assert same_tokenizer(a, a) and same_tokenizer(a, str(tmp_path / "." / "a.model"))
    assert same_tokenizer(a, str(tmp_path / "copy.model"))
    assert not same_tokenizer(a, b)
    assert not same_tokenizer(str(tmp_path / "missing.model"), str(tmp_path / "missing.model"))
    assert not same_tokenizer(a, str(tmp_path / "missing.model"))
