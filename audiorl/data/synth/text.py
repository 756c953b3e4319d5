"""A seeded English sentence generator for the synthetic corpus (egs/synth_en).

Sentences come from a template grammar (statements, questions, requests, numbers, times, dates,
prices, compound sentences) over a ~2k-word vocabulary. Output is what ASR is scored against:
lowercase ``a-z`` words separated by single spaces, no punctuation, numbers spelled out.

KEYWORDS are rare entities (person names, places, brands; some common, some made up but
pronounceable by espeak-ng/flite/festival). They fill a minority of sentences (about a quarter),
each sentence lists the keywords it contains, and they are drawn with Zipf-like weights so that
many of them are rare. Every keyword is one word, so a ``keywords`` table value is a plain
whitespace-separated list.

Determinism: ``generate_sets(sizes, seed)`` depends only on its arguments. Each set draws from its
own RNG (seeded by ``seed`` and the set name) and sets are filled in a fixed priority order (test
sets first, train last) with every sentence unique across the whole corpus, so the evaluation sets
do not change when only the training size changes, and no evaluation sentence is a train sentence.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

from audiorl.data.synth.lexicon import (  # word lists, numbers, morphology; KEYWORDS and number_words are also API here
    ADJ, ADV, BRAND_PRODUCTS, CURRENCIES, DAYS, INTRANSITIVE, KEYWORDS, KEYWORD_BRANDS, KEYWORD_PERSONS,
    KEYWORD_PLACES, MASS, MONTHS, NOUN_FORMS, OBJECT_PRONOUNS, POSSESSIVES, PREPOSITIONS_PLACE, RELATIVES, ROLES,
    SUBJECT_PRONOUNS, TEMPLATE_WORDS, TRANSITIVE, UNITS, number_words, ordinal_words, year_words,
)

MIN_WORDS = 3
MAX_WORDS = 20

# --------------------------------------------------------------------------------------------------
# Grammar
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Sentence:
    """One utterance's text: its words and the keywords among them (in order of appearance)."""

    words: tuple[str, ...]
    keywords: tuple[str, ...]

    @property
    def text(self) -> str:
        return " ".join(self.words)


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _zipf_weights(n: int, s: float = 0.9) -> list[float]:
    return [1.0 / (i + 1) ** s for i in range(n)]


