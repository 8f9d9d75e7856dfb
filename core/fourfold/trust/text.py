"""Words, sentences, clauses and quantities of English text, for the trust checks.

Rules in plain code, no model: they must run in microseconds per sentence and behave
the same for every generator.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "STOPWORDS",
    "GENERIC_QUESTION_WORDS",
    "content_words",
    "question_words",
    "stem",
    "split_sentences",
    "sentence_spans",
    "clauses",
    "is_negated",
    "Quantity",
    "quantities",
    "strip_citations",
    "answer_kind",
    "answer_focus",
    "states_answer_kind",
]

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before being below between
    both but by can could did do does doing down during each either few for from further had has have having he her
    here hers him his how however i if in into is it its itself just may me might more most must my no nor not now of
    off on once only or other our ours out over own same shall she should so some such than that the their theirs
    them then there these they this those through to too under until up very was we were what when where which while
    who whom why will with within without would you your yours document documents source sources passage passages
    according answer question""".split()
)
# Words of how people ask, not of what they ask about: "How long should I …", "What is
# the best way to …". They carry no topic, so they are not required to be covered.
GENERIC_QUESTION_WORDS = frozenset(
    """need needs needed get gets getting got make makes tell know want like okay ok normal best good way ways thing
    things help helps someone somebody person people much many long often usually really actually exactly mean means
    happen happens happening anything something everything else kind type sort use used using take takes try
    say says said give gives work works done possible able likely always ever still soon quickly right wrong
    common usual typical important able allowed want wants wanted think anyone anybody ask asks asking asked since yes
    fine sure correct someone please whenever whose enough hear reply wondering wonder thanks hello""".split()
)

_NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
    "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17,
    "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60,
    "ninety": 90, "hundred": 100, "half": 0.5, "once": 1, "twice": 2,
}


def stem(word: str) -> str:
    """Truncation stemming: "symptoms"/"symptom", "coughing"/"cough", "doses"/"dose",
    "dogs"/"dog" meet; good enough to tell a restatement of a passage from an unrelated
    claim."""
    if word.endswith(("sses", "xes", "zzes", "ches", "shes")) and len(word) > 4:
        word = word[:-2]  # "classes", "boxes", "churches": the plural adds "es"
    elif word.endswith("s") and len(word) > 3 and not word.endswith(("ss", "us", "is")):
        word = word[:-1]  # "doses", "diseases", "dogs": the plural adds "s" ("virus", "class" stay)
    else:
        for suffix in ("ing", "ed"):
            if len(word) > len(suffix) + 3 and word.endswith(suffix):
                word = word[: -len(suffix)]
                break
    return word[:7]


def _words(text: str) -> list[str]:
    # "what's" → "what", "can't" → "can": contractions and possessives add no meaning.
    return [w.split("'")[0] for w in _WORD.findall(text.lower().replace("’", "'"))]


_CONTRACTED = frozenset("isn aren wasn weren hasn haven hadn doesn didn don won wouldn shouldn couldn can mustn let".split())


def content_words(text: str) -> set[str]:
    """Stems of the words of ``text`` that carry meaning (no stopwords, no 1–2 letter words)."""
    return {stem(w) for w in _words(text) if len(w) > 2 and w not in STOPWORDS and w not in _CONTRACTED}


def question_words(text: str) -> set[str]:
    """The content words of a question that name what it is about (no asking words)."""
    return {
        stem(w)
        for w in _words(text)
        if len(w) > 2 and w not in STOPWORDS and w not in GENERIC_QUESTION_WORDS and w not in _CONTRACTED
    }


_CITATION = re.compile(r"\s*\[\s*\d{1,3}(?:\s*[,;]\s*\d{1,3})*\s*\]")


def strip_citations(text: str) -> str:
    return _CITATION.sub("", text)


# A sentence ends at ".", "!" or "?" (optionally followed by closing quotes/brackets and
# citation marks) before whitespace, or at a line break. Not after "e.g." or inside "2.5".
_ABBREV = re.compile(r"\b(?:e\.g|i\.e|etc|vs|no|art|sec|para|dr|mr|mrs|ms|st|fig|approx|incl|cf)\.$", re.I)
_LIST_NUMBER = re.compile(r"\s*(?:\d{1,2}[.)]\s+)*\d{1,2}")
_END = re.compile(r"[.!?…][\"'”’)\]]*(?:\s*\[\s*\d{1,3}(?:\s*[,;]\s*\d{1,3})*\s*\])*[.!?]?[\"'”’)]*(?=\s)(?!\s*\[\s*\d)|\n")


