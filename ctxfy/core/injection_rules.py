"""The pattern table behind :mod:`ctxfy.core.injection`, and the matcher that runs it.

Matching is built for speed on long, benign text, because that is what almost every request
carries:

* the text is lower-cased once (cheaper than case-insensitive expressions);
* every expression starts with a literal (``ignore``, ``your``, ``<|``, a newline...) so
  the regular-expression engine can skip ahead to candidates instead of trying each
  position;
* every rule is gated by trigger words checked with ``in`` (much faster than any
  expression): a word that every match of the rule contains, so a rule whose triggers are
  all absent cannot match and is skipped;
* a rule may anchor on its rarest word and look *backwards* for the rest (``reveal ... your
  system prompt`` anchors on ``your``), within a fixed window;
* every repetition is bounded or possessive, so no expression backtracks catastrophically
  and the whole scan is linear in the length of the text.
"""

import re
from collections.abc import Iterator

import attrs

__all__ = ["find_patterns"]

_WORD = r"[\w'’-]++"  # noqa: RUF001 - the typographic apostrophe is meant
_FLAGS = re.MULTILINE
_WORD_CHAR_RE = re.compile(r"\w")
_CJK_START = "\u3000"  # scripts written without spaces start around here
_BEFORE_WINDOW = 80


@attrs.frozen
class _Rule:
    """One way a pattern shows itself.

    Attributes:
        pattern_id: The pattern reported.
        regexes: Forward expressions, each starting with a literal.
        triggers: The rule runs only if one of these occurs in the (lower-cased) text; every
            match of every expression contains one of them.
        before: When set, must match the text just before the forward match (it ends
            with an end-of-text anchor); the finding then starts where it starts.
        imperative: The finding must follow :func:`_is_order`: an order, not a description.
        line_start: The expressions start with a newline and run on the text preceded by
            one, so that the engine can jump from line to line.
        exact: When set, runs only if this text occurs with this exact case, and the
            match must contain it (``DAN`` the jailbreak, not Dan the colleague).
    """

    pattern_id: str
    regexes: tuple[re.Pattern[str], ...]
    triggers: tuple[str, ...]
    before: re.Pattern[str] | None = None
    imperative: bool = False
    line_start: bool = False
    exact: str | None = None


def _rx(*parts: str) -> re.Pattern[str]:
    return re.compile("".join(parts), _FLAGS)


def _each(prefixes: tuple[str, ...], tail: str) -> tuple[re.Pattern[str], ...]:
    return tuple(_rx(prefix, tail) for prefix in prefixes)


# What must come right before an imperative for it to be an order to the model: the start
# of a line, punctuation, or a word such as "please", "now", "and" or "you must".
_LEAD_PUNCTUATION = frozenset(".!?:;,-–—*>\"'“”«»([]|#/")  # noqa: RUF001 - dashes on purpose
# fmt: off
_LEAD_WORDS = frozenset((
    "please", "now", "and", "then", "so", "just", "simply", "also", "first", "instead",
    "kindly", "immediately", "hereby", "always",
))
# fmt: on
_LEAD_AFTER_YOU = frozenset(["must", "should", "will", "shall", "can"])
_LEAD_PHRASES = frozenset({("need", "to"), ("have", "to"), ("are", "to")})
_LEAD_WINDOW = 40


def _is_order(text: str, start: int) -> bool:
    head = text[max(0, start - _LEAD_WINDOW) : start]
    stripped = head.rstrip()
    if not stripped:
        return start <= _LEAD_WINDOW or "\n" in head
    if "\n" in head[len(stripped) :] or stripped[-1] in _LEAD_PUNCTUATION:
        return True
    words = stripped.split()[-3:]
    if words[-1] in _LEAD_WORDS:
        return True
    if len(words) >= 2 and words[-2] == "you" and words[-1] in _LEAD_AFTER_YOU:
        return True
    return len(words) == 3 and words[0] == "you" and (words[1], words[2]) in _LEAD_PHRASES


