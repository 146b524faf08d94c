//! Parser for PostHog's `elements_chain` string: `;`-separated elements, target
//! first, each `tag.class…:key="value"key="value"…` with `\"` escapes inside values.
//! Lenient by design: a malformed part ends that element's attributes, never the
//! parse, and nothing here can panic on input.

/// One element of the chain. Its strings live in one buffer (`text`) and are
/// named by ranges: an element costs three allocations whatever its number of
/// classes and attributes, not one per piece (those small allocations were
/// most of the chain's parse, itself about 5% of an ingest request's CPU).
#[derive(Debug, Clone, Default)]
pub struct Element {
    text: String,
    tag: Span,
    classes: Vec<Span>,
    /// An id written in the tag part as `tag#id` (seen in some producers).
    hash_id: Option<Span>,
    /// Keys and values, values unescaped.
    attributes: Vec<(Span, Span)>,
}

/// Where a piece is in [`Element::text`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Span {
    start: u32,
    end: u32,
}

impl Element {
    fn with_capacity(bytes: usize) -> Self {
        Element {
            text: String::with_capacity(bytes),
            ..Element::default()
        }
    }

    /// Appends a piece to the buffer and names it.
    fn push(&mut self, piece: &str) -> Span {
        let start = self.text.len();
        self.text.push_str(piece);
        self.span_since(start)
    }

    /// Appends `raw` with its `\x` escapes resolved.
    fn push_unescaped(&mut self, raw: &str) -> Span {
        let start = self.text.len();
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                self.text.push(chars.next().unwrap_or('\\'));
            } else {
                self.text.push(c);
            }
        }
        self.span_since(start)
    }

    /// The span from `start` to the end of the buffer. Pieces past 4 GiB
    /// (never within a body limit) come back empty rather than wrong.
    fn span_since(&self, start: usize) -> Span {
        match (u32::try_from(start), u32::try_from(self.text.len())) {
            (Ok(start), Ok(end)) => Span { start, end },
            _ => Span::default(),
        }
    }

    fn get(&self, span: Span) -> &str {
        self.text
            .get(span.start as usize..span.end as usize)
            .unwrap_or_default()
    }

    pub fn tag(&self) -> &str {
        self.get(self.tag)
    }

    pub fn classes(&self) -> Vec<&str> {
        self.classes.iter().map(|&span| self.get(span)).collect()
    }

    fn has_attr(&self, key: &str) -> bool {
        self.attributes.iter().any(|&(k, _)| self.get(k) == key)
    }

    /// The value of `key`, unescaped.
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|&&(k, _)| self.get(k) == key)
            .map(|&(_, v)| self.get(v))
    }

    fn non_empty(&self, key: &str) -> Option<&str> {
        self.attr(key).map(str::trim).filter(|v| !v.is_empty())
    }

    pub fn text(&self) -> Option<&str> {
        self.non_empty("text")
    }

    pub fn href(&self) -> Option<&str> {
        self.non_empty("href")
            .or_else(|| self.non_empty("attr__href"))
    }

    pub fn id(&self) -> Option<&str> {
        self.non_empty("attr__id")
            .or_else(|| self.non_empty("attr_id"))
            .or_else(|| self.hash_id.map(|span| self.get(span)))
    }

    pub fn name(&self) -> Option<&str> {
        self.non_empty("attr__name")
    }

    pub fn aria_label(&self) -> Option<&str> {
        self.non_empty("attr__aria-label")
    }

    pub fn placeholder(&self) -> Option<&str> {
        self.non_empty("attr__placeholder")
    }

    pub fn input_type(&self) -> Option<&str> {
        self.non_empty("attr__type")
    }
}

/// Elements from posthog-js's `$elements` array (target first): `tag_name`,
/// `$el_text`, `attr__*`, `nth_child`, `attributes: {…}`. Gives what [`parse`]
/// gives for the equivalent `elements_chain`.
pub fn from_posthog_elements(items: &[serde_json::Value]) -> Vec<Element> {
    use serde_json::Value;
    let text_of = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    items
        .iter()
        .filter_map(Value::as_object)
        .map(|item| {
            let mut element = Element::default();
            if let Some(tag) = item.get("tag_name").and_then(text_of) {
                element.tag = element.push(&tag);
            }
            let nested = item.get("attributes").and_then(Value::as_object);
            for (key, value) in item.iter().chain(nested.into_iter().flatten()) {
                let Some(value) = text_of(value) else {
                    continue;
                };
                let key = match key.as_str() {
                    "$el_text" | "text" => "text",
                    "nth_child" => "nth-child",
                    "nth_of_type" => "nth-of-type",
                    "tag_name" | "classes" => continue,
                    other => other,
                };
                if !element.has_attr(key) {
                    let key = element.push(key);
                    let value = element.push(&value);
                    element.attributes.push((key, value));
                }
            }
            if let Some(classes) = item.get("classes").and_then(Value::as_array) {
                for class in classes.iter().filter_map(text_of) {
                    let span = element.push(&class);
                    element.classes.push(span);
                }
            } else if let Some(class) = element.attr("attr__class").map(str::to_owned) {
                for class in class.split_whitespace() {
                    let span = element.push(class);
                    element.classes.push(span);
                }
            }
            element
        })
        .collect()
}

