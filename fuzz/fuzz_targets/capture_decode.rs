//! `ingest::capture::decode` on any bytes with each `compression` value posthog-js
//! sends (and none), a 64 KiB limit; decoded events then go on through
//! `parse_events` and `classify` as the capture endpoint does.
#![no_main]

use chrono::{TimeZone, Utc};
use copilot_server::ingest::capture::{CaptureError, decode};
use copilot_server::ingest::{classify, parse_events};
use libfuzzer_sys::fuzz_target;

const LIMIT: usize = 64 * 1024;

fuzz_target!(|body: &[u8]| {
    let received_at = Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 0).unwrap();
    for compression in [
        None,
        Some("gzip-js"),
        Some("base64"),
        Some("lz64"),
        Some(""),
    ] {
        match decode(body, compression, LIMIT) {
            Ok(capture) => {
                if let Some(token) = &capture.token {
                    assert!(!token.is_empty(), "an empty token is no token");
                }
                if let Ok(events) = parse_events(capture.events) {
                    for event in &events {
                        let _ = classify(event, received_at);
                    }
                }
            }
            Err(CaptureError::TooLarge { limit }) => assert_eq!(limit, LIMIT),
            Err(_) => {}
        }
    }
});
