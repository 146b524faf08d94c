//! `ingest::parse_body` on any bytes, then `classify` on every event it yields:
//! neither may panic, and what they produce keeps its documented invariants.
#![no_main]

use chrono::{TimeZone, Utc};
use copilot_server::ingest::{Classified, classify, parse_body};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let Ok(events) = parse_body(body) else { return };
    let received_at = Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 0).unwrap();
    for event in &events {
        assert!(!event.name.is_empty(), "events always have a name");
        assert!(
            !event.dedupe_key.is_empty(),
            "events always have a dedupe key"
        );
        if let Classified::Action(action) = classify(event, received_at) {
            assert!(action.page.starts_with('/'), "page {:?}", action.page);
            for s in [&action.page, &action.canonical_url] {
                assert!(!s.contains(['?', '#']), "query/fragment kept: {s:?}");
            }
            let _ = (action.description(), action.line(1));
        }
    }
});
