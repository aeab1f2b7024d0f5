"""The character policy applied to every string argument, and the error value it reports.

Prompt arguments reach a language model, so characters that hide or reorder text are not
harmless formatting: they are how "Trojan Source" (bidirectional overrides, CVE-2021-42574)
and "ASCII smuggling" (Unicode tag characters) attacks hide instructions from a human
reviewer. The policy, applied by :func:`clean_text`:

* **rejected** — NUL and other C0/C1 control characters except tab, LF and CR; the
  bidirectional embedding, override, isolate and mark controls (U+202A to U+202E,
  U+2066 to U+2069, U+200E, U+200F); the tag characters (U+E0000 to U+E007F);
* **stripped** — invisible characters with no business in a prompt: zero-width space
  (U+200B), word joiner (U+2060), byte-order mark (U+FEFF), Mongolian vowel separator
  (U+180E) and soft hyphen (U+00AD);
* **kept** — zero-width joiner and non-joiner (U+200D, U+200C), which emoji sequences and
  several scripts (Persian, Arabic, Indic) need;
* **normalised** — everything else, to Unicode NFC.

Other default-ignorable characters (:data:`DEFAULT_IGNORABLE_RANGES`: variation selectors,
the combining grapheme joiner, Hangul fillers...) are kept, since emoji and several scripts
use them, but the delimiter escaping (:mod:`ctxfy.core.prompt`) and the injection detector
read text as if they were not there.

:func:`clean_value` applies the same policy to every string inside a JSON value (list
items, mapping keys and values), for arguments whose type the component checks itself.
"""

import re
import unicodedata

import attrs

# Unicode bidirectional embedding/override/isolate controls (Trojan Source, CVE-2021-42574).
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")
#: Invisible characters with no legitimate use inside a prompt argument: they are stripped.
STRIPPED_INVISIBLES = frozenset("\u200b\u2060\ufeff\u180e\u00ad")
#: Unicode's ``Default_Ignorable_Code_Point`` property (DerivedCoreProperties.txt, unchanged
#: from Unicode 9 to 16), as inclusive ranges: characters a renderer shows as nothing.
DEFAULT_IGNORABLE_RANGES: tuple[tuple[int, int], ...] = (
    (0x00AD, 0x00AD),  # soft hyphen
    (0x034F, 0x034F),  # combining grapheme joiner
    (0x061C, 0x061C),  # Arabic letter mark
    (0x115F, 0x1160),  # Hangul choseong and jungseong fillers
    (0x17B4, 0x17B5),  # Khmer inherent vowels
    (0x180B, 0x180F),  # Mongolian free variation selectors and vowel separator
    (0x200B, 0x200F),  # zero-width space, joiners, LRM, RLM
    (0x202A, 0x202E),  # bidi embeddings and overrides
    (0x2060, 0x206F),  # word joiner, invisible operators, bidi isolates, deprecated formats
    (0x3164, 0x3164),  # Hangul filler
    (0xFE00, 0xFE0F),  # variation selectors
    (0xFEFF, 0xFEFF),  # zero-width no-break space (byte-order mark)
    (0xFFA0, 0xFFA0),  # half-width Hangul filler
    (0xFFF0, 0xFFF8),  # unassigned
    (0x1BCA0, 0x1BCA3),  # shorthand format controls
    (0x1D173, 0x1D17A),  # musical beam and phrase controls
    (0xE0000, 0xE0FFF),  # tags, variation selectors supplement, unassigned
)
#: A character class matching any one default-ignorable character.
DEFAULT_IGNORABLE_CLASS = (
    "[" + "".join(f"{chr(low)}-{chr(high)}" for low, high in DEFAULT_IGNORABLE_RANGES) + "]"
)
_CONTROLS = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
_BIDI = "".join(sorted(BIDI_CONTROLS))
_TAGS = "\U000e0000-\U000e007f"
_INVISIBLES = "".join(sorted(STRIPPED_INVISIBLES))
_CONTROL_RE = re.compile(f"[{_CONTROLS}]")
_BIDI_RE = re.compile(f"[{_BIDI}]")
_TAG_RE = re.compile(f"[{_TAGS}]")
_INVISIBLE_RE = re.compile(f"[{_INVISIBLES}]")
# One pass finds whether anything at all needs a closer look (the common case is no).
_SUSPECT_RE = re.compile(f"[{_CONTROLS}{_BIDI}{_TAGS}{_INVISIBLES}]")
# In ASCII text only C0 controls and DEL can be suspect.
_ASCII_ALLOWED = bytes(range(0x20, 0x7F)) + b"\t\n\r"


@attrs.frozen
class FieldError:
    """One problem with one argument.

    Attributes:
        field: The argument's name (``"*"`` for the request as a whole).
        rule: A stable machine-readable rule name, e.g. ``"required"`` or ``"max_length"``.
        message: A human sentence naming the field and the rule.
    """

    field: str
    rule: str
    message: str

    def to_dict(self) -> dict[str, str]:
        """Return the error as a JSON-ready mapping."""
        return {"field": self.field, "rule": self.rule, "message": self.message}