def sentence_spans(text: str, *, final: bool = True) -> list[tuple[int, int]]:
    """(start, end) of each sentence of ``text``, separators included in the sentence
    before them, so the spans tile the text. With ``final`` False the last, possibly
    unfinished, sentence is left out (only sentences followed by whitespace count)."""
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _END.finditer(text):
        end = m.end()
        if m.group(0) != "\n":
            if _ABBREV.search(text[start:end].rstrip()):
                continue
            line_start = text.rfind("\n", 0, m.start()) + 1
            if _LIST_NUMBER.fullmatch(text[max(line_start, start) : m.start()]):
                continue  # "1. First item": a list number, not a sentence end
        # keep the whitespace run after the end with this sentence
        while end < len(text) and text[end] in " \t\n":
            end += 1
            if text[end - 1] == "\n":
                break
        if end < len(text) or final or text[m.start() : end].endswith((" ", "\n", "\t")):
            if text[start:end].strip():
                spans.append((start, end))
            elif spans:
                spans[-1] = (spans[-1][0], end)
            else:
                spans.append((start, end))
            start = end
    if final and start < len(text):
        spans.append((start, len(text)))
    return spans


def split_sentences(text: str) -> list[str]:
    return [text[a:b] for a, b in sentence_spans(text)]


_NEGATORS = re.compile(
    r"\b(?:not|no|never|none|nothing|neither|nor|cannot|avoid|avoiding|without|stop|refrain|don't|doesn't|didn't|"
    r"shouldn't|mustn't|can't|won't|isn't|aren't|wasn't|weren't|hasn't|haven't|wouldn't|couldn't|prohibited|forbidden|"
    r"unsafe|instead\s+of|rather\s+than)\b|n't\b",
    re.I,
)


def is_negated(clause: str) -> bool:
    return _NEGATORS.search(clause.replace("’", "'")) is not None


_CLAUSE_SPLIT = re.compile(r"\s*(?:[,;:()]|\s-\s|—|–)\s*|\s+(?:but|however|whereas|although|though|while|and then)\s+", re.I)


def clauses(sentence: str) -> list[str]:
    """Clauses of a sentence: split at commas, semicolons, dashes and contrastive
    conjunctions ("but", "while"); "and" stays inside (it joins the objects of one verb)."""
    parts = [p.strip() for p in _CLAUSE_SPLIT.split(strip_citations(sentence)) if p and p.strip()]
    return [p for p in parts if _WORD.search(p.lower())]


@dataclass(frozen=True)
class Quantity:
    """A number (or range) with the unit that follows it, in a canonical family."""

    low: float
    high: float
    unit: str

    def overlaps(self, other: "Quantity", tolerance: float = 0.01) -> bool:
        return self.low <= other.high * (1 + tolerance) and other.low <= self.high * (1 + tolerance)

    def within(self, other: "Quantity") -> bool:
        return other.low * 0.99 <= self.low and self.high <= other.high * 1.01