# The end of a clause: what may follow a bare object such as "your prompt".
_CLAUSE_END = r"(?=[ \t]*+(?:[.,;:!?\"')\]]|$|and\b|verbatim\b|exactly\b|word\s++for\s++word))"
_AI_NOUN = r"(?:ai|assistant|model|chatbot|llm|bot|gpt|chatgpt|version|mode)\b"

_IGNORE_TAIL = (
    rf"\s++(?:(?:{_WORD}\s++){{0,3}}?"
    r"(?:previous|prior|above|earlier|preceding|foregoing|former|initial|original|your)"
    rf"(?:\s++{_WORD}){{0,2}}?\s++(?:instructions?|directives?|prompts?)\b"
    rf"|(?:{_WORD}\s++){{0,2}}?all(?:\s++{_WORD}){{0,2}}?\s++(?:instructions?|directives?)\b"
    r"|(?:all\s++|everything\s++)?(?:of\s++)?the\s++above(?=[ \t]*+(?:[.,;:!]|and\b|$))"
    r"|everything\s++(?:above|before|so\s++far"
    r"|you(?:'ve|\s++have)?\s++(?:been\s++)?(?:told|taught|given))"
    r"|your\s++(?:\w++\s++){0,2}?(?:guidelines|rules|restrictions|programming|training"
    r"|filters|policies|safety)\b)"
)

_FOREIGN_IGNORE = _rx(
    r"(?:ignore[rz]?|oublie[rz]?)\s++(?:toutes\s++)?(?:les|tes|vos)\s++",
    r"(?:instructions|consignes)\s++(?:précédentes|antérieures|ci-dessus)",
    r"|(?:ignore[rz]?|oublie[rz]?)\s++toutes\s++(?:les|tes|vos)\s++(?:instructions|consignes)",
    r"|(?:ignora|ignore|olvida)\s++(?:todas\s++)?(?:las\s++)?instrucciones\s++",
    r"(?:anteriores|previas)",
    r"|(?:ignoriere|ignorieren\s++sie|vergiss|vergessen\s++sie)\s++(?:alle\s++)?",
    r"(?:vorherigen|bisherigen|vorigen|obigen)\s++(?:anweisungen|instruktionen|befehle)",
    r"|(?:ignora|dimentica)\s++(?:tutte\s++)?le\s++istruzioni\s++precedenti",
    r"|(?:ignore|esqueça|esqueca)\s++(?:todas\s++)?as\s++instruções\s++anteriores",
    r"|negeer\s++(?:alle\s++)?(?:vorige|eerdere)\s++instructies",
    r"|(?:игнорируй|игнорируйте|забудь|забудьте)\s++(?:все\s++)?",
    r"(?:предыдущие|прежние|вышеуказанные)\s++(?:инструкции|указания)",
    r"|(?:忽略|无视|忘记|忽视|忘掉)掉?(?:所有|全部)?的?(?:之前|以前|先前|上面|上述|前面)的?",
    r"(?:所有|全部)?的?(?:指令|指示|提示词|提示|说明)",
    r"|(?:以前|前|上記|これまで)の(?:すべての|全ての)?(?:指示|命令|プロンプト)を",
    r"(?:すべて|全て)?(?:無視|忘れ)",
)

# fmt: off
_FOREIGN_TRIGGERS = (
    "ignor", "oubli", "olvid", "vergiss", "vergessen", "dimentic", "esque", "negeer", "игнор",
    "забуд", "忽", "无视", "忘", "無視",
)
# fmt: on