def is_clean_ascii(text: str) -> bool:
    """Return whether ``text`` is ASCII with no control character other than tab, LF and CR.

    Such text is what most arguments are, and :func:`clean_text` returns it unchanged and
    without error; this check is several times faster than the policy's general path.

    Args:
        text: The raw value.

    Returns:
        Whether the text is clean ASCII.

    Example:
        >>> is_clean_ascii("Ship it " + chr(9) + "now"), is_clean_ascii("a" + chr(0))
        (True, False)
        >>> is_clean_ascii("Café")
        False
    """
    # Deleting every allowed byte leaves nothing exactly when no control character is there.
    return text.isascii() and not text.encode("ascii").translate(None, _ASCII_ALLOWED)


def clean_text(field: str, text: str) -> tuple[str, list[FieldError]]:
    """Apply the character policy to one string.

    The text is normalised to NFC and invisible smuggling characters are stripped. NUL and
    other C0/C1 control characters (except tab, LF and CR), bidirectional override and isolate
    controls, and Unicode tag characters are rejected.

    Args:
        field: The argument name, used in error messages.
        text: The raw value.

    Returns:
        The cleaned text and the list of errors (empty when the text is acceptable).

    Example:
        >>> clean_text("objective", "Cafe" + chr(0x301) + chr(0x200B) + " menu")
        ('Café menu', [])
        >>> clean_text("objective", "a" + chr(0x202E) + "b")[1][0].rule
        'bidi_control'
    """
    if is_clean_ascii(text):
        return text, []  # ASCII is already NFC
    if not text.isascii() and _SUSPECT_RE.search(text) is None:
        # The quick check inside normalize makes NFC cheap for text that is already NFC.
        return unicodedata.normalize("NFC", text), []
    errors: list[FieldError] = []
    if _CONTROL_RE.search(text):
        errors.append(
            FieldError(
                field,
                "control_character",
                f"{field} contains a control character (only tab, LF and CR are allowed)",
            )
        )
    if _BIDI_RE.search(text):
        errors.append(
            FieldError(
                field,
                "bidi_control",
                f"{field} contains a Unicode bidirectional control character",
            )
        )
    if _TAG_RE.search(text):
        errors.append(
            FieldError(
                field, "tag_character", f"{field} contains an invisible Unicode tag character"
            )
        )
    cleaned = _INVISIBLE_RE.sub("", text)
    return unicodedata.normalize("NFC", cleaned), errors


#: How deeply :func:`clean_value` follows nested lists and mappings before refusing a value.
MAX_NESTING = 32


def clean_value(field: str, value: object) -> tuple[object, list[FieldError]]:
    """Apply the character policy to every string inside a JSON value.

    Used for arguments whose type the component checks itself (booleans, numbers, objects,
    unions of a plain FastMCP tool): strings, list items and mapping values are cleaned
    with :func:`clean_text`; mapping keys are checked but passed on as sent, since they may
    name something the component looks up, so a key holding a character the policy would
    strip is refused (rule ``invisible_character``); other values pass unchanged.

    Args:
        field: The argument name, used in error messages (``notes[2]``, ``meta.owner``).
        value: The raw JSON value.

    Returns:
        The value with every string normalised, and the list of errors. A value nested
        more than :data:`MAX_NESTING` levels deep is refused with rule ``max_depth``.

    Example:
        >>> clean_value("meta", {"owner": "Zu" + chr(0x308) + "rich", "n": 2})
        ({'owner': 'Zürich', 'n': 2}, [])
        >>> [e.field for e in clean_value("notes", ["ok", "a" + chr(0)])[1]]
        ['notes[1]']
    """
    errors: list[FieldError] = []
    cleaned = _clean_nested(field, value, 0, errors)
    return cleaned, errors


def _clean_nested(field: str, value: object, depth: int, errors: list[FieldError]) -> object:
    if isinstance(value, str):
        text, found = clean_text(field, value)
        errors.extend(found)
        return text
    if not isinstance(value, list | dict):
        return value  # numbers, booleans, null: nothing to clean
    if depth >= MAX_NESTING:
        message = f"{field} is nested more than {MAX_NESTING} levels deep"
        errors.append(FieldError(field, "max_depth", message))
        return value
    if isinstance(value, list):
        return [
            _clean_nested(f"{field}[{i}]", item, depth + 1, errors) for i, item in enumerate(value)
        ]
    out: dict[object, object] = {}
    for key, item in value.items():
        where = key_field(field, key)
        if isinstance(key, str):
            errors.extend(_check_key(where, key))
        out[key] = _clean_nested(where, item, depth + 1, errors)
    return out


def key_field(field: str, key: object) -> str:
    r"""Return how errors name the entry ``key`` of the mapping ``field``.

    The key is cut to 64 characters, and shown escaped when it holds invisible characters.

    Example:
        >>> key_field("meta", "owner"), key_field("meta", "a" + chr(0x200B))
        ('meta.owner', 'meta.a\\u200b')
    """
    shown = str(key)[:64]
    return f"{field}.{shown if shown.isprintable() else ascii(shown)[1:-1]}"


def _check_key(where: str, key: str) -> list[FieldError]:
    errors = clean_text(where, key)[1]
    # A key names something the component looks up: it cannot be silently changed, so the
    # characters the policy strips from values are refused in keys.
    if any(char in STRIPPED_INVISIBLES for char in key):
        message = (
            f"{where} is a key with an invisible character (zero-width space, word joiner, "
            "byte-order mark, Mongolian vowel separator or soft hyphen)"
        )
        errors.append(FieldError(where, "invisible_character", message))
    return errors
