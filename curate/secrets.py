"""Finding credentials and personal data in text, and replacing them with typed placeholders.

Two sources of rules, applied to one text at a time:

- the detect-secrets plugins that match a credential by its shape (AWS, Stripe, Slack, GitHub,
  GitLab, OpenAI, JWT, private keys, credentials inside URLs, ...): Yelp's maintained catalogue,
  so a new provider's key format arrives with a library update (docs/decisions.md);
- curate's own rules for what a code scanner does not look for or only finds in source-code
  syntax: e-mail addresses, phone numbers, payment cards (Luhn check), IBANs (mod-97 check),
  whole PEM private-key blocks, `password is ...` / `pwd=` / `passwd:` forms, bare AWS secret
  keys, short `hf_` tokens, Label Studio's 40-hex tokens, bearer and `Token` headers.

A text is also searched in the forms secrets hide in: percent-encoded runs (URLs, query
strings, form bodies) are decoded, redacted and re-encoded; a text that is a JSON document has
its strings redacted one by one (escaped newlines, slashes and nested JSON included).

:func:`redact_text` returns the new text and what it found; :func:`scrub` is the one-call form
for messages and log lines (with values registered by :func:`register_secret`, such as the API
key a client was given); :class:`ScrubbingFilter` applies it to every log record.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

if TYPE_CHECKING:  # detect-secrets loads on the first redaction: `curate --help` needs none
    from detect_secrets.plugins.base import BasePlugin

__all__ = ["PLACEHOLDERS", "Finding", "ScrubbingFilter", "redact_text", "register_secret",
           "scrub"]

# Kind -> placeholder. The kinds are what the redaction report counts.
PLACEHOLDERS: dict[str, str] = {
    "email": "<EMAIL>", "phone": "<PHONE>", "card_number": "<CARD_NUMBER>", "iban": "<IBAN>",
    "private_key": "<PRIVATE_KEY>", "api_key": "<API_KEY>", "token": "<TOKEN>",
    "secret": "<SECRET>", "password": "<PASSWORD>", "url_credentials": "<CREDENTIALS>",
}
# Values shorter than this that a plugin reports are parts of a match (a key's prefix group),
# not secrets: replacing every occurrence of them would shred ordinary text.
MIN_VALUE_LENGTH = 6
# A secret is never this long; a longer text is a document (an a11y tree, a DOM) and is
# scanned piecewise by the same rules (regexes are linear), only JSON parsing is skipped.
MAX_JSON_PARSE = 2_000_000


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str
    value: str


# -- curate's own rules -------------------------------------------------------------------

_KEYWORDS = (r"password|passwd|passphrase|pwd|pass|secret|token|api[_-]?key|apikey"
             r"|access[_-]?key|auth[_-]?key|private[_-]?key|client[_-]?secret|credentials?"
             r"|session[_-]?id|sessionid|x-api-key")
# The keyword may end a longer name (LABEL_STUDIO_API_KEY, aws_secret_access_key, db_pass) and
# carry a suffix (password_confirm); a quote may close the name ("pwd": ...).
_LABELLED = re.compile(
    rf"(?i)(?<![A-Za-z0-9])(?:[A-Za-z0-9]+[_-])*(?:{_KEYWORDS})(?:[_-][A-Za-z0-9]+)*"
    r"\\?[\"']?\]?\s*(?::=|=>|[:=])\s*(?:\\?[\"'`])?"
    r"(?P<value>(?<=\")[^\"\\\n]{1,200}(?=\\?\")|(?<=')[^'\\\n]{1,200}(?=')"
    r"|[^\s\"'`&,;<>\\]{3,})")
_PASSWORD_PHRASE = re.compile(
    r"(?i)\b(?:password|passwd|passcode|pwd)(?:\s+is|\s+was|\s+to)?\s*[:=]?\s+[\"'`]?"
    r"(?P<value>[^\s\"'`,;<>]{3,})")
_PEM = re.compile(
    r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"
    r"(?:.*?-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|[A-Za-z0-9+/=\s\\]*)", re.DOTALL)
_BEARER = re.compile(r"(?i)\b(?:bearer|token|basic)\s+(?P<value>[A-Za-z0-9._~+/=-]{16,})")
_HF = re.compile(r"(?<![A-Za-z0-9])hf_(?=[A-Za-z]*[0-9])(?=[0-9]*[A-Za-z])[A-Za-z0-9]{8,}")
_HEX40 = re.compile(r"(?<![A-Za-z0-9])(?=[0-9]*[a-fA-F])(?=[a-fA-F]*[0-9])[0-9a-fA-F]{40}"
                    r"(?![A-Za-z0-9])")
_KEY_PREFIXES = re.compile(
    r"(?<![A-Za-z0-9])(?:sk-(?:proj-|ant-)?[A-Za-z0-9_-]{16,}|gh[pousr]_[A-Za-z0-9]{20,}"
    r"|github_pat_[A-Za-z0-9_]{20,}|xox[abposr]-[A-Za-z0-9-]{10,}|glpat-[A-Za-z0-9_-]{20,}"
    r"|AIza[0-9A-Za-z_-]{35}|(?:sk|rk|pk)_live_[0-9A-Za-z]{16,}|whsec_[0-9A-Za-z]{16,}"
    r"|(?:A3T[A-Z0-9]|ABIA|ACCA|AKIA|ASIA)[0-9A-Z]{16}|ya29\.[0-9A-Za-z_-]{20,})")
_SLACK_WEBHOOK = re.compile(r"https?://hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9/_-]+")
# An AWS secret access key: exactly 40 characters of base64 with every character class; git
# hashes (hex) and base64 image data (longer runs) do not qualify.
_AWS_SECRET = re.compile(r"(?<![A-Za-z0-9/+=])(?=[A-Za-z0-9/+]*[/+])(?=[A-Za-z0-9/+]*[0-9])"
                         r"(?=[A-Za-z0-9/+]*[a-z])(?=[A-Za-z0-9/+]*[A-Z])[A-Za-z0-9/+]{40}"
                         r"(?![A-Za-z0-9/+=])")
_JWT = re.compile(r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")
_URL_CREDENTIALS = re.compile(r"(?i)(?<=://)(?P<value>[^\s/@:\"'<>]+:[^\s/@\"'<>]+)(?=@)")
_EMAIL = re.compile(r"(?<![A-Za-z0-9._%+:/-])[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")
_CARD = re.compile(r"(?<![0-9])(?:[0-9][ -]?){12,18}[0-9](?![0-9])")
# A phone number stands alone: not one group of a longer digit run (a card, an ISBN, a table).
_PHONE = re.compile(r"(?<![\w.+/-])(?<![0-9] )(?:\+[0-9]{1,3}[ .-]?)?(?:\([0-9]{2,4}\)[ .-]?"
                    r"|[0-9]{2,4}[ .-])[0-9]{3,4}[ .-][0-9]{3,4}(?![\w.-])(?! [0-9])"
                    r"|(?<![\w+])\+[0-9]{10,14}(?![\w])")
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?"
                   r"(?![A-Za-z0-9])")
_URL_CHAR = r"(?:[^\s%\"'<>]|%[0-9A-Fa-f]{2})"
_PERCENT_RUN = re.compile(rf"{_URL_CHAR}*%[0-9A-Fa-f]{{2}}{_URL_CHAR}*")


def _luhn_ok(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _card_ok(value: str) -> bool:
    digits = re.sub(r"\D", "", value)
    return 13 <= len(digits) <= 19 and _luhn_ok(digits) and len(set(digits)) > 1


def _iban_ok(value: str) -> bool:
    compact = value.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    moved = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def _phone_ok(value: str) -> bool:
    return 10 <= sum(c.isdigit() for c in value) <= 15


def _always(value: str) -> bool:
    return True


def _labelled_ok(value: str) -> bool:
    # `token_count: 170`, `secret_level=3`: a short number after a keyword is a count.
    return not value.isdigit() or len(value) >= 6


class _Probe:
    """What the rules' guards ask of one text, computed once: its length, its digit count and,
    for an ASCII text, its lower-case form (a non-ASCII text gets no lower-case form, so the
    case-insensitive guards let it through: `(?i)` matches U+017F as "s", which str.lower()
    does not turn into one)."""

    __slots__ = ("digits", "length", "lower", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.length = len(text)
        self.digits = sum(map(text.count, "0123456789"))
        self.lower = text.lower() if text.isascii() else None

    def has(self, *needles: str) -> bool:
        return any(needle in self.text for needle in needles)

    def has_word(self, *words: str) -> bool:
        """Whether a case-insensitive rule for one of ``words`` can match."""
        return self.lower is None or any(word in self.lower for word in words)


def _anywhere(probe: _Probe) -> bool:
    return True


@dataclass(frozen=True)
class _Rule:
    kind: str
    pattern: re.Pattern[str]
    valid: Callable[[str], bool] = _always
    # A necessary condition for a match, far cheaper than the pattern: most texts (actions,
    # coordinates, ground truths) hold none of a rule's literal parts, so its scan is skipped.
    # Each guard only asks for what every match of its pattern contains; recall is unchanged.
    worth_scanning: Callable[[_Probe], bool] = _anywhere

    def spans(self, text: str) -> Iterator[tuple[int, int, str]]:
        for match in self.pattern.finditer(text):
            group = "value" if "value" in self.pattern.groupindex else 0
            start, end = match.span(group)
            if end > start and self.valid(match.group(group)):
                yield start, end, self.kind

# Order matters only for ties: spans are merged, the earliest and longest wins.
_RULES: tuple[_Rule, ...] = (
    _Rule("private_key", _PEM, worth_scanning=lambda p: "-----BEGIN" in p.text),
    _Rule("url_credentials", _URL_CREDENTIALS,
          worth_scanning=lambda p: "://" in p.text and "@" in p.text),
    _Rule("api_key", _SLACK_WEBHOOK, worth_scanning=lambda p: "hooks.slack.com/" in p.text),
    _Rule("token", _JWT, worth_scanning=lambda p: "eyJ" in p.text),
    _Rule("api_key", _KEY_PREFIXES, worth_scanning=lambda p: p.has(
        "sk-", "gh", "github_pat_", "xox", "glpat-", "AIza", "_live_", "whsec_", "A3T", "ABIA",
        "ACCA", "AKIA", "ASIA", "ya29.")),
    _Rule("api_key", _HF, worth_scanning=lambda p: "hf_" in p.text),
    _Rule("token", _BEARER, worth_scanning=lambda p: p.has_word("bearer", "token", "basic")),
    _Rule("secret", _AWS_SECRET,
          worth_scanning=lambda p: p.length >= 40 and ("/" in p.text or "+" in p.text)),
    _Rule("token", _HEX40, worth_scanning=lambda p: p.length >= 40),
    _Rule("password", _PASSWORD_PHRASE, worth_scanning=lambda p: p.has_word("pass", "pwd")),
    # Every keyword holds one of these words; the label is followed by ":" or "=".
    _Rule("secret", _LABELLED, _labelled_ok,
          lambda p: (":" in p.text or "=" in p.text) and p.has_word(
              "pass", "pwd", "secret", "token", "key", "credential", "session")),
    _Rule("email", _EMAIL, worth_scanning=lambda p: "@" in p.text),
    _Rule("iban", _IBAN, _iban_ok, lambda p: p.digits >= 2 and p.length >= 15),
    _Rule("card_number", _CARD, _card_ok, lambda p: p.digits >= 13),
    # _phone_ok wants 10 digits in the match, so the text holds at least as many.
    _Rule("phone", _PHONE, _phone_ok, lambda p: p.digits >= 10),
)

@lru_cache(maxsize=1)
def _plugins() -> tuple[BasePlugin, ...]:
    """detect-secrets plugins that recognise a credential by its own shape. The entropy plugins
    are left out: made for source code, they flag most English words in free text."""
    from detect_secrets.plugins.artifactory import ArtifactoryDetector
    from detect_secrets.plugins.aws import AWSKeyDetector
    from detect_secrets.plugins.azure_storage_key import AzureStorageKeyDetector
    from detect_secrets.plugins.basic_auth import BasicAuthDetector
    from detect_secrets.plugins.discord import DiscordBotTokenDetector
    from detect_secrets.plugins.github_token import GitHubTokenDetector
    from detect_secrets.plugins.gitlab_token import GitLabTokenDetector
    from detect_secrets.plugins.jwt import JwtTokenDetector
    from detect_secrets.plugins.keyword import KeywordDetector
    from detect_secrets.plugins.mailchimp import MailchimpDetector
    from detect_secrets.plugins.npm import NpmDetector
    from detect_secrets.plugins.openai import OpenAIDetector
    from detect_secrets.plugins.private_key import PrivateKeyDetector
    from detect_secrets.plugins.pypi_token import PypiTokenDetector
    from detect_secrets.plugins.sendgrid import SendGridDetector
    from detect_secrets.plugins.slack import SlackDetector
    from detect_secrets.plugins.square_oauth import SquareOAuthDetector
    from detect_secrets.plugins.stripe import StripeDetector
    from detect_secrets.plugins.telegram_token import TelegramBotTokenDetector
    from detect_secrets.plugins.twilio import TwilioKeyDetector

    return (
        ArtifactoryDetector(), AWSKeyDetector(), AzureStorageKeyDetector(), BasicAuthDetector(),
        DiscordBotTokenDetector(), GitHubTokenDetector(), GitLabTokenDetector(),
        JwtTokenDetector(), KeywordDetector(), MailchimpDetector(), NpmDetector(),
        OpenAIDetector(), PrivateKeyDetector(), PypiTokenDetector(), SendGridDetector(),
        SlackDetector(), SquareOAuthDetector(), StripeDetector(), TelegramBotTokenDetector(),
        TwilioKeyDetector(),
    )


_PLUGIN_KIND = {"Secret Keyword": "secret", "Basic Auth Credentials": "url_credentials",
                "JSON Web Token": "token", "Private Key": "private_key"}


@lru_cache(maxsize=1)
def _keyword_guards() -> tuple[re.Pattern[str], re.Pattern[str] | None]:
    """detect-secrets' KeywordDetector keywords, searched alone: every regex of the detector
    holds one of them (case-insensitively; some of its regexes are case-sensitive, a subset),
    so a text without one holds no keyword assignment, and the detector's dozen longer regexes,
    most of a scan's cost, are skipped. The second pattern searches an ASCII text's lower-case
    form, ten times faster than the case-insensitive one; None if a keyword is not lower-case."""
    from detect_secrets.plugins import keyword

    words = "|".join(keyword.DENYLIST)
    return re.compile(words, re.IGNORECASE), re.compile(words) if words == words.lower() else None


def _may_hold_keyword(probe: _Probe) -> bool:
    anycase, lower = _keyword_guards()
    if lower is not None and probe.lower is not None:
        return bool(lower.search(probe.lower))
    return bool(anycase.search(probe.text))


@lru_cache(maxsize=1)
def _plugin_table() -> tuple[tuple[BasePlugin, str, bool], ...]:
    """Each plugin with the kind it reports and whether it is the keyword detector."""
    from detect_secrets.plugins.keyword import KeywordDetector

    return tuple((plugin, _PLUGIN_KIND.get(str(plugin.secret_type), "api_key"),
                  isinstance(plugin, KeywordDetector)) for plugin in _plugins())


def _plugin_spans(probe: _Probe) -> Iterator[tuple[int, int, str]]:
    text = probe.text
    for plugin, kind, keywords in _plugin_table():
        if keywords and not _may_hold_keyword(probe):
            continue
        for value in set(plugin.analyze_string(text)):
            if len(value) < MIN_VALUE_LENGTH:
                continue
            start = text.find(value)
            while start >= 0:
                yield start, start + len(value), kind
                start = text.find(value, start + len(value))


def _merge(spans: Iterable[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    merged: list[tuple[int, int, str]] = []
    for start, end, kind in sorted(spans, key=lambda s: (s[0], -s[1])):
        if merged and start < merged[-1][1]:
            last = merged[-1]
            merged[-1] = (last[0], max(last[1], end), last[2])
        else:
            merged.append((start, end, kind))
    return merged


def _replace_spans(text: str, found: list[Finding]) -> str:
    probe = _Probe(text)
    found_spans = [span for rule in _RULES if rule.worth_scanning(probe)
                   for span in rule.spans(text)]
    spans = _merge([*found_spans, *_plugin_spans(probe)])
    if not spans:
        return text
    pieces: list[str] = []
    position = 0
    for start, end, kind in spans:
        pieces.append(text[position:start])
        pieces.append(PLACEHOLDERS[kind])
        found.append(Finding(kind, text[start:end]))
        position = end
    pieces.append(text[position:])
    return "".join(pieces)


def _percent_runs(text: str, found: list[Finding]) -> str:
    def decode_redact(match: re.Match[str]) -> str:
        run = match.group(0)
        decoded = unquote(run.replace("+", " "))
        redacted = _plain(decoded, found)
        return run if redacted == decoded else quote(redacted, safe="/:?&=#@")
    return _PERCENT_RUN.sub(decode_redact, text)


def _plain(text: str, found: list[Finding]) -> str:
    text = _replace_spans(text, found)
    if "%" in text:
        text = _percent_runs(text, found)
    return text


def _json_strings(value: Any, found: list[Finding]) -> Any:
    if isinstance(value, str):
        return _redact(value, found)
    if isinstance(value, list):
        return [_json_strings(item, found) for item in value]
    if isinstance(value, dict):
        return {key: _json_strings(item, found) for key, item in value.items()}
    return value


def _redact(text: str, found: list[Finding]) -> str:
    text = _plain(text, found)
    head = text.lstrip()[:1]
    if head in ("{", "[", '"') and "\\" in text and len(text) <= MAX_JSON_PARSE:
        # Escapes (\n inside a PEM block, \/ in a URL, nested JSON) hide secrets from the
        # plain rules: redact the decoded strings, write the document back in the same style.
        try:
            document = json.loads(text)
        except ValueError:
            return text
        cleaned = _json_strings(document, found)
        if cleaned != document:
            compact = ", " not in text and ": " not in text
            text = json.dumps(cleaned, ensure_ascii=False,
                              separators=(",", ":") if compact else None)
    return text


@lru_cache(maxsize=1 << 16)
def _cached(text: str) -> tuple[str, tuple[Finding, ...]]:
    found: list[Finding] = []
    return _redact(text, found), tuple(found)


def redact_text(text: str) -> tuple[str, tuple[Finding, ...]]:
    """The text with every secret and personal datum replaced, and what was replaced."""
    if not text:
        return text, ()
    return _cached(text)


# -- messages and logs ----------------------------------------------------------------------

_REGISTERED: set[str] = set()


def register_secret(value: str | None) -> None:
    """A value that must never be printed (an API key curate was given), whatever its shape."""
    if value and len(value) >= 4:
        _REGISTERED.add(value)


def scrub(text: str) -> str:
    """The text safe to print: registered secrets and everything redact_text finds replaced."""
    for value in sorted(_REGISTERED, key=len, reverse=True):
        if value in text:
            text = text.replace(value, "<REDACTED>")
    return redact_text(text)[0]


class ScrubbingFilter(logging.Filter):
    """Scrubs each record's final message (and its traceback text) before a handler writes
    it, so debug output of HTTP libraries (headers, bodies) cannot leak a credential."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = str(record.msg)
        record.msg, record.args = scrub(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        return True
