#!/usr/bin/env python3
"""Drive copilot-server's GET /stream/{product_id} with the REAL autoplay-sdk 0.13.0.

Usage (with the venv that has autoplay-sdk==0.13.0 installed):

    python tests/python/stream_sdk.py --base-url http://127.0.0.1:PORT \\
        --product-id ID --stream-key KEY --webhook-secret SECRET \\
        [--push-secret S --push-port P]

The product must already be registered; KEY is its stream (Unkey) key and SECRET
its PostHog webhook secret.  The server's rolling summary must run after 10
actions.

Checks, in order:
  1. ``autoplay_sdk.AsyncConnectorClient`` (token = KEY, on_actions/on_summary
     registered) connects to {base}/stream/{product_id}.  NB: in 0.13.0
     ``on_connect`` fires as soon as response headers arrive, *before* the SDK
     looks at the status or Content-Type (a 401 fires on_connect and then
     on_disconnect), so the connection only counts if no on_disconnect
     followed within 0.3 s;
  2. one PostHog webhook event POSTed to {base}/webhook/{product_id}
     (X-PostHog-Secret) is answered 200 with accepted == 1, and within 10 s
     on_actions gets an ActionsPayload for session "sdk-session-1" /
     user "sdk-user-1" with exactly one action that has a title and a canonical
     URL under https://app.example.com/projects;
  3. 10 more events for the same session are each accepted, and within 15 s
     on_summary gets a SummaryPayload for "sdk-session-1" with a non-empty
     summary and replaces >= 10;
  4. a GET of the stream with a wrong Bearer token is answered 401 with JSON
     {"error": ...}, and a second AsyncConnectorClient with that token and
     max_retries=0 stops with an exception within 10 s having received nothing.
     NB: 0.13.0 never calls raise_for_status(), so its "401 is fatal" branch is
     dead code: the 401 surfaces as httpx_sse.SSEError (wrong Content-Type),
     is treated as a transient failure, and only max_retries ends the loop
     (SdkUpstreamError).  Without max_retries it would retry forever;
  5. only with --push-secret and --push-port: the SDK's ``WebhookReceiver``
     (served with http.server on 127.0.0.1:PUSH_PORT, started before step 1;
     "PUSH READY" is printed once it listens) gets, within 15 s of the first
     webhook POST, an ActionsPayload for "sdk-session-1" pushed by the server
     (X-Connector-Signature: sha256=<hex HMAC-SHA256(secret, body)>); and a
     body with a wrong/missing signature is rejected (verify() is False,
     handle_sync() raises ValueError, the HTTP endpoint answers 401).

Prints one "PASS ..." / "FAIL ...: reason" line per check, then
"N passed, M failed"; exit status 1 on any failure.  Hard overall timeout 60 s.
Only the standard library plus autoplay-sdk is used.
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import logging
import os
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PASSED = 0
FAILED = 0
OVERALL_TIMEOUT_S = 60.0
SESSION_ID = "sdk-session-1"
USER_ID = "sdk-user-1"
EMAIL = "ada@example.com"
URL_PREFIX = "https://app.example.com/projects"

_print_lock = threading.Lock()
SDK_LOG: list[str] = []  # the SDK's own warnings (it logs why a connection failed)


class _SdkLogTap(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            SDK_LOG.append(record.getMessage())
        except Exception:  # noqa: BLE001
            pass


def say(line: str) -> None:
    with _print_lock:
        print(line, flush=True)


def check(name: str, ok: bool, detail: str = "") -> bool:
    global PASSED, FAILED
    if ok:
        PASSED += 1
        say(f"PASS {name}")
    else:
        FAILED += 1
        say(f"FAIL {name}" + (f": {detail}" if detail else ""))
    return ok


def finish() -> None:
    say(f"{PASSED} passed, {FAILED} failed")
    sys.stdout.flush()
    sys.stderr.flush()
    # os._exit: never hang on a stuck non-daemon thread at interpreter exit.
    os._exit(1 if FAILED else 0)


# ---------------------------------------------------------------------------
# HTTP helpers (standard library; never through an HTTP proxy)
# ---------------------------------------------------------------------------

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http(method: str, url: str, body: bytes | None = None, headers: dict | None = None,
         timeout: float = 10.0) -> tuple[int | None, str]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with _OPENER.open(req, timeout=timeout) as resp:
            return resp.status, resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")
    except Exception as exc:  # noqa: BLE001
        return None, f"{type(exc).__name__}: {exc}"


def posthog_event(el_text: str) -> dict:
    now = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {
        "event": {
            "uuid": str(uuid.uuid4()),
            "event": "$autocapture",
            "distinct_id": USER_ID,
            "timestamp": now,
            "properties": {
                "$session_id": SESSION_ID,
                "$current_url": "https://app.example.com/projects/42?tab=1",
                "$event_type": "click",
                "$el_text": el_text,
                "email": EMAIL,
            },
            "elements_chain": f'button.btn:text="{el_text}"nth-child="1"nth-of-type="1"',
        },
        "person": {"properties": {"email": EMAIL}},
    }


def post_webhook(url: str, secret: str, el_text: str) -> tuple[int | None, str, object]:
    status, text = http(
        "POST",
        url,
        json.dumps(posthog_event(el_text)).encode(),
        {"Content-Type": "application/json", "X-PostHog-Secret": secret},
    )
    try:
        accepted = json.loads(text).get("accepted")
    except Exception:  # noqa: BLE001
        accepted = None
    return status, text, accepted


# ---------------------------------------------------------------------------
# Push mode: the SDK's WebhookReceiver behind http.server
# ---------------------------------------------------------------------------


class PushSink:
    """Collects what the WebhookReceiver dispatched (called from server threads)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.actions: list = []
        self.summaries: list = []
        self.accepted = 0
        self.rejected = 0

    def on_actions(self, payload) -> None:
        with self.lock:
            self.actions.append(payload)

    def on_summary(self, payload) -> None:
        with self.lock:
            self.summaries.append(payload)