_UNITS = {
    "second": "s", "seconds": "s", "sec": "s", "secs": "s",
    "minute": "min", "minutes": "min", "min": "min", "mins": "min",
    "hour": "h", "hours": "h", "hr": "h", "hrs": "h",
    "day": "d", "days": "d", "week": "wk", "weeks": "wk", "month": "mo", "months": "mo", "year": "y", "years": "y",
    "mg": "mg", "milligram": "mg", "milligrams": "mg", "g": "g", "gram": "g", "grams": "g", "kg": "kg",
    "kilogram": "kg", "kilograms": "kg", "mcg": "mcg", "microgram": "mcg", "micrograms": "mcg", "µg": "mcg",
    "ml": "ml", "millilitre": "ml", "millilitres": "ml", "milliliter": "ml", "milliliters": "ml",
    "l": "l", "litre": "l", "litres": "l", "liter": "l", "liters": "l",
    "%": "%", "percent": "%", "per cent": "%",
    "°c": "c", "degrees": "deg", "degree": "deg", "c": "c", "f": "f",
    "times": "times", "time": "times", "tablets": "tablet", "tablet": "tablet", "doses": "dose", "dose": "dose",
    "units": "unit", "unit": "unit", "drinks": "drink", "drink": "drink", "cups": "cup", "cup": "cup",
    "glasses": "glass", "glass": "glass", "portions": "portion", "portion": "portion", "servings": "serving",
    "mmhg": "mmhg", "mmol/l": "mmol", "mmol": "mmol", "bpm": "bpm", "cm": "cm", "metres": "m", "meters": "m",
    "steps": "step", "cigarettes": "cig", "calories": "kcal", "kcal": "kcal",
    "business days": "bd", "working days": "bd", "calendar days": "d",
    "usd": "usd", "dollars": "usd", "$": "usd", "eur": "eur", "euros": "eur", "£": "gbp", "gbp": "gbp",
    "pounds": "lb", "lb": "lb", "lbs": "lb", "ounces": "oz", "oz": "oz",
}
_UNIT_RE = "|".join(sorted((re.escape(u) for u in _UNITS), key=len, reverse=True))
_NUM = r"(?:\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?|" + "|".join(_NUMBER_WORDS) + r")"
_QUANTITY = re.compile(
    rf"(?<![\w.])(?P<cur>[$£])?(?P<a>{_NUM})(?:\s*(?:-|–|to|or|and)\s*(?P<b>{_NUM}))?\s*(?P<unit>{_UNIT_RE})?(?![\w])",
    re.I,
)


def _value(token: str) -> float:
    token = token.lower().replace(",", "")
    if token in _NUMBER_WORDS:
        return float(_NUMBER_WORDS[token])
    return float(token)


def quantities(text: str) -> list[Quantity]:
    """Numbers of ``text`` with their unit family ("" when none follows): "7 to 9 hours"
    → Quantity(7, 9, "h"); "12.5 grams" → Quantity(12.5, 12.5, "g"). Citation marks,
    list numbers and years standing alone are not quantities."""
    text = strip_citations(text)
    text = re.sub(r"^\s*\d{1,2}[.)]\s+", " ", text)  # a list number
    text = re.sub(r"^\s*\d{1,2}(?:\.\d{1,2})*\s+(?=[A-Z][a-z])", " ", text)  # a section number ("2 Procedure and …")
    out = []
    for m in _QUANTITY.finditer(text):
        a = m.group("a")
        if a.lower() in _NUMBER_WORDS and not m.group("unit") and not m.group("b"):
            continue  # "one of the …", "once": a number word without a unit says little
        unit = (m.group("unit") or "").lower()
        if m.group("cur"):
            unit = m.group("cur")
        family = _UNITS.get(unit, "")
        low = _value(a)
        high = _value(m.group("b")) if m.group("b") else low
        if not family and re.fullmatch(r"(?:19|20)\d\d", a) and not m.group("b"):
            family = "year"
        out.append(Quantity(min(low, high), max(low, high), family))
    return out


# -- what kind of answer a question asks for ---------------------------------------------

