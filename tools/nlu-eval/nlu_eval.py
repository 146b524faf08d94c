#!/usr/bin/env python3
"""Score copilot-server's intent classifier against a scikit-learn baseline.

The baseline is the one quoted in the issue tracker: TF-IDF on char_wb 1-4 and
word 1-2 n-grams, logistic regression, then Rasa's FallbackClassifier rule
(threshold 0.3, ambiguity 0.1 -> nlu_fallback). Both are trained on the same
Rasa 3.x YAML directory; both are scored on a held-out dev set:

    - text: "..."
      intent: greet

(the format of tests/nlu/dev.yml; a Rasa NLU YAML file with `nlu:` works too).

Ours is scored over HTTP: the server binary is started on a free loopback port
with the intents directory given, and POST /model/parse is asked per utterance
(or --server-url points at a server that is already running).

Also reported: for each dev utterance, its closest training example (token
Jaccard and normalised edit similarity), so a dev set that leaks training
examples shows up (--max-similarity makes that fatal).

Exit codes: 0 ok, 1 a --min-* / --max-similarity gate failed, 2 error.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from pathlib import Path

# Keep CPU use modest (2-core machines): one BLAS/OpenMP thread. Must be set
# before numpy is imported.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import yaml  # noqa: E402

FALLBACK = "nlu_fallback"
# Rasa's FallbackClassifier defaults.
FALLBACK_THRESHOLD = 0.3
AMBIGUITY_THRESHOLD = 0.1

REPO_ROOT = Path(__file__).resolve().parents[2]


class EvalError(Exception):
    """Bad input or a server that would not start: exit code 2."""

# ---------------------------------------------------------------------------
# Loading Rasa NLU YAML


# [text](entity), [text](entity:value), [text]{"entity": ...}
_ENTITY_RE = re.compile(r"\[([^\]]*)\](?:\([^)]*\)|\{[^}]*\})")


def strip_entities(text: str) -> str:
    return _ENTITY_RE.sub(r"\1", text)


def _example_lines(examples) -> list[str]:
    """The examples of one `- intent:` block: a `|` string of `- ...` lines,
    or (Rasa 3 also accepts it) a list of strings or of {text: ...} maps."""
    out: list[str] = []
    if isinstance(examples, str):
        for line in examples.splitlines():
            line = line.strip()
            if not line.startswith("-"):
                continue
            text = line[1:].strip()
            if text:
                out.append(text)
    elif isinstance(examples, list):
        for item in examples:
            if isinstance(item, dict):
                item = item.get("text")
            if isinstance(item, str) and item.strip():
                out.append(item.strip())
    return out


def load_rasa_nlu(path: Path) -> list[tuple[str, str]]:
    """(text, intent) pairs from every *.yml / *.yaml under `path` (or the file
    itself). Only `nlu:` `- intent:` blocks count; regex, synonym and lookup
    blocks are ignored, as are domain.yml, rules.yml and stories. Exact
    duplicates within an intent are dropped, as Rasa's TrainingData does."""
    files = [path] if path.is_file() else sorted(
        p for p in path.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file()
    )
    pairs: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for file in files:
        try:
            doc = yaml.safe_load(file.read_text(encoding="utf-8"))
        except yaml.YAMLError as error:
            raise EvalError(f"nlu-eval: cannot parse {file}: {error}")
        if not isinstance(doc, dict) or not isinstance(doc.get("nlu"), list):
            continue
        for block in doc["nlu"]:
            if not isinstance(block, dict) or "intent" not in block:
                continue  # regex / synonym / lookup
            intent = str(block["intent"]).strip()
            for raw in _example_lines(block.get("examples")):
                text = strip_entities(raw).strip()
                if text and (text, intent) not in seen:
                    seen.add((text, intent))
                    pairs.append((text, intent))
    return pairs


