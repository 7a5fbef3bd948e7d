"""Redaction: every planted secret, in every text field and every encoding, is gone from the
export (100% recall), ordinary text is left alone, and the report says what was done."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import NativeFactory
from secret_corpus import CORPUS, ENCODINGS, encode, every_secret, leaked

from curate.export import ExportParams, export
from curate.export.redact import Redactor
from curate.pipeline.build import build
from curate.secrets import redact_text, scrub


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_every_planted_secret_is_redacted_in_every_encoding(encoding: str) -> None:
    misses = []
    for planted in CORPUS:
        text = encode(planted.text, encoding)
        output, findings = redact_text(text)
        if leaked(output, planted) or not findings:
            misses.append((planted.kind, text, output))
    assert misses == [], f"{len(misses)} of {len(CORPUS)} planted secrets leaked: {misses}"


def test_secrets_inside_nested_json_and_escaped_slashes_are_redacted() -> None:
    webhook = next(p for p in CORPUS if p.kind == "slack_webhook")
    pem = next(p for p in CORPUS if p.kind == "pem_private_key")
    inner = json.dumps({"hook": webhook.text, "key": pem.text})
    outer = json.dumps({"arguments": inner}).replace("/", "\\/")
    output, _ = redact_text(outer)
    assert not leaked(output, webhook) and not leaked(output, pem)
    assert json.loads(json.loads(output)["arguments"])["key"] == "<PRIVATE_KEY>"


@pytest.mark.parametrize("text", [
    "Click the Save button in the toolbar",
    "https://www.google.com/search?q=weather+in+paris&oq=weather",
    "Open the spreadsheet and set the font size to 12 for rows 1-200",
    "max_tokens=512, token_count: 170",
    "git checkout 3f2a", "2024-03-14 10:22:31", "192.168.100.200", "ISBN 978-3-16-148410-0",
    "click(x=0.5120, y=0.3340)", "Press Ctrl+Shift+P",
])
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact_text(text) == (text, ())


def test_invalid_card_and_iban_checksums_are_not_redacted() -> None:
    assert redact_text("order 4242 4242 4242 4241")[1] == ()
    assert redact_text("ref GB82 WEST 1234 5698 7654 33")[1] == ()


def _guard_texts() -> list[str]:
    """Planted secrets in every encoding, cut at every whitespace and separator (so a guard
    sees the shortest texts still holding a match), and in case-folded and non-ASCII forms
    (`(?i)` matches U+017F as "s" and U+212A as "k", which str.lower() does not produce)."""
    texts = []
    for planted in CORPUS:
        for encoding in ENCODINGS:
            text = encode(planted.text, encoding)
            texts += [text, text.upper(), text.lower(), text.replace("s", "\u017f"),
                      text.replace("k", "\u212a")]
            texts += [piece for piece in re.split(r"[\s,;&]+", text) if piece]
    return texts


def test_a_rule_skipped_by_its_guard_would_have_found_nothing() -> None:
    """The cheap guards that skip a rule's regex (or detect-secrets' keyword detector) on
    most texts never skip one that would have matched: recall is the unguarded scan's."""
    from curate import secrets

    missed = []
    for text in _guard_texts():
        probe = secrets._Probe(text)
        for rule in secrets._RULES:
            if not rule.worth_scanning(probe) and list(rule.spans(text)):
                missed.append((rule.pattern.pattern[:40], text))
        for plugin, _, keywords in secrets._plugin_table():
            if keywords and not secrets._may_hold_keyword(probe):
                assert not list(plugin.analyze_string(text)), text
    assert missed == []


def test_disabled_redactor_keeps_the_text_but_counts_what_it_would_replace() -> None:
    redactor = Redactor(enabled=False)
    text = "mail jane.doe@example.org"
    assert redactor.text(text) == text
    assert redactor.distinct["email"] == 1


def test_scrub_replaces_registered_values_of_any_shape() -> None:
    from curate.secrets import register_secret

    register_secret("plain-words-key")
    assert "plain-words-key" not in scrub("the key plain-words-key was refused")


