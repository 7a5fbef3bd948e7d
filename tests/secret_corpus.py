"""A planted-secret corpus: one made-up but well-formed value of every kind of credential and
personal datum people leave in recordings, each in the context it is usually found in, and
the three encodings a text field carries it in (plain, URL-encoded, inside a JSON string).

Values are generated from a fixed seed, so no real key is ever in the repository and every
run plants the same values.
"""

from __future__ import annotations

import base64
import json
import random
import string
from dataclasses import dataclass
from urllib.parse import quote

_RNG = random.Random(20260314)
ALNUM = string.ascii_letters + string.digits


def _pick(alphabet: str, n: int) -> str:
    return "".join(_RNG.choice(alphabet) for _ in range(n))


def _b64url(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


@dataclass(frozen=True)
class Planted:
    kind: str
    text: str  # the secret in its usual context
    secrets: tuple[str, ...]  # what must not survive redaction


def _aws_secret() -> str:
    while True:
        value = _pick(ALNUM + "/+", 40)
        if ("/" in value or "+" in value) and any(c.isdigit() for c in value) and any(
                c.islower() for c in value) and any(c.isupper() for c in value):
            return value


def _pem() -> tuple[str, tuple[str, ...]]:
    lines = [_pick(ALNUM + "+/", 64) for _ in range(4)]
    body = "\n".join(lines)
    return (f"-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----",
            tuple(lines))


def _corpus() -> tuple[Planted, ...]:
    aws_id = "AKIA" + _pick(string.ascii_uppercase + string.digits, 16)
    aws_secret = _aws_secret()
    jwt = ".".join([_b64url({"alg": "HS256", "typ": "JWT"}),
                    _b64url({"sub": "1234567890", "name": "Jane", "iat": 1516239022}),
                    _pick(ALNUM + "-_", 43)])
    stripe = "sk_live_" + _pick(ALNUM, 24)
    stripe_restricted = "rk_live_" + _pick(ALNUM, 24)
    pem, pem_lines = _pem()
    webhook = ("https://hooks.slack.com/services/T" + _pick(string.ascii_uppercase, 8) + "/B"
               + _pick(string.ascii_uppercase, 8) + "/" + _pick(ALNUM, 24))
    slack_bot = "xoxb-" + _pick(string.digits, 12) + "-" + _pick(ALNUM, 24)
    github = "ghp_" + _pick(ALNUM, 36)
    openai = "sk-proj-" + _pick(ALNUM, 40)
    google = "AIza" + _pick(ALNUM + "_-", 35)
    hf_short = "hf_" + _pick(string.ascii_letters, 5) + _pick(string.digits, 3) + "Qz"
    hf_long = "hf_" + _pick(ALNUM, 34)
    ls_token = _pick("0123456789abcdef", 39) + "a"
    ls_token_2 = _pick("0123456789abcdef", 39) + "7"
    password = "Hunter2Go" + _pick(string.digits, 3)
    password_2 = "Tr0ub4dor-" + _pick(string.ascii_lowercase, 3)
    password_3 = "c0rrectH" + _pick(string.digits, 4)
    url_password = "S3cret" + _pick(ALNUM, 6)
    bearer = _pick(ALNUM, 32)
    return (
        Planted("aws_access_key", f"export AWS_ACCESS_KEY_ID={aws_id}", (aws_id,)),
        Planted("aws_access_key", f"key {aws_id} in the console", (aws_id,)),
        Planted("aws_secret_key", f"aws_secret_access_key = {aws_secret}", (aws_secret,)),
        Planted("aws_secret_key", f"the secret is {aws_secret} ok", (aws_secret,)),
        Planted("jwt", f"session {jwt}", (jwt,)),
        Planted("stripe_live_key", f"stripe key {stripe} and {stripe_restricted}",
                (stripe, stripe_restricted)),
        Planted("pem_private_key", pem, pem_lines),
        Planted("slack_webhook", f"post to {webhook}", (webhook, webhook.rsplit("/", 1)[1])),
        Planted("slack_token", f"bot {slack_bot}", (slack_bot,)),
        Planted("github_token", f"git clone with {github}", (github,)),
        Planted("openai_key", f"OPENAI_API_KEY={openai}", (openai,)),
        Planted("google_api_key", f"maps?key={google}", (google,)),
        Planted("hf_token_short", f"login {hf_short}", (hf_short,)),
        Planted("hf_token", f"HF_TOKEN={hf_long}", (hf_long,)),
        Planted("label_studio_token", f"Authorization: Token {ls_token}", (ls_token,)),
        Planted("label_studio_token", f"LABEL_STUDIO_API_KEY={ls_token_2}", (ls_token_2,)),
        Planted("label_studio_token", f"token {ls_token_2} copied", (ls_token_2,)),
        Planted("password_pwd", f"login?user=jane&pwd={password}", (password,)),
        Planted("password_passwd", f"passwd: {password_2}", (password_2,)),
        Planted("password_phrase", f"my password is {password_3}", (password_3,)),
        Planted("password_json", json.dumps({"password": password_3}), (password_3,)),
        Planted("url_credentials", f"postgres://admin:{url_password}@db.internal:5432/app",
                (url_password,)),
        Planted("bearer", f"Authorization: Bearer {bearer}", (bearer,)),
        Planted("email", "write to jane.doe@example.org today", ("jane.doe@example.org",)),
        Planted("phone", "call +1 415 555 0137 or (415) 555-0199",
                ("415 555 0137", "555-0199")),
        Planted("card_number", "pay with 4242 4242 4242 4242 now", ("4242 4242 4242 4242",)),
        Planted("card_number", "card 5555555555554444", ("5555555555554444",)),
        Planted("iban", "IBAN GB82 WEST 1234 5698 7654 32 please",
                ("GB82 WEST 1234 5698 7654 32",)),
        Planted("iban", "to DE89370400440532013000", ("DE89370400440532013000",)),
    )


CORPUS = _corpus()
ENCODINGS = ("plain", "url", "json")


def encode(text: str, encoding: str) -> str:
    if encoding == "plain":
        return text
    if encoding == "url":
        return "https://app.example.com/callback?next=" + quote(text, safe="")
    return json.dumps({"note": text, "n": 1})


def leaked(output: str, planted: Planted) -> list[str]:
    """The planted values still readable in ``output``, in any of the three encodings."""
    forms = set()
    for secret in planted.secrets:
        forms |= {secret, quote(secret, safe=""), quote(secret), json.dumps(secret)[1:-1]}
    return sorted(form for form in forms if form in output)


def every_secret() -> list[str]:
    return [secret for planted in CORPUS for secret in planted.secrets]