def load_dev(path: Path) -> list[tuple[str, str]]:
    """A list of {text, intent} maps (dev.yml format) or a Rasa NLU file."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    if isinstance(doc, dict) and "nlu" in doc:
        return load_rasa_nlu(path)
    if not isinstance(doc, list):
        raise EvalError(f"nlu-eval: {path}: expected a list of {{text, intent}}")
    out = []
    for i, item in enumerate(doc):
        if not isinstance(item, dict) or "text" not in item or "intent" not in item:
            raise EvalError(f"nlu-eval: {path}: item {i} lacks text/intent: {item!r}")
        out.append((str(item["text"]), str(item["intent"])))
    return out


# ---------------------------------------------------------------------------
# Near-duplicate check (dev vs training)


def _norm(text: str) -> str:
    text = re.sub(r"[^\w\s]", "", text.lower())
    return " ".join(text.split())


def _levenshtein(a: str, b: str) -> int:
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def edit_similarity(a: str, b: str) -> float:
    if not a and not b:
        return 1.0
    return 1.0 - _levenshtein(a, b) / max(len(a), len(b))


def jaccard(a: str, b: str) -> float:
    sa, sb = set(a.split()), set(b.split())
    if not sa and not sb:
        return 1.0
    return len(sa & sb) / len(sa | sb)


def closest_training(dev, train) -> list[dict]:
    """For each dev text, in dev order, the closest training text by token
    Jaccard and by normalised edit similarity (after lowercasing and dropping
    punctuation)."""
    train_norm = sorted({_norm(t) for t, _ in train})
    train_chars = {t: Counter(t) for t in train_norm}
    rows = []
    for text, _ in dev:
        d = _norm(text)
        d_chars = Counter(d)
        best_j, best_jt = max(((jaccard(d, t), t) for t in train_norm),
                              default=(0.0, ""), key=lambda x: x[0])
        # Edit similarity: an alignment keeps at most the characters the two
        # strings share (as multisets) and costs at least max(len) - kept, so
        # similarity <= shared / max(len). Try the best bounds first and stop
        # once no remaining pair can beat the best found.
        bounds = sorted(
            ((sum((d_chars & train_chars[t]).values()) / (max(len(d), len(t)) or 1), t)
             for t in train_norm),
            reverse=True,
        )
        best_e, best_et = 0.0, ""
        for bound, t in bounds:
            if bound <= best_e:
                break
            e = edit_similarity(d, t)
            if e > best_e:
                best_e, best_et = e, t
        rows.append({
            "text": text,
            "jaccard": round(best_j, 3), "jaccard_train": best_jt,
            "edit": round(best_e, 3), "edit_train": best_et,
            "exact": d in train_norm,
        })
    return rows


def near_duplicates(rows: list[dict]) -> dict:
    """The worst similarities and the closest pairs among closest_training's rows."""
    rows = list(rows)
    rows.sort(key=lambda r: max(r["jaccard"], r["edit"]), reverse=True)
    return {
        "max_jaccard": max((r["jaccard"] for r in rows), default=0.0),
        "max_edit": max((r["edit"] for r in rows), default=0.0),
        "exact_copies": sum(r["exact"] for r in rows),
        "closest": rows[:10],
    }


# ---------------------------------------------------------------------------
# The baseline


class Baseline:
    def __init__(self, train: list[tuple[str, str]]):
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import FeatureUnion, Pipeline

        self.pipeline = Pipeline([
            ("features", FeatureUnion([
                ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4))),
                ("word", TfidfVectorizer(analyzer="word", ngram_range=(1, 2))),
            ])),
            ("clf", LogisticRegression(max_iter=10000)),
        ])
        texts = [t for t, _ in train]
        labels = [i for _, i in train]
        self.pipeline.fit(texts, labels)
        self.classes = list(self.pipeline.classes_)

    def predict_argmax(self, texts: list[str]) -> list[tuple[str, float]]:
        """The plain argmax, without the fallback rule (for diagnosis only)."""
        return [(self.classes[int(p.argmax())], float(p.max()))
                for p in self.pipeline.predict_proba(texts)]

    def predict(self, texts: list[str]) -> list[tuple[str, float]]:
        """Rasa's FallbackClassifier on top of predict_proba: nlu_fallback when
        the top confidence is < 0.3 or the top two are < 0.1 apart."""
        out = []
        for probs in self.pipeline.predict_proba(texts):
            order = sorted(range(len(probs)), key=lambda k: probs[k], reverse=True)
            top = float(probs[order[0]])
            second = float(probs[order[1]]) if len(order) > 1 else 0.0
            name = self.classes[order[0]]
            if top < FALLBACK_THRESHOLD or top - second < AMBIGUITY_THRESHOLD:
                name = FALLBACK
            out.append((name, top))
        return out


# ---------------------------------------------------------------------------
# Ours, over HTTP


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _http(method: str, url: str, body: dict | None = None, timeout: float = 10.0):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return resp.status, json.loads(resp.read() or b"null")