def _planted_episode(native_episode: NativeFactory, root: Path) -> None:
    """One episode carrying the whole corpus in every text field a recording has."""
    plain = " ; ".join(p.text for p in CORPUS)
    as_json = {f"field_{i}": p.text for i, p in enumerate(CORPUS)}
    steps = [
        {"action": {"type": "click", "x": 0.5, "y": 0.5,
                    "target": {"role": "textbox", "text": plain}},
         "frame": "frames/0.png", "next_frame": "frames/1.png", "thought": plain,
         "observation": plain},
        {"action": {"type": "type", "text": plain}, "frame": "frames/1.png",
         "next_frame": "frames/2.png", "thought": json.dumps(as_json)},
        {"action": {"type": "navigate", "url": encode(plain, "url")},
         "frame": "frames/2.png", "next_frame": "frames/0.png"},
        {"action": {"type": "tool_call", "tool_name": "http", "tool_args": as_json},
         "frame": "frames/0.png", "next_frame": "frames/1.png", "observation": plain},
        {"action": {"type": "key", "keys": ["ctrl", "s"]}, "frame": "frames/1.png",
         "next_frame": "frames/2.png"},
        {"action": "done()", "frame": "frames/2.png"},
    ]
    native_episode("planted", steps=steps, root=root,
                   meta={"instruction": plain, "terminated": True})


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


def test_no_planted_secret_survives_in_any_exported_file(native_episode: NativeFactory,
                                                         tmp_path: Path) -> None:
    recordings = tmp_path / "recordings"
    _planted_episode(native_episode, recordings)
    dist = tmp_path / "dist"
    build([recordings], dist, recipe="tracer1", workers=1)
    export(dist.with_name("dist.store"), dist,
           params=ExportParams(flavours=("plain", "trl", "verl")))
    texts = [path.read_text(encoding="utf-8") for path in dist.rglob("*")
             if path.suffix in (".md", ".json")]
    for path in sorted(dist.rglob("*.parquet")):
        texts.extend(_strings(pq.read_table(path).to_pylist()))
    everything = "\n".join(texts)
    assert len(texts) > 50
    misses = [(p.kind, leaked(everything, p)) for p in CORPUS if leaked(everything, p)]
    assert misses == [], misses
    report = json.loads((dist / "redaction_report.json").read_text())
    assert report["enabled"] and report["unresolved"] == {}
    for kind in ("email", "phone", "card_number", "iban", "private_key", "api_key", "token",
                 "secret"):
        assert report["distinct_secrets"].get(kind, 0) >= 1, kind
    card = (dist / "README.md").read_text()
    assert "detect-secrets" in card and "Luhn" in card


def test_export_without_redaction_reports_every_secret_as_unresolved(
        native_episode: NativeFactory, tmp_path: Path) -> None:
    recordings = tmp_path / "recordings"
    _planted_episode(native_episode, recordings)
    dist = tmp_path / "dist"
    build([recordings], dist, recipe="quick", workers=1)
    export(dist.with_name("dist.store"), tmp_path / "raw",
           params=ExportParams(flavours=("plain",), redact=False))
    report = json.loads((tmp_path / "raw" / "redaction_report.json").read_text())
    assert not report["enabled"]
    assert report["unresolved"] == report["distinct_secrets"] and report["unresolved"]
    raw = "\n".join(s for path in (tmp_path / "raw").rglob("*.parquet")
                    for s in _strings(pq.read_table(path).to_pylist()))
    assert any(secret in raw for secret in every_secret())


def test_a_struct_shared_by_rows_counts_its_secrets_once_per_row_as_copies_would() -> None:
    """Windows share their steps' action structs; the redactor walks a shared one once but
    counts what it holds in every row, exactly as it counts separate copies."""
    email, token = "mail jane.doe@example.org", "key AKIAIOSFODNN7EXAMPLE"
    action = {"type": "type", "text": email, "target": {"role": "textbox", "text": token},
              "x": 0.5, "keys": []}
    rows = [{"id": str(i), "target_actions": [action, action] if i else [action],
             "history": [email], "mask": [True, False]} for i in range(3)]
    shared, copies = Redactor(), Redactor()
    walked = [shared.row(row) for row in rows]
    expected = [copies.row(json.loads(json.dumps(row))) for row in rows]
    assert walked == expected
    assert shared.counts == copies.counts and shared.distinct == copies.distinct
    # every occurrence: the action's text in 1 + 2 + 2 windows, and each row's history
    assert shared.counts["email"] == 5 + 3
    assert sum(shared.counts.values()) - shared.counts["email"] == 5  # the target's key
    assert "jane.doe" not in json.dumps(walked) and walked[1]["target_actions"][1]["x"] == 0.5
