"""The judge's pre-check: does an answer talk to its grader instead of answering?

An answer is searched as several views of the same text, each lower-cased with its runs of
blanks made one space, so that disguises do not hide a phrase:

- NFKC (fullwidth and mathematical letters become plain ones), with format characters
  removed (zero-width characters, soft hyphens, bidi controls) and letters that look like
  Latin ones made Latin, from Unicode's confusables data (`confusable_homoglyphs`);
  and, where it has them, with markdown emphasis and code marks taken out, and read as
  blanks (`ignore_previous_instructions`);
- the same text in its own script (for the patterns of other languages);
- the text reversed, when it holds a right-to-left override (how a reader sees what follows it);
- text smuggled in Unicode tag characters (invisible ASCII);
- each base64 run that decodes to text.

The patterns cover English, French, Spanish, Portuguese, Italian, German, Dutch, Russian,
Chinese and Japanese, fake conversation turns and chat-template tokens, and a score written
as a verdict in an answer to a request that never mentions scores. Every view is linear in
the answer's length. The check can never be complete (a paraphrase addressed to the grader
is not a phrase), so the judge prompt is the second wall: the README lists what gets past.
"""

from __future__ import annotations

import base64
import binascii
import importlib.resources
import json
import re
import unicodedata
from collections.abc import Iterator
from functools import cache

