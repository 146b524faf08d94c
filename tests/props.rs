//! Property tests for the pure parsers in `ingest`: URL canonicalisation, the
//! PostHog `elements_chain` parser, capture-body decoding and webhook bodies.
//! Each property runs a few hundred cases; the whole file takes a few seconds.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{TimeZone, Utc};
use copilot_server::ingest::canonical_url::canonicalise;
use copilot_server::ingest::capture::{self, CaptureError};
use copilot_server::ingest::elements_chain::{self, Element};
use copilot_server::ingest::{Classified, classify, parse_body};
use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{Map, Value, json};

/// No regression files are written next to the tests: a failing case is printed
/// in full and shrunk, which is what a report needs.
fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

// ---------------------------------------------------------------------------
// canonical_url

/// Strings shaped like the `$current_url`s posthog-js sends (and some that
/// are not): optional scheme and host, path segments of ids and words, query,
/// fragment.
fn url_like() -> impl Strategy<Value = String> {
    let origin = prop_oneof![
        Just(String::new()),
        Just("https://app.example.com".to_owned()),
        Just("http://localhost:8080".to_owned()),
        Just("HTTPS://App.Example.COM:443".to_owned()),
        Just("http://[::1]".to_owned()),
        Just("file://".to_owned()),
        Just("custom-app://host".to_owned()),
        Just("mailto:".to_owned()),
        "[a-z]{1,6}://[a-z0-9.-]{1,12}",
    ];
    let segment = prop_oneof![
        "[0-9]{1,12}",
        "[a-z]{1,10}",
        "[a-z]{2,5}[_-][0-9a-zA-Z]{6,12}",
        "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        "[A-Za-z0-9._~%:@!$&'()*+,;= -]{0,12}",
        Just(String::new()),
        Just("..".to_owned()),
        Just(".".to_owned()),
    ];
    let tail = prop_oneof![
        Just(String::new()),
        "\\?[a-z=&0-9#/?]{0,12}",
        "#[a-z/?#]{0,8}",
    ];
    (
        origin,
        prop::collection::vec(segment, 0..6),
        any::<bool>(),
        tail,
    )
        .prop_map(|(origin, segments, trailing_slash, tail)| {
            let mut url = origin;
            for s in segments {
                url.push('/');
                url.push_str(&s);
            }
            if trailing_slash {
                url.push('/');
            }
            url + &tail
        })
}

fn any_url_input() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), url_like(), "\\PC{0,40}"]
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn canonicalise_never_panics(raw in any_url_input()) {
        let c = canonicalise(&raw);
        prop_assert!(c.path.starts_with('/'), "path {:?} of {raw:?}", c.path);
        prop_assert!(c.url.ends_with(&c.path), "url {:?} path {:?}", c.url, c.path);
    }

    #[test]
    fn canonical_urls_have_no_query_or_fragment(raw in any_url_input()) {
        let c = canonicalise(&raw);
        prop_assert!(!c.url.contains(['?', '#']), "{raw:?} gave url {:?}", c.url);
        prop_assert!(!c.path.contains(['?', '#']), "{raw:?} gave path {:?}", c.path);
    }

    /// Idempotence for inputs without whitespace (URLs as browsers report them);
    /// the property below covers whitespace too.
    #[test]
    fn canonicalise_is_idempotent_without_whitespace(
        raw in any_url_input().prop_filter("no whitespace", |s| !s.chars().any(char::is_whitespace))
    ) {
        let once = canonicalise(&raw).url;
        let twice = canonicalise(&once).url;
        prop_assert_eq!(&twice, &once, "input {:?}", raw);
    }

    #[test]
    fn numeric_path_segments_become_id(
        origin in prop_oneof![Just(""), Just("https://app.example.com"), Just("http://localhost:3000")],
        segments in prop::collection::vec(prop_oneof!["[0-9]{1,15}", "[a-z]{1,10}"], 1..6),
        tail in prop_oneof![Just(""), Just("?tab=1"), Just("#top"), Just("/")],
    ) {
        let raw = format!("{origin}/{}{tail}", segments.join("/"));
        let c = canonicalise(&raw);
        let expected: Vec<&str> = segments
            .iter()
            .map(|s| if s.bytes().all(|b| b.is_ascii_digit()) { ":id" } else { s.as_str() })
            .collect();
        prop_assert_eq!(&c.path, &format!("/{}", expected.join("/")), "input {:?}", raw);
        prop_assert_eq!(&c.url, &format!("{origin}{}", c.path), "input {:?}", raw);
    }
}

