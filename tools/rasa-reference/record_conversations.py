#!/usr/bin/env python3
"""Record what a running Rasa answers, for tests/fixtures/rasa-project.

Reference tooling, not run in CI. Needs a Rasa 3.6 server started on the
trained fixture project (`rasa run --enable-api`) and the action server from
tests/python (see tests/python/README.md). Standard library only.

    python3 tools/rasa-reference/record_conversations.py --url http://localhost:5005 \
        --out tests/fixtures/rasa-project/conversations.yml \
        --parse-out tests/fixtures/rasa-project/parse.yml

Every conversation uses a fresh sender id. Bot messages are stored as the REST
channel returned them, minus recipient_id; `final_slots` is the tracker's
slots after the last turn (GET /conversations/<id>/tracker). `events` lists,
per turn, the tracker events Rasa added after the user message (actions with
the policy that predicted them, slots, active loops, reverts), without the
bot/user/user_featurization events.
"""
from __future__ import annotations

import argparse
import datetime
import json
import urllib.request
import uuid

CONVERSATIONS = [
    ("happy path", ["hi", "great"]),
    ("sad path, deny (story sad path 2 / context rule)", ["hi", "sad", "no"]),
    ("sad path, affirm (story sad path 1)", ["hi", "sad", "yes"]),
    ("bot challenge at the start", ["are you a bot?"]),
    ("bot challenge mid-conversation", ["hi", "are you a bot?"]),
    ("goodbye at the start", ["bye"]),
    ("affirm out of the blue", ["yes"]),
    ("deny out of the blue", ["no"]),
    ("deny after a bot_challenge interrupts the sad path (MemoizationPolicy ignores the rule-only utter_iamabot turn)", ["hi", "sad", "are you a bot?", "no"]),
    ("greet twice (conversation_start rule applies only to the first)", ["hi", "hi"]),
    ("intent payloads", ["/greet", "/mood_great"]),
    (
        "feedback form, then conditional goodbye and the slot-condition rule",
        ["I want to give feedback", "Alice", "5", "bye", "I want to give feedback"],
    ),
    ("feedback form with a synonym", ["feedback", "Bob", "five stars"]),
    ("feedback form with an intent payload carrying the entity", ["/give_feedback", "Carol", '/inform_rating{"rating": "3"}']),
]

PARSE_TEXTS = ["I'd give it a 4", "five stars", "2 out of 5", "a solid four"]


def post(url: str, body: dict) -> object:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=60) as resp:
        return json.load(resp)


def get(url: str) -> object:
    with urllib.request.urlopen(url, timeout=60) as resp:
        return json.load(resp)


def q(value: object) -> str:
    """A YAML scalar: JSON is valid YAML flow syntax."""
    return json.dumps(value, ensure_ascii=False)


KEPT_EVENT_KEYS = ("name", "value", "policy")


def turn_events(events: list) -> list:
    """The events after the turn's user event, compacted."""
    last_user = max(i for i, e in enumerate(events) if e["event"] == "user")
    out = []
    for e in events[last_user + 1 :]:
        if e["event"] in ("bot", "user", "user_featurization"):
            continue
        compact = {"event": e["event"]}
        for key in KEPT_EVENT_KEYS:
            if key in e and not (key == "policy" and e[key] is None):
                compact[key] = e[key]
        out.append(compact)
    return out


def version(url: str) -> str:
    return get(f"{url}/version")["version"]


def record_conversations(url: str) -> str:
    today = datetime.date.today().isoformat()
    lines = [
        f"# Recorded from Rasa {version(url)} REST channel (POST /webhooks/rest/webhook) on {today},",
        "# model trained from this directory (rasa train), custom actions from tests/python/actions",
        "# (rasa-sdk action server on :5055). Written by tools/rasa-reference/record_conversations.py.",
        "# Each conversation uses a fresh sender id. `bot` lists the messages exactly as the REST",
        "# channel returned them minus recipient_id ([] = Rasa said nothing); `final_slots` is the",
        "# tracker's slots after the last turn (GET /conversations/<sender>/tracker). `events` are",
        "# the tracker events Rasa added after each user message (bot/user/user_featurization",
        "# events left out): actions with the policy that predicted them, slot, active_loop, ...",
        "conversations:",
    ]
    for name, texts in CONVERSATIONS:
        sender = f"rec-{uuid.uuid4().hex[:8]}"
        lines.append(f"  - name: {q(name)}")
        lines.append("    turns:")
        for text in texts:
            replies = post(f"{url}/webhooks/rest/webhook", {"sender": sender, "message": text})
            lines.append(f"      - user: {q(text)}")
            events = get(f"{url}/conversations/{sender}/tracker")["events"]
            lines.append("        events:")
            for e in turn_events(events):
                lines.append(f"          - {q(e)}")
            if not replies:
                lines.append("        bot: []")
                continue
            lines.append("        bot:")
            for msg in replies:
                msg = {k: v for k, v in msg.items() if k != "recipient_id"}
                first = True
                for key, value in msg.items():
                    prefix = "          - " if first else "            "
                    lines.append(f"{prefix}{key}: {q(value)}")
                    first = False
        slots = get(f"{url}/conversations/{sender}/tracker")["slots"]
        lines.append("    final_slots:")
        for key in sorted(slots):
            lines.append(f"      {key}: {q(slots[key])}")
    return "\n".join(lines) + "\n"


def record_parse(url: str) -> str:
    today = datetime.date.today().isoformat()
    lines = [
        f"# Recorded from Rasa {version(url)} POST /model/parse on {today}, model trained from this",
        "# directory. `entities` is exactly Rasa's array (DIETClassifier confidences rounded to",
        "# 4 places); `intent` is the top intent name. Written by tools/rasa-reference/record_conversations.py.",
        "# NB: EntitySynonymMapper is listed in `processors` whenever the (lowercased) value is a key",
        "# of its table, and Rasa adds a self-reference for every synonym target AND every",
        "# annotated entity value in the training data (e.g. [2](rating) adds \"2\" -> \"2\"), so",
        "# \"2\" gets the processor although no synonym changes it.",
        "parses:",
    ]
    for text in PARSE_TEXTS:
        result = post(f"{url}/model/parse", {"text": text})
        lines.append(f"  - text: {q(text)}")
        lines.append(f"    intent: {q(result['intent']['name'])}")
        if not result["entities"]:
            lines.append("    entities: []")
            continue
        lines.append("    entities:")
        for ent in result["entities"]:
            first = True
            for key, value in ent.items():
                if isinstance(value, float):
                    value = round(value, 4)
                prefix = "      - " if first else "        "
                lines.append(f"{prefix}{key}: {q(value)}")
                first = False
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default="http://localhost:5005")
    ap.add_argument("--out", default="tests/fixtures/rasa-project/conversations.yml")
    ap.add_argument("--parse-out", default="tests/fixtures/rasa-project/parse.yml")
    args = ap.parse_args()
    url = args.url.rstrip("/")
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(record_conversations(url))
    with open(args.parse_out, "w", encoding="utf-8") as f:
        f.write(record_parse(url))


if __name__ == "__main__":
    main()