# "full marks", "a perfect score", "10/10": the top grade, as an answer asking for it names it
_TOP_GRADE = (
    r"(?:full\s+(?:marks?|credit|points|score)|perfect\s+(?:score|marks?|rating|grade|10)"
    r"|(?:maximum|max|top|highest)\s+(?:score|marks?|rating|grade)"
    r"|10\s*/\s*10(?!\d)|100\s*/\s*100(?!\d)|(?:10|ten)\s+out\s+of\s+(?:10|ten)\b)"
)
# Phrases of an answer that talks to its grader instead of answering, in Latin script
# (matched on the folded views: lower case, look-alike letters made Latin, no accents).
INJECTION_PATTERNS: tuple[str, ...] = (
    r"\b(?:ignore|disregard|forget|override)\s+(?:all\s+(?:of\s+)?(?:the\s+|your\s+)?"
    r"(?:previous\s+|prior\s+|above\s+|earlier\s+|preceding\s+|other\s+)?"
    r"|(?:the\s+|your\s+|any\s+)?(?:previous|prior|above|earlier|preceding|grading|system)\s+)"
    r"(?:instructions?|prompts?|rules|guidelines|directions|rubric)",
    r"\b(?:give|award|assign|grant)\s+(?:this|me|it|us|my\s+answer|this\s+answer|this\s+response)\s+"
    r"(?:a\s+|an\s+|the\s+)?(?:full|10|ten|100|perfect|maximum|max|top|highest)\s*(?:/\s*10\s*)?"
    r"(?:marks?|scores?|points|rating|grade|credit)",
    rf"\b(?:give|award|assign|grant)s?\s+(?:(?:this|it|me|us|my|the)\s+"
    rf"(?:(?:answer|response|solution|submission)\s+)?)?(?:a\s+|an\s+|the\s+)?{_TOP_GRADE}",
    rf"\b(?:deserves?|merits?|warrants?|should\s+(?:get|receive|be\s+given|be\s+awarded|score))\s+"
    rf"(?:a\s+|an\s+|the\s+)?{_TOP_GRADE}",
    r"\b(?:rate|grade|score|mark)\s+(?:this|it|me|my\s+answer|this\s+answer|this\s+response)\s+"
    r"(?:as\s+|with\s+|at\s+)?(?:a\s+)?(?:10|ten|100|perfect|full\s+marks|maximum|the\s+highest)\b",
    r"\b(?:grading|grader|evaluator|evaluation)\s+(?:note|notes|instructions?)\s*[:\-\u2013\u2014]",
    r"\bas\s+(?:the|an?)\s+(?:ai\s+|llm\s+)?(?:grader|evaluator|assessor)\b",
    r"\bas\s+the\s+judge\s*,?\s+(?:you|please|give|rate|score|assign|award|mark)\b",
    r"\byou\s+are\s+(?:now\s+)?(?:a|an|the)\s+(?:ai\s+|llm\s+)?(?:judge|grader|evaluator|assessor)\b",
    r"\b(?:note|message|instructions?)\s+(?:to|for)\s+(?:the\s+|any\s+)?(?:ai\s+|llm\s+)?"
    r"(?:judge|grader|evaluator|assessor|reviewer)\b",
    r"\b(?:dear|hey|attention)\s+(?:the\s+)?(?:ai\s+|llm\s+)?(?:judge|grader|evaluator|assessor)\b",
    r"\bnew\s+instructions?\s*:",
    # French
    r"\b(?:ignore[rz]?|oublie[rz]?)\s+(?:toutes\s+)?(?:les|tes|vos)\s+(?:instructions|consignes|regles)"
    r"(?:\s+(?:precedentes|anterieures|ci-dessus))?",
    r"\b(?:note|notation)\s+maximale\b|\b(?:donne[rz]?|attribue[rz]?|mets|mettez)\s+(?:lui\s+|-lui\s+)?"
    r"(?:la\s+note\s+de\s+)?(?:10|20)\s*/\s*(?:10|20)",
    # Spanish, Portuguese, Italian
    r"\b(?:ignora[r]?|olvida[r]?|ignore|esqueca|dimentica)\s+(?:todas\s+|tutte\s+)?(?:las|as|le)\s+"
    r"(?:instrucciones|instrucoes|istruzioni|indicaciones|regras|reglas|regole)",
    r"\b(?:puntuacion|calificacion|nota|pontuacao|punteggio|voto)\s+(?:maxima|massima|massimo|perfecta|perfeita)\b",
    # German, Dutch
    r"\b(?:ignoriere|ignorieren\s+sie|vergiss|vergessen\s+sie|negeer|vergeet)\s+(?:alle\s+)?"
    r"(?:vorherigen\s+|bisherigen\s+|obigen\s+|vorigen\s+|eerdere\s+|vorige\s+)?"
    r"(?:anweisungen|instruktionen|regeln|vorgaben|instructies|regels)",
    r"\b(?:volle|hochste|maximale)\s+(?:punktzahl|punkte|bewertung|note)\b|\bvolle\s+punten\b",
)
# Patterns of other scripts, matched on the views that keep the text's own script.
NATIVE_PATTERNS: tuple[str, ...] = (
    # Russian (combining marks are dropped from the text first: the short i reads as и)
    r"(?:игнорируи|игнорируите|забудь|забудьте|проигнорируи|не\s+обращаи\s+внимания\s+на)\s+"
    r"(?:все\s+)?(?:предыдущие\s+|прежние\s+|эти\s+)?(?:инструкции|указания|правила)",
    r"(?:максимальн\w*|высш\w*)\s+(?:балл|оценк)\w*",
    # Chinese
    r"(?:忽略|无视|忽视|忘记|不要理会)(?:之前|以上|前面|先前|上面|所有)?(?:的)?(?:所有)?(?:指令|指示|说明|规则|提示)",
    r"(?:给|打)(?:这个|此|我)?(?:答案|回答)?(?:满分|最高分)",
    # Japanese
    r"(?:以前|前|上記|これまで)の(?:すべての)?(?:指示|命令|ルール)を(?:すべて)?無視",
    r"満点を(?:付け|つけ|与え)",
)
# Fake turns of a conversation, and chat-template tokens: the answer pretending to be the
# grader's own conversation
FAKE_TURN_PATTERNS: tuple[str, ...] = (
    r"<\|(?:im_start|im_end|system|user|assistant|endoftext|eot_id|start_header_id|end_header_id)\|>",
    r"\[/?inst\]|<</?sys>>|<start_of_turn>|<end_of_turn>",
    r"(?:^|\n)[ \t]*(?:#{1,4}[ \t]*)?(?:system|developer)[ \t]*(?:message|prompt)?[ \t]*:[ \t]*\S",
    r"(?:^|\n)[ \t]*(?:human|assistant|user)[ \t]*:[ \t]*\S[^\n]*\n"
    r"(?:[^\n]*\n){0,20}?[ \t]*(?:human|assistant|user|ai)[ \t]*:",
)
# A verdict in the judge's own form: forged grades. Counted only where the request does
# not itself talk about scores (then "score: 10" is more likely the answer).
VERDICT_PATTERNS: tuple[str, ...] = (
    r'\{\s*"?score"?\s*:\s*-?\d+(?:\.\d+)?\s*,\s*"?reason"?\s*:',
    r'(?<![a-z0-9])"?(?:score|grade|rating|verdict|punktzahl|bewertung|puntuacion|calificacion|pontuacao'
    r'|punteggio|\u8bc4\u5206|\u5206\u6570|\u5f97\u5206|\u6253\u5206)"?\s*(?:[:=]|[\u2013\u2014])\s*"?'
    r'\d+(?:\.\d+)?(?:\s*/\s*\d+)?"?(?!\s*[-\u2013:]\s*\d)(?!\.?\d)',
)
_SCORE_TALK = re.compile(
    r"\b(?:scores?|scored|scoring|grades?|grading|ratings?|rate|points?|marks?|evaluat\w*|judge\w*"
    r"|punktzahl|bewert\w*|puntuaci\w*|calificaci\w*|pontua\w*|punteggio)\b"
    r"|\u8bc4\u5206|\u5206\u6570|\u5f97\u5206|\u6253\u5206"  # Chinese: grade, score, scored, to grade
)