class _Builder:
    """Fills templates for one sentence; collects the keywords used."""

    def __init__(self, rng: random.Random, keyword_prob: float):
        self.rng = rng
        self.keyword_prob = keyword_prob
        self.keywords: list[str] = []

    # ---- keywords (rare; Zipf-weighted so the tail is very rare) ----
    def _kw(self, pool: Sequence[str], weights: Sequence[float]) -> str:
        w = self.rng.choices(pool, weights=weights)[0]
        self.keywords.append(w)
        return w

    def use_kw(self) -> bool:
        return self.rng.random() < self.keyword_prob

    def person_kw(self) -> list[str]:
        return [self._kw(_PERSONS_RANKED, _PERSON_W)]

    def place_kw(self) -> list[str]:
        return [self._kw(_PLACES_RANKED, _PLACE_W)]

    def brand_kw(self) -> list[str]:
        return [self._kw(_BRANDS_RANKED, _BRAND_W)]

    # ---- simple pieces ----
    def pick(self, seq: Sequence[str]) -> str:
        return self.rng.choice(seq)

    def maybe(self, p: float, f: Callable[[], list[str]]) -> list[str]:
        return f() if self.rng.random() < p else []

    def noun(self) -> str:
        return self.rng.choice(NOUN_FORMS)[0]

    def nouns(self) -> str:
        return self.rng.choice(NOUN_FORMS)[1]

    def adj(self) -> list[str]:
        return [self.pick(ADJ)]

    def det_np(self, plural: bool = False) -> list[str]:
        """A noun phrase: determiner, optional adjective(s), noun."""
        r = self.rng
        adjs = self.maybe(0.45, self.adj)
        if adjs and r.random() < 0.15:
            adjs = adjs + self.adj()
        if plural:
            det = r.choice(["the", "some", "these", "those", "many", "two", "three", "a few"] + POSSESSIVES)
            return det.split() + adjs + [self.nouns()]
        det = r.choice(["the", "the", "a", "this", "that", "every"] + POSSESSIVES)
        if det == "a":
            first = (adjs or [self.noun()])[0]
            det = _article(first)
            if not adjs:
                return [det, first]
        return [det] + adjs + [self.noun()]

    def np(self) -> list[str]:
        r = self.rng.random()
        if r < 0.06:
            return [self.pick(["some", "more", "no", "the"]), self.pick(MASS)]
        if r < 0.15:
            return [self.pick(list(OBJECT_PRONOUNS.values()))]
        if r < 0.25 and self.use_kw():
            return self.person_kw()
        return self.det_np(plural=self.rng.random() < 0.3)

    def subject(self) -> tuple[list[str], bool]:
        """(words, third_person_singular)."""
        r = self.rng.random()
        if r < 0.3:
            p = self.pick(SUBJECT_PRONOUNS)
            return [p], p in ("he", "she")
        if r < 0.45:
            return [self.pick(POSSESSIVES), self.pick(RELATIVES)], True
        if self.use_kw():
            return self.person_kw(), True
        plural = self.rng.random() < 0.3
        np = self.det_np(plural=plural)
        return np, not plural

    def who(self) -> list[str]:
        """A person: keyword name (sometimes) or a role."""
        if self.use_kw():
            return self.person_kw()
        return ["the", self.pick(ROLES)] if self.rng.random() < 0.6 else [self.pick(POSSESSIVES), self.pick(RELATIVES)]

    def where(self) -> list[str]:
        """A place phrase: 'in paris' (keyword) or 'near the old bridge'."""
        if self.use_kw():
            return [self.pick(["in", "to", "from", "near"])] + self.place_kw()
        return [self.pick(PREPOSITIONS_PLACE)] + self.det_np()

    def product(self) -> list[str]:
        if self.use_kw():
            brand = self.brand_kw()
            return [_article(brand[0])] + brand + [self.pick(BRAND_PRODUCTS)]
        return self.det_np()

    def when(self) -> list[str]:
        r = self.rng.random()
        if r < 0.25:
            return ["on", self.pick(DAYS)] + self.maybe(0.3, lambda: [self.pick(["morning", "afternoon", "evening", "night"])])
        if r < 0.45:
            return ["at"] + self.clock()
        if r < 0.6:
            return ["on", "the"] + ordinal_words(self.rng.randint(1, 31)) + ["of", self.pick(MONTHS)]
        if r < 0.7:
            return ["in"] + year_words(self.rng.randint(1900, 2029))
        if r < 0.8:
            return [self.pick(["last", "next", "every"]), self.pick(["week", "month", "year", "summer", "winter", "spring"])]
        return [self.pick(["yesterday", "today", "tomorrow", "tonight", "later", "soon", "early", "recently"])]

    def clock(self) -> list[str]:
        h = self.rng.randint(1, 12)
        m = self.rng.choice([0, 0, 5, 10, 15, 20, 25, 30, 30, 40, 45, 50, 55])
        if m == 0:
            return number_words(h) + self.maybe(0.5, lambda: ["o", "clock"])
        if m == 15 and self.rng.random() < 0.5:
            return ["quarter", "past"] + number_words(h)
        if m == 30 and self.rng.random() < 0.5:
            return ["half", "past"] + number_words(h)
        return number_words(h) + number_words(m) if m >= 10 else number_words(h) + ["oh"] + number_words(m)

    def count_np(self) -> list[str]:
        n = self.rng.choice([2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 15, 20, 24, 30, 40, 50, 99, 100, 150, 365, 1000, 2500])
        if self.rng.random() < 0.3:
            n = self.rng.randint(2, 999)
        return number_words(n) + self.maybe(0.3, self.adj) + [self.nouns()]

    def adv(self) -> list[str]:
        return [self.pick(ADV)]


_PERSONS_RANKED = list(KEYWORD_PERSONS)
_PLACES_RANKED = list(KEYWORD_PLACES)
_BRANDS_RANKED = list(KEYWORD_BRANDS)
_PERSON_W = _zipf_weights(len(_PERSONS_RANKED))
_PLACE_W = _zipf_weights(len(_PLACES_RANKED))
_BRAND_W = _zipf_weights(len(_BRANDS_RANKED))