/// Parses a whole chain. An empty or garbage chain gives an empty or partial list.
pub fn parse(chain: &str) -> Vec<Element> {
    split_outside_quotes(chain, ';')
        .into_iter()
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(parse_element)
        .collect()
}

/// Splits on `sep` where it is not inside a `"…"` value (honouring `\` escapes).
fn split_outside_quotes(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            c if c == sep && !in_quotes => {
                parts.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

fn parse_element(part: &str) -> Element {
    let (head, attrs) = match attributes_start(part) {
        Some(i) => (&part[..i], &part[i + 1..]),
        None => (part, ""),
    };
    // Unescaping only shortens, so the part's length is enough room.
    let mut element = Element::with_capacity(part.len());
    parse_head(&mut element, head);
    parse_attributes(&mut element, attrs);
    element
}

/// Index of the `:` that starts the attributes: the first one followed by a key
/// (`[A-Za-z0-9_-]*`) and `="`. A `:` inside a class name such as Tailwind's
/// `md:flex` is not followed by that, so it stays in the head.
fn attributes_start(part: &str) -> Option<usize> {
    let bytes = part.as_bytes();
    bytes.iter().enumerate().find_map(|(i, &b)| {
        if b != b':' {
            return None;
        }
        let rest = &bytes[i + 1..];
        let key_len = rest
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_' || **c == b'-')
            .count();
        (rest.get(key_len) == Some(&b'=') && rest.get(key_len + 1) == Some(&b'"')).then_some(i)
    })
}

fn parse_head(element: &mut Element, head: &str) {
    // Split on '.' and '#', remembering which separator preceded each piece.
    let mut kind = '\0';
    let mut start = 0;
    let flush = |element: &mut Element, kind: char, piece: &str| {
        if piece.is_empty() {
            return;
        }
        let span = element.push(piece);
        match kind {
            '#' => element.hash_id = Some(span),
            '.' => element.classes.push(span),
            _ => element.tag = span,
        }
    };
    // Brackets hold Tailwind arbitrary values (`bg-[#1da1f2]`, `w-[1.5rem]`):
    // a '.' or '#' inside them is part of the class.
    // A '[' only opens a bracket when a ']' follows somewhere (found once, so
    // a head full of '[' stays linear).
    let last_close = head.rfind(']');
    let mut depth = 0usize;
    for (i, c) in head.char_indices() {
        match c {
            '[' if last_close.is_some_and(|close| close > i) => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            '.' | '#' if depth == 0 => {
                flush(element, kind, &head[start..i]);
                kind = c;
                start = i + 1;
            }
            _ => {}
        }
    }
    flush(element, kind, &head[start..]);
}

fn parse_attributes(element: &mut Element, s: &str) {
    let mut rest = s;
    while !rest.is_empty() {
        let Some(eq) = rest.find("=\"") else { break };
        let key = element.push(rest[..eq].trim_start_matches(':'));
        let body = &rest[eq + 2..];
        // The value ends at the first '"' not escaped by '\\'. Most values
        // have no escapes and are copied in one piece.
        let bytes = body.as_bytes();
        let mut i = 0;
        let mut escapes = false;
        let mut end = None;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' => {
                    escapes = true;
                    i += 2;
                }
                b'"' => {
                    end = Some(i);
                    break;
                }
                _ => i += 1,
            }
        }
        let raw = &body[..end.unwrap_or(body.len())];
        let value = if escapes {
            element.push_unescaped(raw)
        } else {
            element.push(raw)
        };
        // An unterminated value is kept (it is the best we have) and ends the parse.
        element.attributes.push((key, value));
        match end {
            Some(end) => rest = &body[end + 1..],
            None => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAVE: &str = r#"button.btn.btn-primary:attr__class="btn btn-primary"attr__id="save-project"attr__type="submit"attr_id="save-project"nth-child="2"nth-of-type="2"text="Save changes";div.dialog-footer:attr__class="dialog-footer"nth-child="3"nth-of-type="2";form#edit-project:attr__id="edit-project"attr_id="edit-project"nth-child="1"nth-of-type="1";body:nth-child="2"nth-of-type="1""#;

    #[test]
    fn target_element_comes_first_with_its_classes_and_text() {
        let elements = parse(SAVE);
        assert_eq!(elements.len(), 4, "four elements up to body");
        let target = &elements[0];
        assert_eq!(target.tag(), "button");
        assert_eq!(target.classes(), vec!["btn", "btn-primary"]);
        assert_eq!(target.text(), Some("Save changes"));
        assert_eq!(target.id(), Some("save-project"));
        assert_eq!(target.input_type(), Some("submit"));
        assert_eq!(elements[2].tag(), "form");
        assert_eq!(elements[2].id(), Some("edit-project"));
        assert_eq!(elements[3].tag(), "body");
        assert_eq!(elements[3].attr("nth-child"), Some("2"));
    }

    #[test]
    fn escaped_quotes_stay_inside_the_value() {
        let chain = r#"button:text="Say \"hi\" now"nth-child="1";body:nth-child="1""#;
        let elements = parse(chain);
        assert_eq!(elements.len(), 2);
        assert_eq!(elements[0].text(), Some(r#"Say "hi" now"#));
        assert_eq!(elements[0].attr("nth-child"), Some("1"));
    }

    #[test]
    fn semicolons_inside_quoted_values_do_not_split_elements() {
        let chain = r#"a:href="/x?a=1;b=2"text="One; two";div:nth-child="1""#;
        let elements = parse(chain);
        assert_eq!(elements.len(), 2, "split only outside quotes");
        assert_eq!(elements[0].href(), Some("/x?a=1;b=2"));
        assert_eq!(elements[0].text(), Some("One; two"));
        assert_eq!(elements[1].tag(), "div");
    }

    #[test]
    fn text_key_inside_another_key_is_not_mistaken_for_text() {
        let chain = r#"button:attr__data-text="wrong"nth-child="1""#;
        let elements = parse(chain);
        assert_eq!(elements[0].text(), None);
        assert_eq!(elements[0].attr("attr__data-text"), Some("wrong"));
    }

    #[test]
    fn missing_text_gives_none_and_other_labels_remain() {
        let chain = r#"input.field:attr__aria-label="Priority"attr__name="priority"attr__type="number"nth-child="1"nth-of-type="1";form:nth-child="1""#;
        let target = &parse(chain)[0];
        assert_eq!(target.tag(), "input");
        assert_eq!(target.text(), None);
        assert_eq!(target.aria_label(), Some("Priority"));
        assert_eq!(target.name(), Some("priority"));
        assert_eq!(target.input_type(), Some("number"));
    }

    #[test]
    fn links_expose_their_href() {
        let chain = r#"a.nav-link:attr__class="nav-link"attr__href="/settings/billing"href="/settings/billing"nth-child="4"nth-of-type="4"text="Billing";nav:nth-child="1"nth-of-type="1""#;
        let target = &parse(chain)[0];
        assert_eq!(target.tag(), "a");
        assert_eq!(target.href(), Some("/settings/billing"));
        assert_eq!(target.text(), Some("Billing"));
    }

    #[test]
    fn tailwind_classes_with_colons_stay_in_the_head() {
        let chain = r#"button.md:flex.hover:bg-blue:nth-child="1"text="Go""#;
        let target = &parse(chain)[0];
        assert_eq!(target.tag(), "button");
        assert_eq!(target.classes(), vec!["md:flex", "hover:bg-blue"]);
        assert_eq!(target.text(), Some("Go"));
    }

    #[test]
    fn very_long_and_multibyte_text_is_kept_whole() {
        let long = "é✓ ".repeat(400);
        let chain = format!(r#"button:text="{long}";body:nth-child="1""#);
        let elements = parse(&chain);
        assert_eq!(elements.len(), 2);
        assert_eq!(elements[0].attr("text"), Some(long.as_str()));
    }

    #[test]
    fn posthog_elements_arrays_give_the_same_elements_as_the_chain() {
        let array = serde_json::json!([
            {"tag_name": "button", "$el_text": "Save changes", "attr__class": "btn btn-primary",
             "attr__id": "save-project", "attr__type": "submit", "nth_child": 2, "nth_of_type": 2},
            {"tag_name": "form", "attr__id": "edit-project", "nth_child": 1, "nth_of_type": 1}
        ]);
        let from_array = from_posthog_elements(array.as_array().unwrap());
        let from_chain = parse(SAVE);
        assert_eq!(from_array[0].tag(), from_chain[0].tag());
        assert_eq!(from_array[0].classes(), from_chain[0].classes());
        assert_eq!(from_array[0].text(), from_chain[0].text());
        assert_eq!(from_array[0].id(), from_chain[0].id());
        assert_eq!(from_array[0].input_type(), Some("submit"));
        assert_eq!(from_array[0].attr("nth-child"), Some("2"));
        assert_eq!(from_array[1].id(), Some("edit-project"));
    }

    #[test]
    fn garbage_never_panics_and_keeps_what_it_can() {
        for chain in [
            "",
            ";;;",
            "\"",
            "\\",
            ":",
            "a:b",
            r#"a:text="unterminated"#,
            r#"a:text="ends with backslash\"#,
            "::=\"\"",
            "é:é=\"é\"",
            r#"button:text="ok"garbage"#,
        ] {
            let _ = parse(chain);
        }
        let elements = parse(r#"a:text="unterminated"#);
        assert_eq!(elements[0].text(), Some("unterminated"));
        assert!(parse("").is_empty());
    }
}