# Every match of an INJECTION_PATTERNS pattern holds one of these: a view without any of them
# is not searched with those patterns (a megabyte of words that could start one costs the
# search a third of a second; looking for these, a few milliseconds). A test holds random
# matches of every pattern to this.
LATIN_ANCHORS: tuple[str, ...] = (
    *("ignor", "disregard", "forget", "override", "oubli", "olvida", "esqueca", "dimentica"),
    *("vergiss", "vergessen", "negeer", "vergeet", "give", "award", "assign", "grant", "deserve"),
    *("merit", "warrant", "should", "rate", "grad", "score", "mark", "evaluat", "assessor", "judge"),
    *("reviewer", "instruction", "maxim", "massim", "perfect", "perfeit", "volle", "hochste", "/"),
)


def _may_match_latin(view: str) -> bool:
    return any(anchor in view for anchor in LATIN_ANCHORS)


def _either(patterns: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns))


# Kept apart: one alternation of all of them is several times slower than these in turn.
_LATIN = _either(INJECTION_PATTERNS)
_TURNS = _either(FAKE_TURN_PATTERNS)
_NATIVE = _either(NATIVE_PATTERNS)
_VERDICT = _either(VERDICT_PATTERNS)

_MARKUP = "*_`~"
_BLANKS = re.compile(r"[^\S\n]+")
_RLO_RUN = re.compile("[\u202e\u2067]([^\u202c\u2069\n]*)")
_TAG_RUN = re.compile("[\U000e0020-\U000e007e]+")
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_-]{16,}={0,2}")
MAX_DECODED_CHARS = 1_000_000  # base64 text decoded and searched, in all
MAX_EXPANSION = 4  # a compatibility form longer than this is a phrase, not a letter


@cache
def latin_lookalikes() -> dict[int, str]:
    """Non-ASCII characters that look like a Latin letter or digit, mapped to it in lower
    case (Unicode's confusables data). A lower-case letter is preferred, then a capital,
    then a digit: the Cyrillic capital O is o, not 0."""
    source = importlib.resources.files("confusable_homoglyphs").joinpath("confusables.json")
    table: dict[int, str] = {}
    for char, glyphs in json.loads(source.read_text("utf-8")).items():
        if len(char) != 1 or char.isascii():
            continue
        latin = [g["c"] for g in glyphs if len(g["c"]) == 1 and g["c"].isascii() and g["c"].isalnum()]
        if latin:
            table[ord(char)] = min(latin, key=lambda c: (not c.islower(), not c.isupper())).lower()
    return table