def _vp_past(b: _Builder) -> list[str]:
    r = b.rng.random()
    if r < 0.6:
        v = b.rng.choice(TRANSITIVE)
        return [v.past] + b.np() + b.maybe(0.3, b.where) + b.maybe(0.2, b.when)
    v = b.rng.choice(INTRANSITIVE)
    return [v.past] + b.maybe(0.35, b.adv) + b.maybe(0.4, b.where) + b.maybe(0.2, b.when)


def _vp_present(b: _Builder, third: bool) -> list[str]:
    if b.rng.random() < 0.6:
        v = b.rng.choice(TRANSITIVE)
        return [v.third if third else v.base] + b.np() + b.maybe(0.3, b.where)
    v = b.rng.choice(INTRANSITIVE)
    return [v.third if third else v.base] + b.maybe(0.5, b.adv) + b.maybe(0.3, b.where)


def _clause(b: _Builder) -> list[str]:
    """An independent clause in a random tense/aspect."""
    subj, third = b.subject()
    r = b.rng.random()
    if r < 0.4:
        return subj + b.maybe(0.15, b.adv) + _vp_past(b)
    if r < 0.6:
        return subj + _vp_present(b, third)
    if r < 0.75:
        be = "is" if third else ("am" if subj == ["i"] else "are")
        if b.rng.random() < 0.5:
            v = b.rng.choice(TRANSITIVE)
            return subj + [be, v.ing] + b.np() + b.maybe(0.3, b.where)
        v = b.rng.choice(INTRANSITIVE)
        return subj + [be, v.ing] + b.maybe(0.5, b.where)
    if r < 0.87:
        modal = b.pick(["will", "can", "should", "might", "must", "could", "would"])
        v = b.rng.choice(TRANSITIVE)
        return subj + [modal] + b.maybe(0.15, lambda: ["not"]) + [v.base] + b.np() + b.maybe(0.3, b.when)
    have = "has" if third else "have"
    v = b.rng.choice(TRANSITIVE)
    return subj + [have] + b.maybe(0.3, lambda: [b.pick(["already", "never", "just", "finally"])]) + [v.participle] + b.np()


def _t_compound(b: _Builder) -> list[str]:
    conj = b.pick(["and", "but", "because", "so", "while", "although", "after", "before", "when", "until"])
    return _clause(b) + [conj] + _clause(b)


def _t_question(b: _Builder) -> list[str]:
    r = b.rng.random()
    v = b.rng.choice(TRANSITIVE)
    if r < 0.3:
        return [b.pick(["did", "will", "can", "should"])] + b.subject()[0] + [v.base] + b.np() + b.maybe(0.4, b.when)
    if r < 0.55:
        wh = b.pick(["where", "why", "when", "how"])
        aux = b.pick(["did", "do", "will", "can", "would"])
        return [wh, aux] + b.subject()[0] + [v.base] + b.np()
    if r < 0.75:
        return ["who", v.past] + b.np() + b.maybe(0.5, b.where)
    if r < 0.9:
        return ["what", "time", "does", "the", b.pick(["train", "bus", "ferry", "plane", "shop", "museum", "market", "library"]),
                b.pick(["leave", "open", "close", "arrive"])] + b.maybe(0.4, lambda: ["on", b.pick(DAYS)])
    return ["have", "you", "ever", "been"] + b.where()


def _t_request(b: _Builder) -> list[str]:
    v = b.rng.choice(TRANSITIVE)
    pre = b.pick([[], ["please"], ["could", "you"], ["can", "you"], ["do", "not"], ["let", "us"], ["remember", "to"]])
    return pre + [v.base] + b.np() + b.maybe(0.35, b.where) + b.maybe(0.3, b.when)