def start_push_server(receiver, sink: PushSink, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self, status: int, obj: dict) -> None:
            data = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            sig = self.headers.get("X-Connector-Signature")
            try:
                receiver.handle_sync(body, sig)
            except ValueError as exc:
                with sink.lock:
                    sink.rejected += 1
                self._answer(401, {"error": str(exc)})
                return
            except Exception as exc:  # noqa: BLE001
                self._answer(500, {"error": f"{type(exc).__name__}: {exc}"})
                return
            with sink.lock:
                sink.accepted += 1
            self._answer(200, {"status": "ok"})

        def log_message(self, fmt: str, *args) -> None:  # keep stdout clean
            sys.stderr.write("push receiver: " + (fmt % args) + "\n")

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="push-receiver", daemon=True).start()
    return server


# ---------------------------------------------------------------------------
# Main flow
# ---------------------------------------------------------------------------


def describe_actions(p) -> str:
    acts = [(a.title, a.canonical_url) for a in p.actions]
    return (f"session_id={p.session_id!r} user_id={p.user_id!r} count={p.count} "
            f"len(actions)={len(p.actions)} actions={acts!r}")


async def wait_for(pred, timeout: float, interval: float = 0.05):
    """Poll pred() until it returns a truthy value or timeout passes."""
    deadline = time.monotonic() + timeout
    while True:
        got = pred()
        if got:
            return got
        if time.monotonic() >= deadline:
            return None
        await asyncio.sleep(interval)


async def stop_client(client, task: asyncio.Task | None) -> None:
    """stop() only takes effect at the next SSE frame, so also cancel the task
    (run() swallows CancelledError and returns cleanly)."""
    if client is not None:
        client.stop()
    if task is None:
        return
    if not task.done():
        task.cancel()
    try:
        await asyncio.wait_for(asyncio.shield(task), 5)
    except BaseException:  # noqa: BLE001  (already reported, or cancelled)
        pass