class Server:
    """Starts the server binary on a free loopback port; stops it on exit."""

    def __init__(self, binary: Path, intents: Path, startup_timeout: float):
        self.binary, self.intents, self.timeout = binary, intents, startup_timeout
        self.proc = None
        self.url = ""
        self.log = None

    def __enter__(self):
        if not self.binary.is_file():
            raise EvalError(
                f"nlu-eval: no server binary at {self.binary} "
                "(cargo build --release -p copilot-server, or pass --server-bin / --server-url)")
        port = _free_port()
        env = dict(os.environ)
        env.update({
            "COPILOT__SERVER__HOST": "127.0.0.1",
            "COPILOT__SERVER__PORT": str(port),
            "COPILOT__DATABASE__URL": "sqlite::memory:",
            "COPILOT__NLU__INTENTS_DIR": str(self.intents),
            "RUST_LOG": "warn",
        })
        self.log = tempfile.TemporaryFile()
        # Its own working directory, so nothing (data/, a stray config) is
        # picked up from or written to the caller's.
        self.cwd = tempfile.TemporaryDirectory(prefix="nlu-eval-")
        self.proc = subprocess.Popen([str(self.binary)], env=env, cwd=self.cwd.name,
                                     stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise EvalError(f"nlu-eval: server exited with {self.proc.returncode}:\n"
                                 + self._log_tail())
            try:
                status, _ = _http("GET", self.url + "/healthz", timeout=1.0)
                if status == 200:
                    return self
            except (urllib.error.URLError, ConnectionError, OSError, ValueError):
                pass
            time.sleep(0.1)
        self.__exit__(None, None, None)
        raise EvalError(f"nlu-eval: server not healthy after {self.timeout}s:\n"
                         + self._log_tail())

    def _log_tail(self) -> str:
        if self.log is None:
            return ""
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-4000:]

    def __exit__(self, *exc):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.log is not None:
            self.log.close()
            self.log = None
        if getattr(self, "cwd", None) is not None:
            self.cwd.cleanup()
            self.cwd = None
        return False


def parse_remote(url: str, texts: list[str]) -> list[tuple[str, float]]:
    out = []
    for text in texts:
        try:
            _, body = _http("POST", url.rstrip("/") + "/model/parse", {"text": text})
        except urllib.error.HTTPError as error:
            raise EvalError(f"nlu-eval: POST /model/parse {text!r}: HTTP {error.code}")
        intent = (body or {}).get("intent") or {}
        out.append((str(intent.get("name")), float(intent.get("confidence") or 0.0)))
    return out


# ---------------------------------------------------------------------------
# Scoring


def score(dev: list[tuple[str, str]], predicted: list[tuple[str, float]]) -> dict:
    gold = [i for _, i in dev]
    got = [p for p, _ in predicted]
    correct = sum(g == p for g, p in zip(gold, got))
    labels = sorted(set(gold) | set(got))
    per_intent = {}
    for label in labels:
        tp = sum(g == label and p == label for g, p in zip(gold, got))
        n_pred = sum(p == label for p in got)
        n_gold = sum(g == label for g in gold)
        precision = tp / n_pred if n_pred else 0.0
        recall = tp / n_gold if n_gold else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_intent[label] = {"precision": precision, "recall": recall, "f1": f1,
                             "support": n_gold, "predicted": n_pred}
    confusions: dict[tuple[str, str], list[tuple[str, float]]] = defaultdict(list)
    for (text, g), (p, conf) in zip(dev, predicted):
        if g != p:
            confusions[(g, p)].append((text, conf))
    conf_list = sorted(
        ({"expected": g, "got": p, "count": len(v),
          "examples": [{"text": t, "confidence": round(c, 3)} for t, c in v]}
         for (g, p), v in confusions.items()),
        key=lambda c: (-c["count"], c["expected"], c["got"]),
    )
    macro_f1 = (sum(v["f1"] for k, v in per_intent.items() if v["support"])
                / max(1, sum(1 for v in per_intent.values() if v["support"])))
    return {"accuracy": correct / len(dev) if dev else 0.0, "correct": correct,
            "total": len(dev), "macro_f1": macro_f1,
            "per_intent": per_intent, "confusions": conf_list}


# ---------------------------------------------------------------------------
# Report