def _t_numbers(b: _Builder) -> list[str]:
    r = b.rng.random()
    if r < 0.2:
        price = b.rng.randint(2, 999)
        return b.product() + [b.pick(["costs", "cost", "was", "is"])] + number_words(price) + [b.pick(CURRENCIES)]
    if r < 0.35:
        return b.subject()[0] + [b.pick(["counted", "saw", "found", "bought", "needed", "painted", "sold"])] + b.count_np() + b.maybe(0.4, b.where)
    if r < 0.5:
        return ["the", b.pick(["train", "bus", "meeting", "concert", "class", "match", "party", "lesson", "film"]),
                b.pick(["starts", "ends", "begins", "leaves", "started", "ended"]), "at"] + b.clock() + b.maybe(0.4, lambda: ["on", b.pick(DAYS)])
    if r < 0.62:
        return b.who() + [b.pick(["was", "is"]), "born", "on", "the"] + ordinal_words(b.rng.randint(1, 31)) + ["of", b.pick(MONTHS)] + \
            b.maybe(0.6, lambda: year_words(b.rng.randint(1920, 2024)))
    if r < 0.75:
        n = b.rng.randint(2, 500)
        return b.subject()[0] + [b.pick(["walked", "ran", "drove", "travelled", "waited", "worked", "studied", "carried"])] + \
            number_words(n) + [b.pick(UNITS)] + b.maybe(0.4, b.where)
    if r < 0.87:
        return ["room", "number"] + number_words(b.rng.randint(1, 999)) + ["is", "on", "the"] + \
            ordinal_words(b.rng.randint(1, 20)) + ["floor"]
    return ["it", "happened", "in"] + year_words(b.rng.randint(1800, 2029)) + b.maybe(0.6, b.where)


def _t_description(b: _Builder) -> list[str]:
    r = b.rng.random()
    if r < 0.35:
        np = b.det_np()
        return np + [b.pick(["was", "is", "looked", "seemed", "felt"])] + b.maybe(0.3, lambda: [b.pick(["very", "quite", "rather", "too", "so"])]) + b.adj()
    if r < 0.6:
        adj = b.adj()
        return ["there", b.pick(["is", "was"]), b.pick([_article(adj[0]), "one"])] + adj + [b.noun()] + b.where()
    if r < 0.8:
        return ["the", "weather", b.pick(["in", "near"])] + (b.place_kw() if b.use_kw() else ["the", b.noun()]) + \
            [b.pick(["was", "is"])] + [b.pick(["cold", "warm", "rainy", "sunny", "windy", "stormy", "lovely", "terrible"])] + b.maybe(0.4, b.when)
    return b.who() + [b.pick(["works", "lives", "stays", "studies"])] + b.where()


def _t_short(b: _Builder) -> list[str]:
    r = b.rng.random()
    if r < 0.3:
        v = b.rng.choice(INTRANSITIVE)
        return b.subject()[0] + [v.past] + b.adv()
    if r < 0.5:
        return [b.pick(["thank", "call", "ask", "tell", "help", "follow", "invite"])] + b.who()
    if r < 0.7:
        return [b.pick(["open", "close", "clean", "check", "find", "bring", "wash"]), "the"] + [b.noun()]
    if r < 0.85:
        return ["see", "you"] + [b.pick(["tomorrow", "soon", "later", "tonight"] + DAYS)]
    return [b.pick(["good", "happy", "quiet", "busy", "long", "lovely"]), b.pick(["morning", "evening", "day", "night", "week", "summer", "birthday"])] + b.maybe(0.5, b.who)


def _t_reported(b: _Builder) -> list[str]:
    return b.who() + [b.pick(["said", "thinks", "believes", "told", "wrote", "explained", "promised", "knew"])] + \
        (["us"] if b.rng.random() < 0.2 else []) + ["that"] + _clause(b)


def _t_long(b: _Builder) -> list[str]:
    """A long sentence: clause, subordinate clause and an extra phrase (often 14-20 words)."""
    words = _clause(b) + [b.pick(["because", "although", "while", "and", "but"])] + _clause(b)
    if b.rng.random() < 0.6:
        words += b.when() if b.rng.random() < 0.5 else b.where()
    if b.rng.random() < 0.4:
        words += ["and", "then"] + _vp_past(b)
    return words


# (weight, template). Weights give ~10 words per sentence on average, with a tail up to 20.
TEMPLATES: list[tuple[float, Callable[[_Builder], list[str]]]] = [
    (3.5, _clause),
    (2.5, _t_compound),
    (1.5, _t_question),
    (1.2, _t_request),
    (1.5, _t_numbers),
    (1.2, _t_description),
    (0.8, _t_short),
    (0.8, _t_reported),
    (1.0, _t_long),
]
_TEMPLATE_W = [w for w, _ in TEMPLATES]
_TEMPLATE_F = [f for _, f in TEMPLATES]