proptest! {
    #![proptest_config(config(512))]

    // Regression: canonicalise used to keep a path segment that is only
    // whitespace, or ends with it, when a `?` or `#` followed it: "/a/ ?x" gave
    // "/a/ ", and canonicalise("/a/ ") gave "/a" (two canonical forms for one
    // page; minimal case " ?"). Fixed by trimming segments in canonical_path.
    #[test]
    fn canonicalise_is_idempotent(raw in any_url_input()) {
        let once = canonicalise(&raw).url;
        let twice = canonicalise(&once).url;
        prop_assert_eq!(&twice, &once, "input {:?}", raw);
    }
}

// ---------------------------------------------------------------------------
// elements_chain

/// One element as posthog-js holds it before `elementsToString`.
#[derive(Debug, Clone)]
struct JsElement {
    tag: String,
    /// Raw class names (may hold `"`, which the writer strips).
    classes: Vec<String>,
    /// Attributes other than classes, unescaped.
    attributes: Vec<(String, String)>,
}

/// Text, hrefs and attribute values: anything but a backslash (posthog-js
/// escapes only `"`, so a lone `\` is not representable), with the characters
/// that matter to the format (`"`, `;`, `:`, `=`, `.`, `#`) made likely.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 ]{0,16}",
        "[\";:=.#a-z ]{0,16}",
        "[^\\\\]{0,24}",
        Just("Say \"hi\"; then: x=\"1\"".to_owned()),
        Just("/x?a=1;b=2#frag".to_owned()),
    ]
}

/// Class names as they appear in the DOM, Tailwind's `md:flex`, `w-1/2`,
/// `bg-[#1da1f2]`, `w-[1.5rem]`, `[&>*]:p-2` and `!mt-0` among them, sometimes
/// with a `"` the writer drops. Brackets are balanced within a class (see the
/// ignored property below for unbalanced ones). Left out, as the format cannot
/// carry them: `.` and `#` outside brackets, `;` and whitespace.
fn class_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[A-Za-z_-][A-Za-z0-9_-]{0,10}",
        2 => "(sm|md|lg|hover|focus):[a-z]{1,6}(-[a-z0-9]{1,4})?",
        2 => "(md:)?(bg|text|w|group)-\\[[#.0-9a-z%&>*:_-]{1,8}\\](:[a-z]{1,4})?",
        1 => "[A-Za-z0-9_:/&>*!()%'=,-]{1,12}",
        1 => "[a-z]{1,4}\"[a-z]{0,4}",
    ]
}

fn attribute() -> impl Strategy<Value = (String, String)> {
    let key = prop_oneof![
        Just("text".to_owned()),
        Just("href".to_owned()),
        Just("attr_id".to_owned()),
        Just("attr__id".to_owned()),
        Just("attr__href".to_owned()),
        Just("attr__type".to_owned()),
        Just("attr__name".to_owned()),
        Just("attr__aria-label".to_owned()),
        Just("attr__placeholder".to_owned()),
        "attr__data-[a-z]{1,8}",
    ];
    (key, value())
}

fn js_element() -> impl Strategy<Value = JsElement> {
    (
        "[a-z][a-z0-9]{0,6}(-[a-z0-9]{1,6})?",
        prop::collection::vec(class_name(), 0..4),
        prop::collection::vec(attribute(), 0..5),
        0u32..40,
        0u32..40,
    )
        .prop_map(|(tag, classes, attributes, nth_child, nth_of_type)| {
            let mut unique: Vec<(String, String)> = Vec::new();
            for (k, v) in attributes {
                if !unique.iter().any(|(u, _)| *u == k) {
                    unique.push((k, v));
                }
            }
            if !classes.is_empty() {
                unique.push(("attr__class".to_owned(), classes.join(" ")));
            }
            unique.push(("nth-child".to_owned(), nth_child.to_string()));
            unique.push(("nth-of-type".to_owned(), nth_of_type.to_string()));
            JsElement {
                tag,
                classes,
                attributes: unique,
            }
        })
}

/// posthog-js's `escapeQuotes`: `"` (or an already escaped `\"`) becomes `\"`.
fn escape_quotes(s: &str) -> String {
    s.replace("\\\"", "\"").replace('"', "\\\"")
}

/// The classes as written: sorted, `"` removed; empty ones vanish on parsing.
fn written_classes(element: &JsElement) -> Vec<String> {
    let mut classes = element.classes.clone();
    classes.sort();
    classes
        .iter()
        .map(|c| c.replace('"', ""))
        .filter(|c| !c.is_empty())
        .collect()
}

/// posthog-js's `elementsToString`.
fn elements_to_string(elements: &[JsElement]) -> String {
    elements
        .iter()
        .map(|element| {
            let mut out = element.tag.clone();
            let mut classes = element.classes.clone();
            classes.sort();
            for class in classes {
                out.push('.');
                out.push_str(&class.replace('"', ""));
            }
            let mut attributes = element.attributes.clone();
            attributes.sort_by(|a, b| a.0.cmp(&b.0));
            out.push(':');
            for (key, value) in attributes {
                out.push_str(&format!(
                    "{}=\"{}\"",
                    escape_quotes(&key),
                    escape_quotes(&value)
                ));
            }
            out
        })
        .collect::<Vec<_>>()
        .join(";")
}