def _per_intent_table(results: dict[str, dict]) -> str:
    names = list(results)
    labels = sorted(set().union(*(r["per_intent"] for r in results.values())))
    width = max([len("intent")] + [len(l) for l in labels])
    head = f"{'intent':<{width}}  {'n':>3}"
    for n in names:
        head += f"  | {n + ' P':>11} {'R':>5} {'F1':>5}"
    lines = [head, "-" * len(head)]
    for label in labels:
        support = next((r["per_intent"][label]["support"] for r in results.values()
                        if label in r["per_intent"]), 0)
        row = f"{label:<{width}}  {support:>3}"
        for n in names:
            m = results[n]["per_intent"].get(label)
            if m is None:
                row += f"  | {'-':>11} {'-':>5} {'-':>5}"
            else:
                row += f"  | {m['precision']:>11.2f} {m['recall']:>5.2f} {m['f1']:>5.2f}"
        lines.append(row)
    return "\n".join(lines)


def _confusion_text(name: str, result: dict, max_examples: int) -> str:
    lines = [f"confusions, {name} ({result['total'] - result['correct']} wrong):"]
    if not result["confusions"]:
        lines.append("  (none)")
    for c in result["confusions"]:
        shown = ", ".join(f"{e['text']!r} ({e['confidence']:.2f})"
                          for e in c["examples"][:max_examples])
        more = len(c["examples"]) - max_examples
        lines.append(f"  {c['expected']:>22} -> {c['got']:<22} {c['count']:>3}  {shown}"
                     + (f" … +{more}" if more > 0 else ""))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--intents", default="intents",
                    help="Rasa 3.x YAML directory to train on (default: intents)")
    ap.add_argument("--dev", default="tests/nlu/dev-independent.yml",
                    help="held-out set (default: tests/nlu/dev-independent.yml)")
    ap.add_argument("--server-bin", default="target/release/copilot-server",
                    help="server binary to start (default: target/release/copilot-server)")
    ap.add_argument("--server-url", help="score a running server instead of starting one")
    ap.add_argument("--skip-ours", action="store_true", help="score the baseline only")
    ap.add_argument("--startup-timeout", type=float, default=60.0)
    ap.add_argument("--json", action="store_true", help="print one JSON document instead")
    ap.add_argument("--examples", type=int, default=3,
                    help="example utterances shown per confusion (default 3)")
    ap.add_argument("--min-ratio", type=float,
                    help="exit 1 unless ours/baseline accuracy >= R")
    ap.add_argument("--min-accuracy", type=float,
                    help="exit 1 unless our accuracy >= A")
    ap.add_argument("--drop-similar", type=float, metavar="S",
                    help="score only the dev utterances whose closest training example "
                         "has token Jaccard and edit similarity <= S (for a dev set "
                         "written blind, whose common phrasings match training lines)")
    ap.add_argument("--max-similarity", type=float,
                    help="exit 1 if a dev utterance's closest training example has "
                         "token Jaccard or edit similarity above S (e.g. 0.8)")
    args = ap.parse_args(argv)

    # Relative paths are from the repository root when they don't exist here.
    def resolve(p: str) -> Path:
        path = Path(p)
        if not path.is_absolute() and not path.exists() and (REPO_ROOT / path).exists():
            path = REPO_ROOT / path
        return path.resolve()

    intents, dev_path = resolve(args.intents), resolve(args.dev)
    if not intents.exists():
        # The server would silently fall back to its built-in intents.
        print(f"nlu-eval: no intents at {intents}", file=sys.stderr)
        return 2
    if not dev_path.is_file():
        print(f"nlu-eval: no dev set at {dev_path}", file=sys.stderr)
        return 2

    train = load_rasa_nlu(intents)
    dev = load_dev(dev_path)
    if not train or not dev:
        print(f"nlu-eval: {len(train)} training examples, {len(dev)} dev utterances",
              file=sys.stderr)
        return 2
    closest = closest_training(dev, train)
    dropped = 0
    if args.drop_similar is not None:
        kept = [(item, row) for item, row in zip(dev, closest)
                if max(row["jaccard"], row["edit"]) <= args.drop_similar]
        dropped = len(dev) - len(kept)
        dev, closest = [item for item, _ in kept], [row for _, row in kept]
        if not dev:
            print("nlu-eval: --drop-similar left no dev utterances", file=sys.stderr)
            return 2
    texts = [t for t, _ in dev]
    unknown = sorted({i for _, i in dev} - {i for _, i in train} - {FALLBACK})
    dup = near_duplicates(closest)

    t0 = time.monotonic()
    baseline = Baseline(train)
    results = {"baseline": score(dev, baseline.predict(texts))}
    argmax_acc = score(dev, baseline.predict_argmax(texts))["accuracy"]
    baseline_s = time.monotonic() - t0

    ours_s = None
    if not args.skip_ours:
        t0 = time.monotonic()
        if args.server_url:
            ours_pred = parse_remote(args.server_url, texts)
        else:
            with Server(resolve(args.server_bin), intents, args.startup_timeout) as srv:
                ours_pred = parse_remote(srv.url, texts)
        ours_s = time.monotonic() - t0
        results = {"ours": score(dev, ours_pred), **results}

    base_acc = results["baseline"]["accuracy"]
    ours_acc = results["ours"]["accuracy"] if "ours" in results else None
    ratio = (ours_acc / base_acc if base_acc else float("inf")) if ours_acc is not None else None

    failures = []
    if args.min_accuracy is not None and ours_acc is not None and ours_acc < args.min_accuracy:
        failures.append(f"our accuracy {ours_acc:.3f} < --min-accuracy {args.min_accuracy}")
    if args.min_ratio is not None and ratio is not None and ratio < args.min_ratio:
        failures.append(f"ratio {ratio:.3f} < --min-ratio {args.min_ratio}")
    if (args.min_accuracy is not None or args.min_ratio is not None) and ours_acc is None:
        failures.append("--min-accuracy/--min-ratio need ours (drop --skip-ours)")
    if args.max_similarity is not None:
        worst = max(dup["max_jaccard"], dup["max_edit"])
        if worst > args.max_similarity:
            failures.append(f"dev/training similarity {worst:.3f} > --max-similarity "
                            f"{args.max_similarity}")

    summary = (f"ours {ours_acc:.3f} baseline {base_acc:.3f} ratio {ratio:.3f}"
               if ours_acc is not None else f"ours - baseline {base_acc:.3f} ratio -")

    if args.json:
        print(json.dumps({
            "intents": str(intents), "dev": str(dev_path),
            "train_examples": len(train), "dev_utterances": len(dev),
            "dropped_as_similar": dropped,
            "dev_per_intent": dict(Counter(i for _, i in dev)),
            "unknown_dev_intents": unknown,
            "baseline_config": {
                "features": "tfidf char_wb(1,4) + word(1,2)",
                "classifier": "LogisticRegression(max_iter=10000)",
                "fallback_threshold": FALLBACK_THRESHOLD,
                "ambiguity_threshold": AMBIGUITY_THRESHOLD,
            },
            "ours": results.get("ours"), "baseline": results["baseline"],
            "ratio": ratio, "baseline_argmax_accuracy": argmax_acc,
            "near_duplicates": dup,
            "seconds": {"baseline": baseline_s, "ours": ours_s},
            "failures": failures, "summary": summary,
        }, indent=2, ensure_ascii=False))
    else:
        print(f"training: {len(train)} examples from {intents}")
        print(f"dev:      {len(dev)} utterances from {dev_path}"
              + (f" ({dropped} dropped by --drop-similar {args.drop_similar})"
                 if args.drop_similar is not None else ""))
        print("          " + ", ".join(f"{k} {v}" for k, v in
                                     sorted(Counter(i for _, i in dev).items())))
        if unknown:
            print(f"warning: dev intents not in training: {', '.join(unknown)}")
        print(f"near-duplicates: max token Jaccard {dup['max_jaccard']:.3f}, max edit "
              f"similarity {dup['max_edit']:.3f}, exact copies {dup['exact_copies']}")
        for r in dup["closest"][:3]:
            pair = r["jaccard_train"] if r["jaccard"] >= r["edit"] else r["edit_train"]
            print(f"  {r['text']!r} ~ {pair!r} "
                  f"(jaccard {r['jaccard']:.2f}, edit {r['edit']:.2f})")
        print()
        for name, r in results.items():
            print(f"accuracy {name:<8} {r['accuracy']:.3f} ({r['correct']}/{r['total']}), "
                  f"macro F1 {r['macro_f1']:.3f}")
        if ratio is not None:
            print(f"ratio ours/baseline {ratio:.3f}")
        print(f"(baseline argmax without the FallbackClassifier rule: {argmax_acc:.3f})")
        print()
        print(_per_intent_table(results))
        for name, r in results.items():
            print()
            print(_confusion_text(name, r, args.examples))
        print()
        for f in failures:
            print(f"FAIL: {f}")
        print(summary)
    return 1 if failures else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except EvalError as error:
        print(error, file=sys.stderr)
        sys.exit(2)
    except BrokenPipeError:  # e.g. piped into head
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
