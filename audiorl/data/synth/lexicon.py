"""The synthetic corpus's lexicon: word lists, keywords, spelled-out numbers and English morphology.

audiorl.data.synth.text builds sentences from these. Changing a list changes every generated corpus (its sets are
drawn from seeded streams over these words), so keep edits deliberate; the unit tests check that every generated
word is in text.vocabulary().
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# --------------------------------------------------------------------------------------------------
# Word lists
# --------------------------------------------------------------------------------------------------

# Nouns: "singular" or "singular:plural" for irregular plurals. Regular plurals follow _plural().
NOUNS = """
apple artist answer apartment baby bag bakery ball banana band bank basket bath beach bear bed bell
bench bicycle bird birthday blanket boat body book bottle box boy bread bridge brother bucket
building bus:buses butter button cabin cake camera candle captain car card carpet castle cat
chair cheese chicken child:children church city classroom clock cloud coat coffee computer cook
corner cottage country cousin cow cup curtain customer dancer daughter desk dinner doctor dog door
dragon drawer dream dress driver drum duck egg elephant engine engineer evening factory family farm
farmer father feather fence field finger fire fish:fish flag floor flower forest fork fox:foxes
friend frog garden gate gift girl glass:glasses glove goat guitar hammer hand hat hill horse hospital
hotel house island jacket jar journey kettle key king kitchen kite knife:knives ladder lake lamp
lawyer leaf:leaves lemon letter library lion list lunch machine manager map market meadow meeting
message minute mirror monkey moon morning mother mountain mouse:mice museum neighbour newspaper
nurse ocean office orange painter painting pan paper parent park party passenger pencil piano
picture pie pillow pilot plane plant plate player pocket poem police:police pond potato:potatoes
present prince princess problem professor pupil puppy queen question rabbit radio river road robot
rock roof room rope sailor salad sandwich school scientist sea:seas season secret shelf:shelves
ship shirt shoe shop singer sister sky:skies snake soldier song soup spoon square stage star station
stone storm story:stories street student sugar suitcase summer sun supper table tailor teacher
teapot telephone tent ticket tiger toast tomato:tomatoes tooth:teeth tower town toy tractor train
tree truck tunnel uncle umbrella valley van village violin visitor wall wallet watch:watches water
waiter window winter wolf:wolves woman:women man:men worker writer yard zebra album anchor arrow
badge barrel basin beard blossom bonnet bracelet branch:branches brush:brushes cabinet canal
canyon carriage cellar chimney cliff compass crown diamond envelope feast ferry fountain garage
helmet hut jungle lantern lighthouse meal medal motor needle orchard oven palace parcel pepper
pigeon planet pyramid quilt rocket saddle scarf seed shovel sink sofa spider stamp statue stove
sweater swing temple theatre thread tray trumpet tulip vase wagon whistle workshop
"""

# Uncountable or mass nouns used after "some", "more", "no" etc.
MASS_NOUNS = """
advice bread butter cheese coffee flour furniture homework honey information juice luggage milk
money music news paint rain rice salt sand smoke snow soup sugar tea traffic water weather wood
"""

ADJECTIVES = """
angry big bitter black blue bored brave bright broken brown busy calm careful cheap clean clever
cold colourful cosy crowded curious dark deep delicious dirty dry dusty early easy empty enormous
expensive famous fancy fast friendly frozen full funny gentle giant golden good green grey happy
hard heavy helpful hidden high hot huge hungry icy important kind large late lazy light little
lonely long loud lovely lucky modern narrow nervous new nice noisy old orange painted pale perfect
pink plain polite poor pretty proud purple quick quiet rainy rare red rich round rusty sad safe
salty sharp shiny short silent silly simple sleepy slow small smooth soft sour spicy square steep
strange strong sunny sweet tall tidy tiny tired warm wet white whole wild windy wise wooden yellow
young ancient awkward brilliant cheerful clumsy crisp damp elegant fragile fresh gloomy graceful
hollow humble mighty muddy narrow neat odd patient peaceful precious puzzled rapid rough shallow
shy sticky stormy sudden thick thin tough tricky useful velvet vivid weary wide
"""

ADVERBS = """
again almost already always badly bravely briefly carefully certainly clearly early easily finally
gently gladly happily honestly late loudly never nearly often patiently perhaps politely quickly
quietly rarely really recently seldom slowly sometimes soon still suddenly today tomorrow together
tonight usually yesterday calmly eagerly proudly warmly
"""

# Transitive verbs: "base" (regular) or "base:past[:participle]" for irregular ones.
# Regular forms follow _third_person / _past / _ing; verbs that double their final consonant are
# listed in _DOUBLING.
VERBS_T = """
accept admire answer ask bake borrow bring:brought build:built buy:bought call carry catch:caught
check choose:chose:chosen clean climb collect cook count cover cut:cut deliver describe draw:drew:drawn
drink:drank:drunk drive:drove:driven drop eat:ate:eaten enjoy explain feed:fed fill find:found fix
fold follow forget:forgot:forgotten hear:heard help hide:hid:hidden hold:held invite keep:kept kick
know:knew:known leave:left lend:lent lift like love make:made meet:met miss move need open order
paint pack pass plan play pull push read:read repair return ride:rode:ridden sell:sold send:sent
share show:showed:shown sing:sang:sung steal:stole:stolen take:took:taken teach:taught tell:told
throw:threw:thrown touch visit want wash watch wear:wore:worn win:won wrap write:wrote:written
bring:brought catch:caught copy crack decorate discover grab guard hug measure mend notice pick
pour prepare print protect recognise remember rescue search sketch study test trust unlock weigh
"""

# Intransitive verbs (used with an optional adverb or a prepositional phrase).
VERBS_I = """
arrive begin:began:begun complain cough cry dance disappear fall:fell:fallen fly:flew:flown
grow:grew:grown hurry jump laugh listen rest run:ran:run shout sing:sang:sung sit:sat sleep:slept
smile sneeze speak:spoke:spoken stay swim:swam:swum travel wait walk whisper work yawn wander
shiver sparkle vanish giggle relax
"""

_DOUBLING = {"drop", "hug", "grab", "plan", "stop", "travel", "run", "swim", "sit", "win", "cut",
             "begin", "shop", "jog", "rob", "skip", "chat", "pat", "trip", "nod"}

PREPOSITIONS_PLACE = "in near behind under beside inside outside above across through along past".split()

DAYS = "monday tuesday wednesday thursday friday saturday sunday".split()
MONTHS = ("january february march april may june july august september october november "
          "december").split()

SUBJECT_PRONOUNS = ["i", "you", "we", "they", "he", "she"]
OBJECT_PRONOUNS = {"i": "me", "you": "you", "we": "us", "they": "them", "he": "him", "she": "her"}
POSSESSIVES = ["my", "your", "our", "their", "his", "her"]

ROLES = """
doctor teacher driver farmer nurse pilot cook waiter manager neighbour student professor painter
sailor captain engineer scientist writer singer lawyer tailor visitor customer passenger artist
""".split()

RELATIVES = "mother father sister brother uncle cousin daughter friend neighbour grandmother".split()

# Words that appear literally in text.py's templates (kept here so text.vocabulary() is complete; the unit
# test checks that every generated word is in vocabulary()).
TEMPLATE_WORDS = """
a after afternoon although am an and are at because been before believes born but can class close
concert cost costs could day did do does ended ends ever every felt few film from half happened has
have how is it just last later lesson let lives looked many match might month more must next night no
not number o of on please promised quarter quite rather said saw see seemed should so some spring
started starts terrible thank that the then there these thinks this those time to too until very was
week what when where while who why will would year begins leaves explained knew told wrote clock
morning evening floor room lovely stays studies works one needed bought counted found painted sold
walked ran drove travelled waited worked studied carried already finally hundred thousand us
""".split()

UNITS = "metres kilometres kilograms litres hours minutes days weeks years pages steps miles".split()
CURRENCIES = "dollars euros pounds".split()

# ---- keywords: one word each, pronounceable; common and made-up ones -----------------------------
KEYWORD_PERSONS = """
alice bob carlos diana edward fatima george hannah ivan julia kenji laura miguel nadia oscar
priya quentin rosa samuel tanya ulrich valeria walter ximena yusuf zoe amara bertrand cosima
dmitri esperanza florian greta horatio ingrid jasper kalinda leopold marisol nikolai ophelia
percival rosalind sebastian thaddeus winifred zebulon aurelio bettina casimir delphine evander
""".split()

KEYWORD_PLACES = """
paris london tokyo cairo lima oslo madrid berlin dublin boston denver chicago sydney toronto
nairobi vienna prague lisbon athens havana quito geneva kyoto mumbai seoul valoria brindlemoor
castavel dunmarrow elkwater fernhollow glimmerton harrowgate islemere jorvale kestrel lundgrave
mistvale northwick orlanda pembrook quarrytown ravenholm silverbay tamberlin umbridge westerly
""".split()

KEYWORD_BRANDS = """
toyota nokia adidas lego google samsung nintendo ikea kodak yamaha zentrix novacore bluepeak
quantiva solarix vexilon trimbo glimmix hexaplan orbitel lumora kravix pendulo zorbit fennamax
cobaltix velorra drumble quibbly snorkit
""".split()

BRAND_PRODUCTS = "phone camera laptop bicycle watch printer speaker tablet car radio kettle".split()

KEYWORDS = sorted(set(KEYWORD_PERSONS) | set(KEYWORD_PLACES) | set(KEYWORD_BRANDS))

# Numbers ----------------------------------------------------------------------------------------
_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
         "fifteen sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_ORD_IRREGULAR = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
                  "nine": "ninth", "twelve": "twelfth"}


def number_words(n: int) -> list[str]:
    """Spell out 0 <= n < 1,000,000 the British way: 'one hundred and five'."""
    if not 0 <= n < 1_000_000:
        raise ValueError(f"number_words: {n} is out of range [0, 1000000)")
    if n < 20:
        return [_ONES[n]]
    if n < 100:
        tens, ones = divmod(n, 10)
        return [_TENS[tens]] + ([_ONES[ones]] if ones else [])
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return [_ONES[hundreds], "hundred"] + (["and"] + number_words(rest) if rest else [])
    thousands, rest = divmod(n, 1000)
    words = number_words(thousands) + ["thousand"]
    if rest:
        words += (["and"] if rest < 100 else []) + number_words(rest)
    return words


def ordinal_words(n: int) -> list[str]:
    """'first', 'twenty third', 'one hundred and twelfth' for 1 <= n < 1000."""
    if not 1 <= n < 1000:
        raise ValueError(f"ordinal_words: {n} is out of range [1, 1000)")
    words = number_words(n)
    last = words[-1]
    if last in _ORD_IRREGULAR:
        last = _ORD_IRREGULAR[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last = last + "th"
    return words[:-1] + [last]


def year_words(year: int) -> list[str]:
    """'nineteen eighty four', 'two thousand and nine', 'twenty twenty one'."""
    hi, lo = divmod(year, 100)
    if 2000 <= year < 2010:
        return number_words(year)
    if lo == 0:
        return number_words(hi) + ["hundred"]
    if lo < 10:
        return number_words(hi) + ["oh"] + number_words(lo)
    return number_words(hi) + number_words(lo)


# --------------------------------------------------------------------------------------------------
# Morphology
# --------------------------------------------------------------------------------------------------

def _words(block: str) -> list[str]:
    return block.split()


def _add_s(word: str, es_after: str) -> str:
    """word + -s / -es (after the endings in the regex ``es_after``) / consonant-y -> -ies."""
    if re.search(es_after, word):
        return word + "es"
    if re.search(r"[^aeiou]y$", word):
        return word[:-1] + "ies"
    return word + "s"


def _plural(noun: str) -> str:
    return _add_s(noun, r"(s|sh|ch|x|z)$")


def _third_person(verb: str) -> str:
    return _add_s(verb, r"(s|sh|ch|x|z|o)$")   # goes, does; nouns in -o vary (pianos, potatoes: listed forms)


def _ing(verb: str) -> str:
    if verb.endswith("ie"):
        return verb[:-2] + "ying"
    if verb.endswith("e") and not verb.endswith(("ee", "ye", "oe")):
        return verb[:-1] + "ing"
    if verb in _DOUBLING:
        return verb + verb[-1] + "ing"
    return verb + "ing"


def _regular_past(verb: str) -> str:
    if verb.endswith("e"):
        return verb + "d"
    if re.search(r"[^aeiou]y$", verb):
        return verb[:-1] + "ied"
    if verb in _DOUBLING:
        return verb + verb[-1] + "ed"
    return verb + "ed"


@dataclass(frozen=True)
class Verb:
    base: str
    third: str
    past: str
    participle: str
    ing: str


def _parse_verbs(block: str) -> list[Verb]:
    out: dict[str, Verb] = {}
    for item in _words(block):
        parts = item.split(":")
        base = parts[0]
        past = parts[1] if len(parts) > 1 else _regular_past(base)
        participle = parts[2] if len(parts) > 2 else past
        out[base] = Verb(base, _third_person(base), past, participle, _ing(base))
    return list(out.values())


def _parse_nouns(block: str) -> list[tuple[str, str]]:
    out: dict[str, str] = {}
    for item in _words(block):
        sing, _, plur = item.partition(":")
        out[sing] = plur or _plural(sing)
    return list(out.items())


NOUN_FORMS = _parse_nouns(NOUNS)          # [(singular, plural)]
TRANSITIVE = _parse_verbs(VERBS_T)
INTRANSITIVE = _parse_verbs(VERBS_I)
ADJ = sorted(set(_words(ADJECTIVES)))
ADV = sorted(set(_words(ADVERBS)))
MASS = sorted(set(_words(MASS_NOUNS)))