_TIME_FAMILIES = frozenset({"s", "min", "h", "d", "wk", "mo", "y", "bd"})
_ASKS = [
    # (kind, pattern of the question), first match wins
    ("age", re.compile(r"\bwhat age\b|\bat what age\b|\bhow old\b|\b(?:minimum|maximum|youngest|oldest) age\b|\bage limit\b", re.I)),
    (
        "duration",
        re.compile(
            r"\bhow long\b|\bhow many (?:more )?(?:seconds|minutes|hours|days|weeks|months|years|business days|working days)\b"
            r"|\bwhat (?:is|are) (?:the |a |an )?(?:[\w-]+ ){0,2}(?:period|deadline|time limit|term)s?\b(?! of (?:the )?(?:agreement|contract|office))",
            re.I,
        ),
    ),
    ("deadline", re.compile(r"\bhow (?:soon|quickly|fast)\b|\bwithin how\b|\bby when\b", re.I)),
    (
        "dose",
        re.compile(
            r"\bwhat (?:is the |are the )?(?:dose|doses|dosage|dosing)\b|\bhow (?:many|much) (?:mg|milligrams?|grams?|tablets?|pills?|capsules?|ml|millilitres?|units?|drops?|puffs?)\b"
            r"|\bhow much (?:\w+ ){0,3}(?:should|can|do|may) (?:i|we|you|he|she|they|my \w+) (?:take|give|have|use)\b",
            re.I,
        ),
    ),
    (
        "time",
        re.compile(r"\bwhen (?:does|do|will|would|is|are|should|must)\b.*\b(?:develop|start|begin|appear|expire|end|lapse|take effect|come into force|due|apply)s?\b", re.I),
    ),
    (
        "calculation",
        re.compile(r"\bhow (?:is|are|was|were|will|would|do you|do we|does one) (?:[\w'-]+ ){0,7}?(?:calculated|computed|worked out|determined|calculate|compute|work out)\b", re.I),
    ),
    ("frequency", re.compile(r"\bhow (?:often|frequently)\b|\bhow many times\b|\bat what intervals?\b", re.I)),
    ("who", re.compile(r"\bwho (?:is|are) (?:most |more )?(?:likely|at risk|affected|most affected)\b|\bwho (?:gets|get|can get|is prone)\b", re.I)),
    ("place", re.compile(r"\bwhich (?:state|country|countries|jurisdiction|court|courts|city|law|laws)\b|\bwhose law\b|\bwhere (?:is|are)\b.*\b(?:based|located|registered|hosted|stored|incorporated)\b", re.I)),
    ("organisation", re.compile(r"\bwhich (?:company|companies|firm|provider|providers|supplier|suppliers|processor|vendor|organisation|organization|bank|insurer|entity)\b|\bwho (?:hosts|provides|supplies|processes|runs|operates)\b", re.I)),
    (
        "amount",
        re.compile(
            r"\bhow (?:many|much|far|big|large|high|low|strong)\b"
            r"|\bwhat (?:is the |are the )?(?:dose|dosage|percentage|temperature|amount|fee|fees|rate|number|limit|maximum|minimum|price|cost|"
            r"threshold|turnover|cap|penalty|fine|capital|leverage|ratio|level|value|salary|interest)\b|\bat what (?:temperature|point|level)\b"
            r"|\bwhat (?:is|are) (?:the |a |an )?(?:[\w-]+ ){1,2}(?:fee|fees|price|cost|charge|penalty|fine|rate|limit|cap|threshold)s?\b"
            r"|\b(?:damages|compensation|penalty|penalties|fee|fees|fine|fines) (?:is |are )?(?:payable|charged|due|applies|apply)\b",
            re.I,
        ),
    ),
]
_AGE_TEXT = re.compile(
    r"\b(?:in (?:their|his|her|your|the) (?:early |mid-?|late )?(?:teens|twenties|thirties|forties|fifties|sixties|seventies|eighties))\b"
    r"|\b(?:childhood|infancy|adolescence|adolescents|teenagers?|middle age|middle-aged|elderly|newborns?|infants?|toddlers?|puberty)\b|\b(?:under|over|aged?|below|above|at least|older than|younger than)\s+(?:the\s+age\s+of\s+)?\d{1,3}\b|\b\d{1,3}\s*(?:years?|yrs?)[\s-]*(?:of age|old)\b|\bage(?:s|d)?\s+(?:of\s+)?\d{1,3}\b",
    re.I,
)
_COUNT_WORDS = re.compile(
    r"\b(?:two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|forty|fifty|hundred|dozen|once|twice|half"
    r"|several|unlimited|free of charge|no (?:limit|fee|charge|cost|minimum|maximum))\b", re.I
)
# "7 (seven) business days", "thirty (30) days"
_SPELLED_DURATION = re.compile(
    r"\b\w+\s*\(\s*\w+\s*\)\s*(?:business |working |calendar )?(?:seconds?|minutes?|hours?|days?|weeks?|months?|years?)\b", re.I
)
_TIME_TEXT = re.compile(
    r"\b(?:financial|calendar|fiscal|reporting) (?:year|period)\b|\b(?:19|20)\d\d\b"
    r"|\b(?:January|February|March|April|May|June|July|August|September|October|November|December)\b"
    r"|\b(?:first|second|third|next|following) (?:few )?(?:days?|weeks?|months?|years?|dose|visit|period|year)\b"
)
_FREQUENCY_WORDS = re.compile(
    r"\b(?:hourly|daily|nightly|weekly|fortnightly|monthly|quarterly|annually|yearly|every|once|twice|times? (?:a|per|each)|per (?:day|week|month|year))\b", re.I
)
_IMMEDIACY_WORDS = re.compile(r"\b(?:immediately|promptly|forthwith|without (?:undue )?delay|as soon as (?:possible|practicable|reasonably)|at once|right away|straight away)\b", re.I)
_DOSE_FAMILIES = frozenset({"mg", "g", "mcg", "ml", "l", "tablet", "dose", "unit", "kg"})
_DURATION_WORDS = re.compile(
    r"\b(?:indefinitely|for as long as|until|for the (?:term|duration|life) of|permanently|a few (?:seconds|minutes|hours|days|weeks|months|years))\b",
    re.I,
)
_WHO_TEXT = re.compile(
    r"\b(?:most|more) (?:common|likely|often|frequent|prevalent)\b|\bat (?:higher |greater |increased |highest )?risk\b"
    r"|\b(?:mostly|mainly|usually|primarily|typically|often) (?:affects?|occurs? in|seen in)\b|\baffects? (?:mostly|mainly|primarily|people|women|men|children|adults)\b",
    re.I,
)
_PLACE_TEXT = re.compile(
    r"(?:\b(?:laws?|courts?|state|province|republic|kingdom|commonwealth|jurisdiction)\s+(?:of|in)\s+(?:the\s+)?[A-Z][A-Za-z]+"
    r"|\bgoverned by (?:the\s+)?(?:laws? of\s+)?(?:the\s+)?[A-Z][A-Za-z]+|\b(?:based|located|registered|incorporated|hosted|stored) in (?:the\s+)?[A-Z][A-Za-z]+"
    r"|\b(?!(?:Governing|Applicable|Common|Case|Contract|Company|Employment|Data|Privacy|Civil|Criminal|Statute|Statutory|The|This|"
    r"These|Such|Any|Local|Federal|State|National|International|Mandatory|Consumer|Competition|Standard)\b)[A-Z][a-z]+(?:\s+[A-Z][a-z]+)?\s+(?:law|courts)\b)"
    # "the law of Northwind's home jurisdiction": a party's jurisdiction, not a place named
    r"(?![A-Za-z]*\s*['’]s\b)",
)
# A reference to a rule, section or rulebook: its numbers are not amounts.
_REFERENCE = re.compile(
    r"\b(?:(?i:rules?|sections?|articles?|paragraphs?|chapters?|parts?|schedules?|clauses?|regulations?|annex|appendix|"
    r"appendices|items?|no\.?|nos\.?)\s+|(?!(?:USD|EUR|GBP|AED|CHF|JPY|CNY|INR|SGD|HKD|AUD|CAD)\b)[A-Z]{2,6}\s+)"
    r"\d+(?:\.\d+)*(?:\s*\([A-Za-z0-9]{1,4}\))*",
)
_CALCULATION_TEXT = re.compile(
    r"\b(?:calculat\w*|comput\w*|based on|by reference to|equal to|equals|multipl\w*|divided|formula|percent(?:age)?|per cent|"
    r"proportion(?:al|ate)?|pro[ -]rata|sum of|total of|rate of|per (?:hour|day|week|month|year|unit|share))\b|%",
    re.I,
)
_ORGANISATION_TEXT = re.compile(
    r"\b[A-Z][\w&'.-]*(?:\s+[A-Z][\w&'.-]*)*\s+(?:Ltd|Limited|Inc|LLC|L\.L\.C\.|GmbH|plc|PLC|Corp|Corporation|LLP|S\.A\.|SA|AG|B\.V\.|BV|Pty|Co\.)(?![A-Za-z])"
)


