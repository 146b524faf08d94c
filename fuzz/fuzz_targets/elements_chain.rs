//! `elements_chain::parse` on any string: never panics, and a chain rebuilt from
//! the parsed elements' data (the way posthog-js writes one, with values fully
//! escaped) parses back to the same tags, classes and attribute values, so the
//! target element (the first) is never lost. Inputs that are a JSON array also
//! go through `from_posthog_elements`.
#![no_main]

use copilot_server::ingest::elements_chain::{Element, from_posthog_elements, parse};
use libfuzzer_sys::fuzz_target;

/// The attributes posthog-js writes (sorted by key) that `Element` lets us read.
const KEYS: [&str; 11] = [
    "attr__aria-label",
    "attr__class",
    "attr__href",
    "attr__id",
    "attr__name",
    "attr__placeholder",
    "attr__type",
    "attr_id",
    "href",
    "nth-child",
    "nth-of-type",
];

fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"")
}

/// One element as posthog-js's `elementsToString` writes it: tag, classes, then
/// `key="value"` pairs sorted by key; `nth-child`/`nth-of-type` always present.
fn rebuild(element: &Element) -> String {
    let mut out = element.tag().to_owned();
    for class in element.classes() {
        out.push('.');
        out.push_str(class);
    }
    out.push(':');
    let mut keys: Vec<&str> = KEYS.to_vec();
    keys.push("text");
    keys.sort_unstable();
    for key in keys {
        let value = match (element.attr(key), key) {
            (Some(v), _) => v,
            (None, "nth-child" | "nth-of-type") => "0",
            (None, _) => continue,
        };
        out.push_str(&format!("{key}=\"{}\"", escape(value)));
    }
    out
}

/// Tags and classes posthog-js can write unambiguously: no `"` (it strips them
/// from classes) and no `;` (the element separator). A parsed tag or class holds
/// a `;` only when a stray `"` elsewhere in the head (say in a `#id`) hid it.
/// (`.` and `#` cannot be in a parsed tag or class at all.)
fn writable(element: &Element) -> bool {
    let plain = |s: &str| !s.contains(['"', ';']);
    plain(element.tag()) && element.classes().iter().all(|c| plain(c))
}

fn touch(element: &Element) {
    let _ = (
        element.text(),
        element.href(),
        element.id(),
        element.name(),
        element.aria_label(),
        element.placeholder(),
        element.input_type(),
    );
}

fuzz_target!(|chain: &str| {
    let elements = parse(chain);
    elements.iter().for_each(touch);

    if !elements.is_empty() && elements.iter().all(writable) {
        let rebuilt: Vec<String> = elements.iter().map(rebuild).collect();
        let rebuilt = rebuilt.join(";");
        let again = parse(&rebuilt);
        assert_eq!(
            again.len(),
            elements.len(),
            "element count changed\ninput:   {chain:?}\nrebuilt: {rebuilt:?}"
        );
        assert_eq!(
            again[0].tag(),
            elements[0].tag(),
            "target tag lost\ninput:   {chain:?}\nrebuilt: {rebuilt:?}"
        );
        for (a, b) in elements.iter().zip(&again) {
            assert_eq!(
                a.tag(),
                b.tag(),
                "tag\ninput: {chain:?}\nrebuilt: {rebuilt:?}"
            );
            assert_eq!(
                a.classes(),
                b.classes(),
                "classes\ninput: {chain:?}\nrebuilt: {rebuilt:?}"
            );
            for key in KEYS.iter().copied().chain(["text"]) {
                if a.attr(key).is_some() {
                    assert_eq!(
                        a.attr(key),
                        b.attr(key),
                        "attribute {key}\ninput: {chain:?}\nrebuilt: {rebuilt:?}"
                    );
                }
            }
        }
    }

    if let Ok(serde_json::Value::Array(items)) = serde_json::from_str(chain) {
        from_posthog_elements(&items).iter().for_each(touch);
    }
});
