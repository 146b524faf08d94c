#!/usr/bin/env python3
"""Drive copilot-server's POST /products with the REAL autoplay-sdk 0.13.0.

Usage (with the venv that has autoplay-sdk==0.13.0 installed):

    python tests/python/onboard_sdk.py --base-url http://127.0.0.1:PORT

The server must be started with ``[admin] open_registration = true`` and must
not already hold the product id (default ``sdk_acme``; see ``--product-id``).

Checks:
  1. legacy ``autoplay_sdk.admin.onboard.onboard_product`` returns
     webhook_url/stream_url built from the base URL;
  2. webhook_secret, unkey_key and unkey_key_id are non-empty;
  3. a second call with force_reregister=False fails with the SDK's
     ProductAlreadyRegisteredError (server answers 409).  NB: in 0.13.0 the
     legacy runner re-wraps it as a plain ConnectorRegistrationHttpError with
     status_code=409 whose ``__cause__`` is the ProductAlreadyRegisteredError;
     both forms are accepted;
  4. one PostHog webhook event POSTed to webhook_url with X-PostHog-Secret is
     answered 200 with JSON accepted == 1.

Ends with "N passed, M failed"; exit status 1 on any failure.
Only the standard library plus autoplay-sdk is used.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import traceback
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timezone

PASSED = 0
FAILED = 0


def check(name: str, ok: bool, detail: str = "") -> bool:
    global PASSED, FAILED
    if ok:
        PASSED += 1
        print(f"PASS {name}")
    else:
        FAILED += 1
        print(f"FAIL {name}" + (f": {detail}" if detail else ""))
    return ok


def finish() -> None:
    print(f"{PASSED} passed, {FAILED} failed")
    sys.exit(1 if FAILED else 0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--base-url", required=True, help="e.g. http://127.0.0.1:8080")
    ap.add_argument("--product-id", default="sdk_acme")
    ap.add_argument("--contact-email", default="ops@acme.example")
    ap.add_argument("--timeout", type=float, default=15.0, help="HTTP timeout, seconds")
    args = ap.parse_args()

    base = args.base_url.strip().rstrip("/")
    pid = args.product_id

    try:
        from importlib.metadata import version

        from autoplay_sdk.admin.onboard import (  # the legacy (Render) flow
            ConnectorRegistrationHttpError,
            ProductAlreadyRegisteredError,
            onboard_product,
        )
        from autoplay_sdk.providers import PostHogProvider
    except Exception as exc:  # noqa: BLE001
        print(f"cannot import autoplay-sdk: {exc!r} (pip install autoplay-sdk==0.13.0)")
        check("import autoplay-sdk", False, repr(exc))
        finish()

    sdk_version = version("autoplay-sdk")
    print(f"autoplay-sdk {sdk_version}; base URL {base}; product_id {pid}")
    if sdk_version != "0.13.0":
        print(f"warning: expected autoplay-sdk 0.13.0, got {sdk_version}")

    def onboard(force: bool):
        return asyncio.run(
            onboard_product(
                pid,
                contact_email=args.contact_email,
                connector_url=base,
                force_reregister=force,
                user_activity_provider=PostHogProvider(),
                connector_http_timeout_seconds=args.timeout,
            )
        )

    # --- 1 + 2: first registration -------------------------------------
    result = None
    try:
        result = onboard(False)
    except Exception as exc:  # noqa: BLE001
        cause = exc.__cause__
        detail = f"{type(exc).__name__}: {exc}"
        if cause is not None:
            detail += f" (cause {type(cause).__name__}: {cause})"
        check("onboard_product returns webhook_url/stream_url", False, detail)
        check("onboard_product returns non-empty secrets", False, "no result")
        traceback.print_exc(file=sys.stderr)

    if result is not None:
        want_w = f"{base}/webhook/{pid}"
        want_s = f"{base}/stream/{pid}"
        check(
            "onboard_product returns webhook_url/stream_url",
            result.webhook_url == want_w and result.stream_url == want_s,
            f"webhook_url={result.webhook_url!r} (want {want_w!r}), "
            f"stream_url={result.stream_url!r} (want {want_s!r})",
        )
        empty = [
            k
            for k in ("webhook_secret", "unkey_key", "unkey_key_id")
            if not str(getattr(result, k) or "").strip()
        ]
        check(
            "onboard_product returns non-empty webhook_secret/unkey_key/unkey_key_id",
            not empty,
            f"empty: {', '.join(empty)}",
        )

    # --- 3: duplicate without force_reregister -> 409 ------------------
    try:
        onboard(False)
        check("re-register without force raises ProductAlreadyRegisteredError", False, "no exception raised")
    except ConnectorRegistrationHttpError as exc:
        is_dup = isinstance(exc, ProductAlreadyRegisteredError) or isinstance(
            exc.__cause__, ProductAlreadyRegisteredError
        )
        check(
            "re-register without force raises ProductAlreadyRegisteredError (409)",
            is_dup and exc.status_code == 409,
            f"{type(exc).__name__} status_code={exc.status_code} cause={type(exc.__cause__).__name__}: {exc}",
        )
    except Exception as exc:  # noqa: BLE001
        check("re-register without force raises ProductAlreadyRegisteredError", False, f"{type(exc).__name__}: {exc}")

    # --- 4: one PostHog webhook event ----------------------------------
    if result is None:
        check("webhook delivery accepted == 1", False, "skipped: onboarding failed")
        finish()
    now = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    event = {
        "event": {
            "uuid": str(uuid.uuid4()),
            "event": "$pageview",
            "distinct_id": "sdk_user",
            "timestamp": now,
            "properties": {"$current_url": "https://app.example.com/projects", "$session_id": "s1"},
        },
        "person": None,
    }
    req = urllib.request.Request(
        result.webhook_url,
        data=json.dumps(event).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "X-PostHog-Secret": result.webhook_secret},
    )
    try:
        with urllib.request.urlopen(req, timeout=args.timeout) as resp:
            status, text = resp.status, resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        status, text = exc.code, exc.read().decode("utf-8", "replace")
    except Exception as exc:  # noqa: BLE001
        status, text = None, f"{type(exc).__name__}: {exc}"
    try:
        accepted = json.loads(text).get("accepted")
    except Exception:  # noqa: BLE001
        accepted = None
    check(
        "webhook delivery returns 200 with accepted == 1",
        status == 200 and accepted == 1,
        f"status={status} body={text[:300]!r}",
    )
    finish()


if __name__ == "__main__":
    main()