def answer_kind(question: str) -> str | None:
    """The kind of answer ``question`` asks for: ``"duration"`` ("how long …"),
    ``"deadline"`` ("how soon …"), ``"time"`` ("when does it start"), ``"dose"``,
    ``"age"``, ``"frequency"`` ("how often"), ``"calculation"`` ("how is the fee
    calculated"), ``"amount"`` (a count,
    dose, fee, rate, limit…),
    ``"who"`` (who is most likely …), ``"place"`` (which state's law …),
    ``"organisation"`` (which company …), or None (anything else)."""
    for kind, pattern in _ASKS:
        if pattern.search(question):
            return kind
    return None


def states_answer_kind(text: str, kind: str | None) -> bool:
    """Whether ``text`` states an answer of ``kind`` (see :func:`answer_kind`): a
    duration ("about 10 minutes", "within 28 days", "immediately"), an age ("under 13
    years of age"), an amount (a number with or without a unit), who (an "is most common
    in …"), a place ("the laws of the State of …"), an organisation ("Cirrus Compute
    Ltd") or a calculation ("10% of the monthly fee", "based on …"). True for ``kind``
    None."""
    if kind is None:
        return True
    body = strip_citations(text)
    if kind == "age":
        return _AGE_TEXT.search(body) is not None
    if kind == "duration":
        return (
            any(q.unit in _TIME_FAMILIES for q in quantities(body))
            or _DURATION_WORDS.search(body) is not None
            or _SPELLED_DURATION.search(body) is not None
        )
    if kind == "deadline":
        return states_answer_kind(body, "duration") or _IMMEDIACY_WORDS.search(body) is not None
    if kind == "dose":
        return any(q.unit in _DOSE_FAMILIES for q in quantities(body)) or re.search(r"\b(?:mg|mcg|µg|ml)/(?:kg|day|dose)\b", body, re.I) is not None
    if kind == "time":
        return states_answer_kind(body, "duration") or _TIME_TEXT.search(body) is not None
    if kind == "amount":
        body = _REFERENCE.sub(" ", body)  # "COBS 23", "Rule 7.1.2": where a rule is, not an amount
        return any(q.unit != "year" for q in quantities(body)) or _COUNT_WORDS.search(body) is not None
    if kind == "calculation":
        return _CALCULATION_TEXT.search(body) is not None
    if kind == "frequency":
        return any(q.unit in _TIME_FAMILIES or q.unit == "times" for q in quantities(body)) or _FREQUENCY_WORDS.search(body) is not None
    if kind == "who":
        return _WHO_TEXT.search(body) is not None
    if kind == "place":
        return _PLACE_TEXT.search(body) is not None
    if kind == "organisation":
        return _ORGANISATION_TEXT.search(body) is not None
    return True