async def amain(args, sdk) -> None:
    AsyncConnectorClient = sdk["AsyncConnectorClient"]
    ActionsPayload = sdk["ActionsPayload"]
    SummaryPayload = sdk["SummaryPayload"]

    base = args.base_url.strip().rstrip("/")
    pid = args.product_id
    stream_url = f"{base}/stream/{urllib.parse.quote(pid, safe='')}"
    webhook_url = f"{base}/webhook/{urllib.parse.quote(pid, safe='')}"
    push = bool(args.push_secret) and bool(args.push_port)

    # --- 5 (setup): the push receiver must listen before any webhook POST ---
    receiver = sink = push_server = None
    if push:
        WebhookReceiver = sdk["WebhookReceiver"]
        sink = PushSink()
        receiver = WebhookReceiver(
            secret=args.push_secret, on_actions=sink.on_actions, on_summary=sink.on_summary
        )
        try:
            push_server = start_push_server(receiver, sink, args.push_port)
            say("PUSH READY")
        except OSError as exc:
            say(f"cannot listen on 127.0.0.1:{args.push_port}: {exc}")
            push_server = None

    # --- 1: subscribe -------------------------------------------------------
    got_actions: list = []
    got_summaries: list = []
    connects = 0

    async def on_actions(payload) -> None:
        got_actions.append(payload)

    async def on_summary(payload) -> None:
        got_summaries.append(payload)

    disconnects = 0

    def on_connect() -> None:
        nonlocal connects
        connects += 1

    def on_disconnect() -> None:
        nonlocal disconnects
        disconnects += 1

    client = AsyncConnectorClient(
        url=stream_url,
        token=args.stream_key,
        connect_timeout=5.0,
        initial_backoff_s=0.5,
        max_backoff_s=2.0,
        max_retries=2,
        on_connect=on_connect,
        on_disconnect=on_disconnect,
    )
    client.on_actions(on_actions).on_summary(on_summary)
    task = asyncio.get_running_loop().create_task(client.run())

    def connected_or_dead():
        return task.done() or connects > 0

    await wait_for(connected_or_dead, 10)
    if connects and not task.done():
        # on_connect fires before the SDK checks status / Content-Type (a 401
        # fires on_connect then at once on_disconnect): make sure the stream
        # really is being read.
        await asyncio.sleep(0.3)
    if task.done():
        exc = task.exception() if not task.cancelled() else None
        detail = f"client stopped: {type(exc).__name__}: {exc}" if exc else "client stopped"
        connected = False
    else:
        connected = connects > disconnects
        detail = ("no on_connect within 10 s" if not connects else
                  f"on_disconnect right after on_connect ({connects}/{disconnects})")
    if not connected and SDK_LOG:
        detail += f"; SDK said: {SDK_LOG[0]}"
    check("AsyncConnectorClient connects to /stream/{product_id} with the stream key", connected,
          f"{detail} (url {stream_url})")

    # --- 2: one webhook event -> on_actions ---------------------------------
    first_post = time.monotonic()
    status, text, accepted = await asyncio.to_thread(
        post_webhook, webhook_url, args.webhook_secret, "Save changes"
    )
    check("webhook POST answered 200 with accepted == 1", status == 200 and accepted == 1,
          f"status={status} body={text[:300]!r}")

    def good_actions(p) -> bool:
        return (
            isinstance(p, ActionsPayload)
            and p.session_id == SESSION_ID
            and p.user_id == USER_ID
            and p.count == 1
            and len(p.actions) == 1
            and bool((p.actions[0].title or "").strip())
            and (p.actions[0].canonical_url or "").startswith(URL_PREFIX)
        )

    if connected:
        hit = await wait_for(lambda: next((p for p in got_actions if good_actions(p)), None), 10)
        seen = [describe_actions(p) for p in got_actions if getattr(p, "session_id", None) == SESSION_ID]
        check(
            "on_actions gets ActionsPayload(session sdk-session-1, user sdk-user-1, 1 action, "
            "title, canonical_url under /projects) within 10 s",
            hit is not None,
            f"got {len(got_actions)} actions payload(s); for {SESSION_ID}: {seen[:3]!r}",
        )
        if hit is not None:
            a = hit.actions[0]
            say(f"  action: title={a.title!r} canonical_url={a.canonical_url!r} type={a.type!r}")
    else:
        check("on_actions gets ActionsPayload for sdk-session-1 within 10 s", False,
              "skipped: not connected")

    # --- 3: ten more events -> rolling summary ------------------------------
    bad = []
    for i in range(1, 11):
        status, text, accepted = await asyncio.to_thread(
            post_webhook, webhook_url, args.webhook_secret, f"Button {i}"
        )
        if not (status == 200 and accepted == 1):
            bad.append(f"#{i}: status={status} body={text[:120]!r}")
    check("10 more webhook POSTs answered 200 with accepted == 1", not bad, "; ".join(bad[:3]))

    def good_summary(p) -> bool:
        return (
            isinstance(p, SummaryPayload)
            and p.session_id == SESSION_ID
            and bool((p.summary or "").strip())
            and (p.replaces or 0) >= 10
        )

    if connected and not task.done():
        hit = await wait_for(lambda: next((p for p in got_summaries if good_summary(p)), None), 15)
        seen = [(p.session_id, p.replaces, (p.summary or "")[:60]) for p in got_summaries]
        check(
            "on_summary gets SummaryPayload(session sdk-session-1, non-empty summary, "
            "replaces >= 10) within 15 s",
            hit is not None,
            f"got {len(got_summaries)} summary payload(s): {seen[:3]!r}",
        )
        if hit is not None:
            say(f"  summary: replaces={hit.replaces} text={hit.summary[:100]!r}")
    else:
        exc = task.exception() if task.done() and not task.cancelled() else None
        check("on_summary gets SummaryPayload for sdk-session-1 within 15 s", False,
              "skipped: not connected" + (f" ({type(exc).__name__}: {exc})" if exc else ""))

    # --- 4: wrong token -----------------------------------------------------
    wrong = "wrong-" + (args.stream_key or "key")
    status, text = await asyncio.to_thread(
        http, "GET", stream_url, None,
        {"Authorization": f"Bearer {wrong}", "Accept": "text/event-stream"}, 10.0,
    )
    try:
        err = json.loads(text).get("error")
    except Exception:  # noqa: BLE001
        err = None
    check("GET /stream with a wrong Bearer token is answered 401 with JSON error",
          status == 401 and bool(err), f"status={status} body={text[:300]!r}")

    bad_got: list = []
    bad_connects = 0

    def bad_on_connect() -> None:
        nonlocal bad_connects
        bad_connects += 1

    async def bad_cb(payload) -> None:
        bad_got.append(payload)

    bad_client = AsyncConnectorClient(
        url=stream_url, token=wrong, connect_timeout=5.0, max_retries=0,
        initial_backoff_s=0.5, max_backoff_s=0.5, on_connect=bad_on_connect,
    )
    bad_client.on_actions(bad_cb).on_summary(bad_cb)
    t0 = time.monotonic()
    bad_task = asyncio.get_running_loop().create_task(bad_client.run())
    done, _ = await asyncio.wait({bad_task}, timeout=10)
    elapsed = time.monotonic() - t0
    if bad_task in done:
        exc = bad_task.exception() if not bad_task.cancelled() else None
        check(
            "AsyncConnectorClient with a wrong token (max_retries=0) fails fast, receiving nothing",
            exc is not None and not bad_got,
            f"run() ended after {elapsed:.1f}s with {exc!r}; payloads received: {len(bad_got)}",
        )
        if exc is not None:
            say(f"  wrong-token client raised {type(exc).__name__}: {exc} after {elapsed:.1f}s "
                f"(on_connect fired {bad_connects}x)")
    else:
        check("AsyncConnectorClient with a wrong token (max_retries=0) fails fast, receiving nothing",
              False, f"still running after 10 s; payloads received: {len(bad_got)}")
    await stop_client(bad_client, bad_task)

    # --- 5: push mode -------------------------------------------------------
    if push:
        if push_server is None:
            check("WebhookReceiver gets an ActionsPayload for sdk-session-1 within 15 s", False,
                  f"receiver could not listen on port {args.push_port}")
        else:
            remaining = max(1.0, first_post + 15.0 - time.monotonic())

            def pushed():
                with sink.lock:
                    return next((p for p in sink.actions
                                 if isinstance(p, ActionsPayload) and p.session_id == SESSION_ID), None)

            hit = await wait_for(pushed, remaining)
            with sink.lock:
                stats = (f"accepted={sink.accepted} rejected={sink.rejected} "
                         f"actions={len(sink.actions)} summaries={len(sink.summaries)} "
                         f"sessions={sorted({str(p.session_id) for p in sink.actions})!r}")
            check("WebhookReceiver gets a signed ActionsPayload push for sdk-session-1 within 15 s",
                  hit is not None, stats)
            if hit is not None:
                say(f"  push: {describe_actions(hit)}")

        body = json.dumps({
            "type": "actions", "product_id": pid, "session_id": SESSION_ID, "user_id": USER_ID,
            "email": EMAIL, "count": 1, "forwarded_at": time.time(),
            "actions": [{"index": 0, "type": "click", "title": "Forged", "description": "Forged",
                         "canonical_url": URL_PREFIX + "/:id"}],
        }).encode()
        good_sig = "sha256=" + hmac.new(args.push_secret.encode(), body, hashlib.sha256).hexdigest()
        bad_sig = "sha256=" + hmac.new(b"not-the-secret", body, hashlib.sha256).hexdigest()
        problems = []
        if not receiver.verify(body, good_sig):
            problems.append("verify() rejects the correct signature")
        for label, sig in (("wrong", bad_sig), ("missing", None), ("unprefixed", good_sig[7:])):
            if receiver.verify(body, sig):
                problems.append(f"verify() accepts a {label} signature")
        with sink.lock:
            before = len(sink.actions)
        try:
            receiver.handle_sync(body, bad_sig)
            problems.append("handle_sync() accepted a wrong signature")
        except ValueError:
            pass
        if push_server is not None:
            status, text = await asyncio.to_thread(
                http, "POST", f"http://127.0.0.1:{args.push_port}/", body,
                {"Content-Type": "application/json", "X-Connector-Signature": bad_sig}, 5.0,
            )
            if status != 401:
                problems.append(f"receiver endpoint answered {status} to a wrong signature: {text[:100]!r}")
        with sink.lock:
            if len(sink.actions) != before:
                problems.append("a wrongly signed body reached on_actions")
        check("WebhookReceiver rejects a body with a wrong/missing signature", not problems,
              "; ".join(problems))

    # --- shutdown -----------------------------------------------------------
    await stop_client(client, task)
    if push_server is not None:
        push_server.shutdown()
        push_server.server_close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--base-url", required=True, help="e.g. http://127.0.0.1:8080")
    ap.add_argument("--product-id", required=True)
    ap.add_argument("--stream-key", required=True, help="the product's stream (Unkey) key")
    ap.add_argument("--webhook-secret", required=True, help="the product's X-PostHog-Secret")
    ap.add_argument("--push-secret", default="", help="HMAC secret of push deliveries")
    ap.add_argument("--push-port", type=int, default=0, help="port for the WebhookReceiver")
    args = ap.parse_args()

    # httpx (inside the SDK) honours HTTP(S)_PROXY; never proxy the loopback.
    host = (urllib.parse.urlsplit(args.base_url).hostname or "").lower()
    if host in ("127.0.0.1", "localhost", "::1"):
        for var in ("NO_PROXY", "no_proxy"):
            cur = os.environ.get(var, "")
            os.environ[var] = ",".join(x for x in (cur, "127.0.0.1", "localhost", "::1") if x)

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    tap = _SdkLogTap(level=logging.WARNING)
    logging.getLogger("autoplay_sdk").addHandler(tap)

    try:
        from importlib.metadata import version

        from autoplay_sdk import (
            ActionsPayload,
            AsyncConnectorClient,
            SummaryPayload,
            WebhookReceiver,
        )
    except Exception as exc:  # noqa: BLE001
        say(f"cannot import autoplay-sdk: {exc!r} (pip install autoplay-sdk==0.13.0)")
        check("import autoplay-sdk", False, repr(exc))
        finish()

    sdk_version = version("autoplay-sdk")
    say(f"autoplay-sdk {sdk_version}; base URL {args.base_url}; product_id {args.product_id}; "
        f"push {'on port %d' % args.push_port if args.push_secret and args.push_port else 'off'}")
    if sdk_version != "0.13.0":
        say(f"warning: expected autoplay-sdk 0.13.0, got {sdk_version}")

    # Last-resort watchdog in case something blocks the event loop itself.
    def watchdog() -> None:
        check("overall run finished within 60 s", False, "watchdog fired")
        finish()

    dog = threading.Timer(OVERALL_TIMEOUT_S + 5, watchdog)
    dog.daemon = True
    dog.start()

    sdk = {
        "AsyncConnectorClient": AsyncConnectorClient,
        "ActionsPayload": ActionsPayload,
        "SummaryPayload": SummaryPayload,
        "WebhookReceiver": WebhookReceiver,
    }
    try:
        asyncio.run(asyncio.wait_for(amain(args, sdk), OVERALL_TIMEOUT_S))
    except asyncio.TimeoutError:
        check("overall run finished within 60 s", False, "timed out")
    except Exception as exc:  # noqa: BLE001
        import traceback

        traceback.print_exc(file=sys.stderr)
        check("run without an unexpected error", False, f"{type(exc).__name__}: {exc}")
    dog.cancel()
    finish()


if __name__ == "__main__":
    main()