def _no_format_characters(text: str) -> str:
    """NFKC, without format characters (zero-width, soft hyphen, bidi controls, tags) and
    combining marks (accents: `précédentes` reads `precedentes`)."""
    # the tables are made of the text's own characters: a few, however long the text.
    # A character whose compatibility form is a phrase (U+FDFA is 18 characters) would make
    # the views many times the answer's size: it is a blank to the patterns instead.
    phrases = {ord(c): " " for c in set(text) if len(unicodedata.normalize("NFKC", c)) > MAX_EXPANSION}
    text = unicodedata.normalize(
        "NFKD", unicodedata.normalize("NFKC", text.translate(phrases) if phrases else text)
    )
    dropped = {ord(c): None for c in set(text) if unicodedata.category(c) in ("Cf", "Mn", "Me")}
    return text.translate(dropped) if dropped else text


def _one_line_of_blanks(text: str) -> str:
    return _BLANKS.sub(" ", text.lower())


def _views(text: str) -> Iterator[tuple[str, str]]:
    """(view, kind): the text as the patterns see it. "native" keeps the text's scripts;
    "folded" has Latin look-alikes made Latin; "phrases" is folded with markup taken out,
    searched for the Latin phrases only (fake turns and verdicts keep their marks)."""
    plain = _no_format_characters(text)
    if not plain.isascii():  # the other scripts' patterns need other scripts
        yield _one_line_of_blanks(plain), "native"
    folded = plain.lower().translate(latin_lookalikes())
    yield _one_line_of_blanks(folded), "folded"
    if any(mark in folded for mark in _MARKUP):  # `ig**nore**`, `ignore_previous`
        yield _one_line_of_blanks(folded.translate(str.maketrans("", "", _MARKUP))), "phrases"
        yield _one_line_of_blanks(folded.translate(str.maketrans(_MARKUP, " " * len(_MARKUP)))), "phrases"
    # hidden text, each kind in one view made in one pass (a view per run would make an
    # answer of many short runs as many views): the whole text reversed, which reads runs
    # after a right-to-left override as a person sees them; the text in tag characters
    hidden = []
    if _RLO_RUN.search(text):
        hidden.append(text[::-1])
    if _TAG_RUN.search(text):
        hidden.append(text.translate(_tags_as_text(text)))
    decoded, budget = [], MAX_DECODED_CHARS
    for run in _BASE64_RUN.finditer(plain):
        if budget <= 0:
            break
        piece = _decoded_base64(run.group(0))
        if piece:
            budget -= len(piece)
            decoded.append(piece)
    hidden.append("\n".join(decoded))
    for view in hidden:
        if view:
            view = _no_format_characters(view).lower()
            yield _one_line_of_blanks(view.translate(latin_lookalikes())), "folded"


def _tags_as_text(text: str) -> dict[int, str]:
    """A table that reads Unicode tag characters as the ASCII they stand for, and makes
    every other character of `text` a line break."""
    return {ord(c): chr(ord(c) - 0xE0000) if "\U000e0020" <= c <= "\U000e007e" else "\n" for c in set(text)}


def _decoded_base64(run: str) -> str | None:
    """`run` decoded, when it is base64 (standard or URL-safe) of UTF-8 text, else None."""
    padded = run + "=" * (-len(run) % 4)
    for altchars in (b"+/", b"-_"):
        try:
            raw = base64.b64decode(padded, altchars=altchars, validate=True)
            text = raw.decode("utf-8")
        except (binascii.Error, ValueError):
            continue
        if text and sum(c.isprintable() or c.isspace() for c in text) >= 0.9 * len(text):
            return text
    return None


def find_injection(text: str, request: str | None = None) -> str | None:
    """The first phrase of `text` that addresses the grader, or None.

    With `request` (the text the answer replies to), a score written as a verdict
    (`score: 10`, `{"score": 9, "reason": ...}`) counts too, unless the request itself
    talks about scores or grades.
    """
    verdicts_count = request is not None and _SCORE_TALK.search(request.lower()) is None
    patterns = {
        "native": (_NATIVE, *((_VERDICT,) if verdicts_count else ())),
        "folded": (_LATIN, _TURNS, *((_VERDICT,) if verdicts_count else ())),
        "phrases": (_LATIN,),
    }
    for view, kind in _views(text):
        for pattern in patterns[kind]:
            if pattern is _LATIN and not _may_match_latin(view):
                continue
            match = pattern.search(view)
            if match is not None:
                return " ".join(match.group(0).split())
    return None