_RULES: tuple[_Rule, ...] = (
    _Rule(
        "chat_template_token",
        (
            _rx(
                r"<\|\s*+(?:im_start|im_end|im_sep|system|user|assistant|endoftext",
                r"|begin_of_text|end_of_text|start_header_id|end_header_id|eot_id|eom_id",
                r"|channel|message|return)\s*+\|>",
            ),
            _rx(r"\[/?inst\]"),
            _rx(r"<</?sys>>"),
            _rx(r"<(?:start|end)_of_turn>"),
        ),
        triggers=("<|", "inst]", "sys>>", "_of_turn>"),
    ),
    _Rule(
        "role_header",
        (
            _rx(
                r"\n[ \t]*+(?:(?:human|assistant)[ \t]*+:",
                r"|\#{1,6}[ \t]*+(?:system|assistant|human|developer)",
                r"(?:[ \t]++(?:prompt|message|instructions?))?[ \t]*+:?[ \t]*+$",
                r"|\#{1,6}[ \t]*+(?:instructions?|response)[ \t]*+:[ \t]*+$",
                r"|system[ \t]*+:[ \t]*+(?:you|your|ignore|disregard|forget|override",
                r"|from\s++now\s++on|new\s++instructions|the\s++(?:assistant|ai|model))\b)",
            ),
        ),
        triggers=("\n",),  # always there: the engine jumps from line start to line start
        line_start=True,
    ),
    _Rule(
        "ignore_instructions",
        _each(("ignore", "disregard", "forget"), _IGNORE_TAIL),
        triggers=("ignore", "disregard", "forget"),
        imperative=True,
    ),
    _Rule(
        "ignore_instructions",
        (_FOREIGN_IGNORE,),
        triggers=_FOREIGN_TRIGGERS,
    ),
    _Rule(
        "role_override",
        (
            _rx(
                rf"you\s++(?:are\s++now\s++(?:{_WORD}\s++){{0,3}}?",
                r"(?:jailbroken|jailbreak|uncensored|unchained|evil\s++ai",
                rf"|(?:unrestricted|unfiltered)(?:\s++{_AI_NOUN}|{_CLAUSE_END})",
                r"|in\s++(?:developer|god|jailbreak|dan)\s++mode)",
                r"|are\s++(?:now\s++)?no\s++longer\s++(?:an?\s++)?(?:ai|assistant",
                r"|language\s++model|chatbot|claude|chatgpt|gpt)\b",
                rf"|are\s++(?:now\s++)?no\s++longer\s++(?:bound|restricted)(?:\s++{_WORD}){{0,4}}?",
                r"\s++(?:rules|guidelines|restrictions|policies|instructions|filters|ethics)\b",
                r"|(?:have|are\s++under)\s++no\s++(?:ethical|moral)\s++",
                r"(?:restrictions|guidelines|filters|limits|limitations|policies|rules)\b)",
            ),
            _rx(
                r"pretend\s++(?:that\s++)?you\s++(?:are\s++not\s++an?\s++(?:ai|assistant)",
                r"|have\s++no\s++(?:restrictions|rules|guidelines|filters|limits))\b",
            ),
            _rx(r"jailbreak\s++mode\b"),
        ),
        triggers=("you", "pretend", "jailbreak"),
    ),
    _Rule(
        "role_override",
        (_rx(rf"(?:jailbroken|unrestricted|unfiltered|uncensored|evil)\s++{_AI_NOUN}"),),
        triggers=("jailbroken", "unrestricted", "unfiltered", "uncensored", "evil"),
        before=_rx(
            r"(?:act|acting|behave|respond|answer|roleplay|role-play)\s++(?:as|like)\s++",
            r"(?:an?\s++)?\Z",
        ),
    ),
    _Rule(
        "role_override",
        (
            _rx(
                r"(?:you\s++are(?:\s++now)?|act(?:ing)?\s++as|pretend\s++to\s++be",
                r"|roleplay\s++as|enable|activate)\s++dan\b",
            ),
            _rx(r"dan\s++(?:mode|prompt|jailbreak)\b"),
        ),
        triggers=("dan",),
        exact="DAN",
    ),
    _Rule("role_override", (_rx(r"do\s++anything\s++now\b"),), ("do",), exact="Do Anything Now"),
    _Rule(
        "prompt_exfiltration",
        (
            _rx(
                rf"your\s++(?:{_WORD}\s++){{0,2}}?",
                r"(?:system\s++(?:prompt|message|instructions)\b",
                r"|(?:initial|original|hidden|secret|full|exact|complete|first)\s++",
                rf"(?:prompt|instructions)\b|prompt{_CLAUSE_END})",
            ),
        ),
        triggers=("your",),
        before=_rx(
            r"(?:reveal|print|show|display|output|repeat|leak|dump|disclose|expose|recite",
            r"|tell\s++me|give\s++me|share|send\s++me|write\s++out|spell\s++out|translate)",
            rf"\s++(?:me\s++)?(?:{_WORD}\s++){{0,3}}?\Z",
        ),
        imperative=True,
    ),
    _Rule(
        "prompt_exfiltration",
        (
            _rx(
                r"what\s++(?:is|was|are|were)\s++your\s++(?:\w++\s++){0,2}?",
                r"(?:system\s++prompt|system\s++message|initial\s++(?:prompt|instructions)",
                rf"|original\s++instructions|hidden\s++instructions){_CLAUSE_END}",
            ),
            _rx(r"repeat\s++(?:all\s++)?(?:of\s++)?the\s++words\s++above\b"),
        ),
        triggers=("what", "repeat"),
    ),
    _Rule(
        "prompt_exfiltration",
        (
            _rx(
                r"system\s++(?:prompt|message)\s++(?:verbatim|word\s++for\s++word|above",
                r"|you\s++(?:were|have\s++been)\s++given)",
            ),
        ),
        triggers=("system",),
        before=_rx(
            r"(?:reveal|print|output|repeat|leak|dump|disclose|recite)\s++(?:me\s++)?",
            r"(?:the\s++)?\Z",
        ),
    ),
    # "<" or a look-alike the renderer also escapes (see ctxfy.core.prompt.DELIMITER_OPENERS).
    _Rule(
        "delimiter_forgery",
        (_rx(r"[<\u2039\u2329\u3008\u27e8\u02c2\u1438]\s*+/?\s*+user_input\b"),),
        ("user_input",),
    ),
)