fn assert_same(
    parsed: &[Element],
    written: &[JsElement],
    chain: &str,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(parsed.len(), written.len(), "element count of {:?}", chain);
    for (i, (p, w)) in parsed.iter().zip(written).enumerate() {
        prop_assert_eq!(
            p.tag(),
            w.tag.as_str(),
            "tag of element {} in {:?}",
            i,
            chain
        );
        prop_assert_eq!(
            &p.classes(),
            &written_classes(w),
            "classes of element {} in {:?}",
            i,
            chain
        );
        for (key, value) in &w.attributes {
            prop_assert_eq!(
                p.attr(key),
                Some(value.as_str()),
                "{} of element {} in {:?}",
                key,
                i,
                chain
            );
        }
    }
    Ok(())
}

fn chain_like() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-z.#:;=\"\\\\ _-]{0,48}",
        prop::collection::vec(js_element(), 0..4).prop_map(|e| elements_to_string(&e)),
    ]
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn parse_never_panics(chain in chain_like()) {
        for element in elements_chain::parse(&chain) {
            let _ = (element.text(), element.href(), element.id(), element.name());
            let _ = (element.aria_label(), element.placeholder(), element.input_type());
        }
    }

    /// Truncating a real chain anywhere (as a length limit might) must not panic
    /// either, and the elements before the cut are kept.
    #[test]
    fn parse_of_a_cut_chain_never_panics(elements in prop::collection::vec(js_element(), 1..4), cut in any::<prop::sample::Index>()) {
        let chain = elements_to_string(&elements);
        let boundaries: Vec<usize> = chain.char_indices().map(|(i, _)| i).chain([chain.len()]).collect();
        let at = boundaries[cut.index(boundaries.len())];
        let _ = elements_chain::parse(&chain[..at]);
    }

    #[test]
    fn elements_to_string_round_trips(elements in prop::collection::vec(js_element(), 1..6)) {
        let chain = elements_to_string(&elements);
        let parsed = elements_chain::parse(&chain);
        assert_same(&parsed, &elements, &chain)?;
    }

    #[test]
    fn elements_array_and_chain_agree(elements in prop::collection::vec(js_element(), 1..5)) {
        let chain = elements_to_string(&elements);
        let items: Vec<Value> = elements
            .iter()
            .map(|e| {
                let mut item = Map::new();
                item.insert("tag_name".to_owned(), json!(e.tag));
                for (key, value) in &e.attributes {
                    let key = match key.as_str() {
                        "text" => "$el_text",
                        "nth-child" => "nth_child",
                        "nth-of-type" => "nth_of_type",
                        other => other,
                    };
                    item.insert(key.to_owned(), json!(value));
                }
                item.insert("classes".to_owned(), json!(written_classes(e)));
                Value::Object(item)
            })
            .collect();
        let from_array = elements_chain::from_posthog_elements(&items);
        let from_chain = elements_chain::parse(&chain);
        prop_assert_eq!(from_array.len(), from_chain.len());
        for (a, c) in from_array.iter().zip(&from_chain) {
            prop_assert_eq!(a.tag(), c.tag());
            prop_assert_eq!(a.classes(), c.classes());
            prop_assert_eq!(a.text(), c.text());
            prop_assert_eq!(a.href(), c.href());
            prop_assert_eq!(a.id(), c.id());
        }
    }
}

proptest! {
    #![proptest_config(config(256))]

    // Regression: `#` in the head was always read as a `tag#id` separator, but
    // posthog-js writes classes verbatim and Tailwind's arbitrary-value classes
    // contain `#` (`bg-[#1da1f2]`): `button.bg-[#1da1f2]:nth-child="1"` parsed to
    // classes ["bg-["] and an id "1da1f2]" that became the action's label.
    // Fixed by treating `.` and `#` inside `[...]` as part of the class.
    #[test]
    fn classes_with_hash_round_trip(
        tag in "[a-z]{1,6}",
        class in "(bg|text|border)-\\[#[0-9a-f]{3,6}\\]",
        text in "[a-z]{1,8}",
    ) {
        let element = JsElement {
            tag,
            classes: vec![class],
            attributes: vec![("nth-child".to_owned(), "1".to_owned()), ("text".to_owned(), text)],
        };
        let chain = elements_to_string(std::slice::from_ref(&element));
        let parsed = elements_chain::parse(&chain);
        assert_same(&parsed, std::slice::from_ref(&element), &chain)?;
        prop_assert_eq!(parsed[0].id(), None, "no id was written in {:?}", chain);
    }

    // BUG (src/ingest/elements_chain.rs, parse_head): the bracket rule spans
    // classes. posthog-js writes the classes ["[", "a]"] as `a.[.a]`, and a `[`
    // opens a bracket whenever a `]` follows anywhere in the head, so the `.`
    // between the two classes is taken as part of one class "[.a]". PostHog's
    // own parser splits on every `.` and gives ["[", "a]"]. Rare in real DOMs
    // (Tailwind's brackets are balanced inside one class), hence low severity.
    #[test]
    #[ignore = "bug: classes with unbalanced brackets ([\"[\", \"a]\"]) are merged into one class \"[.a]\""]
    fn classes_with_unbalanced_brackets_round_trip(
        tag in "[a-z]{1,6}",
        open in "[a-z]{0,3}\\[[a-z]{0,3}",
        close in "[a-z]{0,3}\\][a-z]{0,3}",
    ) {
        let element = JsElement {
            tag,
            classes: vec![open, close],
            attributes: vec![("nth-child".to_owned(), "1".to_owned())],
        };
        let chain = elements_to_string(std::slice::from_ref(&element));
        let parsed = elements_chain::parse(&chain);
        assert_same(&parsed, std::slice::from_ref(&element), &chain)?;
    }
}