# The amounts a question names by a noun that a sentence stating them uses too: "the
# exercise *price*", "the notification *fee*", "the maximum *leverage*". (A period, a
# rate or a limit is often stated without the word: "on 30 days' notice".)
_NAMED_AMOUNTS = r"(?:fee|price|cost|charge|penalty|fine|leverage|commission|salary|premium|deposit|dividend|royalty|royalties)s?"
_FOCUS = [
    re.compile(
        rf"\bwhat (?:is|are) (?:the |a |an )?(?P<focus>(?:[\w-]+ ){{1,2}})(?P<named>{_NAMED_AMOUNTS})\b"
        r"|\bwhat (?:is|are) (?:the |a |an )?(?P<focus2>(?:[\w-]+ ){1,2})(?:rate|limit|cap|threshold|period|deadline|time limit|term)s?\b",
        re.I,
    ),
    re.compile(r"\bwhat (?P<focus>(?:[\w-]+ ){1,2})(?:damages|compensation|penalty|penalties|fee|fees|fine|fines) (?:is |are )?(?:payable|charged|due|applies|apply)\b", re.I),
    re.compile(rf"\bhow much (?:is|are) (?:the |a |an )?(?P<near>(?:[\w-]+ ){{0,2}})(?P<named>{_NAMED_AMOUNTS})\b", re.I),
    re.compile(rf"\bwhat (?:is|are) (?:the |a |an )?(?P<named>{_NAMED_AMOUNTS})\b", re.I),
]


def answer_focus(question: str) -> set[str]:
    """The words naming *which* amount a question asks for: "exercise" and "price" in
    "what is the exercise price …", "notification" and "fee" in "how much is the
    notification fee …", "limitation" in "what is the limitation period …" (a period is
    often stated without the word). A sentence stating another price or period does not
    answer it (compare with :func:`content_words` of the sentence)."""
    for pattern in _FOCUS:
        m = pattern.search(question)
        if m:
            groups = m.groupdict()
            named = groups.get("named") or ""
            # "how much is the FSRA notification fee": the word before the noun says which
            near = (groups.get("near") or "").split()[-1:]
            return content_words(" ".join(g for g in (groups.get("focus"), groups.get("focus2"), *near, named) if g))
    return set()