def _starts_inside_word(text: str, start: int) -> bool:
    return bool(start) and text[start] < _CJK_START and bool(_WORD_CHAR_RE.match(text, start - 1))


def _rule_span(rule: _Rule, text: str, original: str | None) -> tuple[int, int] | None:
    for regex in rule.regexes:
        for match in regex.finditer(text):
            start, end = match.span()
            if original is not None and str(rule.exact) not in original[start:end]:
                continue
            if rule.before is not None:
                window = max(0, start - _BEFORE_WINDOW)
                head = rule.before.search(text, window, start)
                if head is None:
                    continue
                start = head.start()
            if not rule.line_start and _starts_inside_word(text, start):
                continue  # "unforgettable previous instructions"
            if rule.imperative and not _is_order(text, start):
                continue
            return start, end
    return None


def find_patterns(folded: str) -> Iterator[tuple[str, str]]:
    """Yield ``(pattern_id, matched text)`` for each rule that matches ``folded``.

    Args:
        folded: The text, NFKC-normalised.

    Yields:
        One pair per matching rule, in table order (a pattern may come more than once).
    """
    lowered = folded.lower()
    # Excerpts keep the original case when lower-casing kept every offset.
    source = folded if len(lowered) == len(folded) else lowered
    with_newline = "\n" + lowered
    for rule in _RULES:
        if rule.exact is not None and rule.exact not in folded:
            continue
        text = with_newline if rule.line_start else lowered
        for trigger in rule.triggers:
            if trigger in text:
                break
        else:
            continue
        exact_in = folded if rule.exact is not None and source is folded else None
        span = _rule_span(rule, text, exact_in)
        if span is None:
            continue
        start, end = span
        if rule.line_start:
            start, end = max(0, start - 1), end - 1
        yield rule.pattern_id, source[start:end]