// A head of many `[` once made parse_head quadratic (the fuzzer's
// fuzz/regressions/webhook_body/quadratic-brackets.json); it is linear now and
// that input is parsed by a unit test in src/ingest/event.rs. Speed is shown by
// `cargo bench --bench pipeline`, not by a timed test.

// ---------------------------------------------------------------------------
// capture bodies and webhook bodies

fn compression() -> impl Strategy<Value = Option<&'static str>> {
    prop_oneof![
        Just(None),
        Just(Some("gzip-js")),
        Just(Some("base64")),
        Just(Some("lz64")),
        Just(Some("")),
    ]
}

/// Bytes that reach each decoding branch: raw, gzip magic, `data=` forms,
/// base64-looking text.
fn capture_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        any::<Vec<u8>>(),
        any::<Vec<u8>>().prop_map(|b| [&[0x1f, 0x8b, 8, 0][..], &b].concat()),
        "(data=|x=1&data=)[A-Za-z0-9+/=%_&-]{0,40}".prop_map(String::into_bytes),
        "[ \t\n]{0,3}[A-Za-z0-9+/=_-]{0,40}".prop_map(String::into_bytes),
        "[ \t]{0,2}[\\[{][^\\\\]{0,40}".prop_map(String::into_bytes),
    ]
}

/// JSON values shaped somewhat like deliveries, so parsing gets past the JSON
/// layer into the shape checks and classification.
fn json_value() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("event"),
        Just("distinct_id"),
        Just("properties"),
        Just("batch"),
        Just("person"),
        Just("uuid"),
        Just("timestamp"),
        Just("elements_chain"),
        Just("$current_url"),
        Just("$session_id"),
        Just("$elements"),
        Just("$el_text"),
        Just("$event_type"),
        Just("email"),
        Just("$set"),
        Just("tag_name"),
        Just("current_url"),
        Just("session_id"),
        Just("button_or_link_text"),
        Just("title"),
        Just("api_key"),
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        prop_oneof![
            Just("$autocapture".to_owned()),
            Just("$pageview".to_owned()),
            Just("$rageclick".to_owned()),
            Just("https://app.example.com/p/42?x=1".to_owned()),
            Just("2026-11-20T10:15:03.412Z".to_owned()),
            Just("u@example.com".to_owned()),
            "\\PC{0,20}",
            chain_like(),
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::vec((key.clone(), inner), 0..6).prop_map(|entries| {
                Value::Object(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect(),
                )
            }),
        ]
    })
}

fn webhook_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        any::<Vec<u8>>(),
        json_value().prop_map(|v| v.to_string().into_bytes()),
    ]
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn capture_decode_never_panics(
        body in capture_body(),
        compression in compression(),
        limit in prop_oneof![Just(0usize), Just(1), Just(64), Just(64 * 1024), Just(1 << 20)],
    ) {
        match capture::decode(&body, compression, limit) {
            Err(CaptureError::TooLarge { limit: l }) => prop_assert_eq!(l, limit),
            Ok(c) => prop_assert!(c.token.as_deref() != Some("")),
            Err(_) => {}
        }
    }

    #[test]
    fn parse_body_never_panics(body in webhook_body()) {
        let received_at = Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 0).unwrap();
        if let Ok(events) = parse_body(&body) {
            for event in &events {
                prop_assert!(!event.name.is_empty());
                prop_assert!(!event.dedupe_key.is_empty());
                if let Classified::Action(action) = classify(event, received_at) {
                    prop_assert!(action.page.starts_with('/'));
                    prop_assert!(!action.canonical_url.contains(['?', '#']));
                }
            }
        }
    }
}
