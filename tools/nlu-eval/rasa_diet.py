#!/usr/bin/env python3
"""Score a running Rasa's NLU (e.g. DIET) on a dev set: reference numbers only.

Not run in CI. Rasa 3.6 needs Python 3.8-3.10; one way (2 cores: training about 10 min under nice):

    ~/.pyenv/versions/3.10.13/bin/python -m venv /tmp/rasa36
    /tmp/rasa36/bin/pip install 'rasa==3.6.21'
    mkdir -p /tmp/diet/data && cp intents/nlu.yml /tmp/diet/data/ && cp intents/domain.yml /tmp/diet/
    cp tests/fixtures/rasa-project/config.yml /tmp/diet/    # DIET (random_seed 42) + FallbackClassifier 0.3/0.1
    (cd /tmp/diet && nice -n 19 /tmp/rasa36/bin/rasa train nlu --nlu data/nlu.yml --config config.yml \
        --out models --fixed-model-name diet)
    (cd /tmp/diet && /tmp/rasa36/bin/rasa run --enable-api -m models/diet.tar.gz --port 5006) &
    python3 tools/nlu-eval/rasa_diet.py --url http://localhost:5006

It sends POST <url>/model/parse {"text": ...} for every utterance of the dev
set (format of tests/nlu/dev.yml: a list of {text, intent}; `nlu_fallback`
means out of scope) and counts intent.name == expected. Prints per-intent
recall, the confusions, and last a line `rasa-diet accuracy 0.xxx (n/N)`.
Needs PyYAML.
"""
from __future__ import annotations

import argparse
import json
import sys
import urllib.request
from collections import Counter, defaultdict
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]


def load_dev(path: Path) -> list[tuple[str, str]]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(doc, list):
        sys.exit(f"rasa_diet: {path}: expected a list of {{text, intent}}")
    return [(str(item["text"]), str(item["intent"])) for item in doc]


def parse(url: str, text: str) -> dict:
    req = urllib.request.Request(
        f"{url}/model/parse",
        data=json.dumps({"text": text}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=60) as resp:
        return json.load(resp)


def main() -> int:
    ap = argparse.ArgumentParser(description="Score a running Rasa's /model/parse on a dev set.")
    ap.add_argument("--url", default="http://localhost:5005")
    ap.add_argument("--dev", type=Path, default=REPO_ROOT / "tests/nlu/dev-independent.yml")
    ap.add_argument("--json", action="store_true", help="print per-utterance results as JSON lines")
    args = ap.parse_args()
    url = args.url.rstrip("/")

    dev = load_dev(args.dev)
    total = Counter()
    hits = Counter()
    confusions: dict[tuple[str, str], list[str]] = defaultdict(list)
    correct = 0
    for text, expected in dev:
        result = parse(url, text)
        got = (result.get("intent") or {}).get("name")
        conf = (result.get("intent") or {}).get("confidence")
        if args.json:
            print(json.dumps({"text": text, "expected": expected, "got": got, "confidence": conf}))
        total[expected] += 1
        if got == expected:
            hits[expected] += 1
            correct += 1
        else:
            confusions[(expected, str(got))].append(f"{text!r} ({conf:.2f})" if conf is not None else repr(text))

    print(f"{'intent':<24} {'n':>4} {'recall':>7}")
    for intent in sorted(total):
        print(f"{intent:<24} {total[intent]:>4} {hits[intent] / total[intent]:>7.3f}")
    print()
    for (expected, got), texts in sorted(confusions.items(), key=lambda kv: -len(kv[1])):
        print(f"{expected} -> {got}: {len(texts)}  e.g. {', '.join(texts[:3])}")
    print()
    print(f"rasa-diet accuracy {correct / len(dev):.3f} ({correct}/{len(dev)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