_WORD_RE = re.compile(r"^[a-z]+$")


class SentenceGenerator:
    """Draws sentences of MIN_WORDS..MAX_WORDS words from the template grammar.

    ``keyword_prob`` is the chance that each keyword-capable slot takes a keyword; 0.25 gives
    about a quarter of the sentences at least one keyword.
    """

    def __init__(self, seed: int | str, keyword_prob: float = 0.25):
        self.rng = random.Random(seed)
        self.keyword_prob = keyword_prob

    def sentence(self) -> Sentence:
        while True:
            b = _Builder(self.rng, self.keyword_prob)
            f = self.rng.choices(_TEMPLATE_F, weights=_TEMPLATE_W)[0]
            words = [w for piece in f(b) for w in piece.split()]
            if MIN_WORDS <= len(words) <= MAX_WORDS:
                assert all(_WORD_RE.match(w) for w in words), f"non a-z word in {words}"
                return Sentence(tuple(words), tuple(b.keywords))


# Sets in the order they are filled: evaluation sets first, so they do not depend on train size.
SET_PRIORITY = ("test", "test_unseen_spk", "dev", "rl_pool", "train")


def generate_sets(sizes: Mapping[str, int], seed: int, keyword_prob: float = 0.25,
                  reserve: Mapping[str, int] | None = None) -> dict[str, list[Sentence]]:
    """Sentences for each named set; unique across all sets, reproducible from ``seed``.

    Sets named in SET_PRIORITY are filled in that order, any others after them in sorted order. Each set's
    sentences come from its own stream (seeded by the set's name), skipping those of the sets filled before it, so
    a set is a prefix of its stream: asking for more keeps the first ones. ``reserve`` {set: N}: the first N
    sentences of that set's stream are kept out of every set filled after it whether or not the set is built (or
    asks for fewer), so optional sets can be added in any order and never share a sentence.
    """
    reserve = dict(reserve or {})
    names = set(sizes) | set(reserve)
    order = [s for s in SET_PRIORITY if s in names] + sorted(s for s in names if s not in SET_PRIORITY)
    seen: set[tuple[str, ...]] = set()
    out: dict[str, list[Sentence]] = {}
    for i, name in enumerate(order):
        n = sizes.get(name, 0)
        if n < 0 or reserve.get(name, 0) < 0:
            raise ValueError(f"generate_sets: size of '{name}' must be >= 0, got {n} (reserve {reserve.get(name)})")
        gen = SentenceGenerator(f"{seed}:{name}", keyword_prob=keyword_prob)
        sents: list[Sentence] = []
        tries = 0
        if any(x in sizes for x in order[i + 1:]):  # the reservation matters only to sets filled later
            n = max(n, reserve.get(name, 0))
        while len(sents) < n:
            s = gen.sentence()
            tries += 1
            if s.words in seen:
                if tries > 50 * n + 1000:
                    raise RuntimeError(f"generate_sets: could not find {n} unique sentences for '{name}'")
                continue
            seen.add(s.words)
            sents.append(s)
        out[name] = sents[:sizes.get(name, 0)]
    return {name: out[name] for name in sizes}


def vocabulary() -> set[str]:
    """Every word the generator can produce (a superset: includes all listed forms)."""
    vocab: set[str] = set()
    for sing, plur in NOUN_FORMS:
        vocab.update((sing, plur))
    for v in TRANSITIVE + INTRANSITIVE:
        vocab.update((v.base, v.third, v.past, v.participle, v.ing))
    vocab.update(ADJ, ADV, MASS, KEYWORDS, DAYS, MONTHS, ROLES, RELATIVES, UNITS, CURRENCIES,
                 BRAND_PRODUCTS, TEMPLATE_WORDS, SUBJECT_PRONOUNS, OBJECT_PRONOUNS.values(), POSSESSIVES, PREPOSITIONS_PLACE)
    for n in list(range(0, 1000)) + [1000, 2500]:
        vocab.update(number_words(n))
    for n in range(1, 32):
        vocab.update(ordinal_words(n))
    for y in range(1800, 2030):
        vocab.update(year_words(y))
    return vocab
