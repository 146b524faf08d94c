//! Help pages into sections: one per heading, the unit that is indexed,
//! retrieved and cited. Markdown is split at `#`…`######` headings; HTML is
//! read as text, its `<h1>`…`<h6>` becoming the headings.

use std::sync::LazyLock;

use regex::Regex;

/// One retrievable piece of a page.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    /// The page's title (its first heading, else the file name).
    pub page: String,
    /// The section's own heading (the page title for text before any subheading).
    pub heading: String,
    /// Where a reader finds it: the page's URL, with `#anchor` for subsections.
    pub url: String,
    pub body: String,
}

impl Section {
    /// `Page — Heading`, or the page alone when they are the same.
    pub fn title(&self) -> String {
        if self.heading == self.page {
            self.page.clone()
        } else {
            format!("{} \u{2014} {}", self.page, self.heading)
        }
    }
}

/// A page as it comes: from a file or from the upsert API.
#[derive(Debug, Clone)]
pub struct Page<'a> {
    /// Used for the title when the text has no heading.
    pub fallback_title: &'a str,
    /// The page's URL; a `<!-- url: … -->` comment in the text overrides it.
    pub url: &'a str,
    pub text: &'a str,
    pub html: bool,
}

#[expect(clippy::expect_used, reason = "a literal regex, checked by the tests")]
static URL_COMMENT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"<!--\s*url:\s*(\S+)\s*-->").expect("valid regex"));
#[expect(clippy::expect_used, reason = "a literal regex, checked by the tests")]
static HTML_HEADING: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?is)<h([1-6])[^>]*>(.*?)</h[1-6]\s*>").expect("valid regex"));
#[expect(clippy::expect_used, reason = "a literal regex, checked by the tests")]
static HTML_DROP: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?is)<(script|style|head)[^>]*>.*?</(script|style|head)\s*>|<!--.*?-->")
        .expect("valid regex")
});
#[expect(clippy::expect_used, reason = "a literal regex, checked by the tests")]
static HTML_BREAK: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)<\s*(br|/p|/li|/div|/tr|/h[1-6])[^>]*>").expect("valid regex")
});
#[expect(clippy::expect_used, reason = "a literal regex, checked by the tests")]
static TAG: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"<[^>]*>").expect("valid regex"));
#[expect(clippy::expect_used, reason = "a literal regex, checked by the tests")]
static MD_HEADING: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(#{1,6})\s+(.+?)\s*#*\s*$").expect("valid regex"));

/// The page's sections, in order; sections with no text are left out.
pub fn split(page: &Page<'_>) -> Vec<Section> {
    let url = URL_COMMENT
        .captures(page.text)
        .and_then(|c| c.get(1))
        .map_or(page.url, |m| m.as_str())
        .to_owned();
    let text = if page.html {
        html_to_markdownish(page.text)
    } else {
        URL_COMMENT.replace_all(page.text, "").into_owned()
    };
    // (level, heading, body lines)
    let mut parts: Vec<(usize, String, Vec<&str>)> = vec![(0, String::new(), Vec::new())];
    let mut in_code = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
        }
        let heading = (!in_code).then(|| MD_HEADING.captures(line)).flatten();
        match heading {
            Some(c) => parts.push((c[1].len(), clean_inline(&c[2]), Vec::new())),
            None => {
                if let Some(last) = parts.last_mut() {
                    last.2.push(line);
                }
            }
        }
    }
    let page_title = parts
        .iter()
        .find(|(level, ..)| *level == 1)
        .map_or_else(|| page.fallback_title.to_owned(), |(_, h, _)| h.clone());
    parts
        .into_iter()
        .filter_map(|(level, heading, lines)| {
            let body = clean_body(&lines);
            if body.is_empty() {
                return None;
            }
            let (heading, url) = if level <= 1 {
                (page_title.clone(), url.clone())
            } else {
                let anchor = slug(&heading);
                let url = if url.is_empty() {
                    String::new()
                } else {
                    format!("{}#{anchor}", url.split('#').next().unwrap_or(&url))
                };
                (heading, url)
            };
            Some(Section {
                page: page_title.clone(),
                heading,
                url,
                body,
            })
        })
        .collect()
}

/// HTML as text with Markdown headings, so one splitter serves both.
fn html_to_markdownish(html: &str) -> String {
    let html = HTML_DROP.replace_all(html, "");
    let html = HTML_HEADING.replace_all(&html, |c: &regex::Captures<'_>| {
        let level: usize = c[1].parse().unwrap_or(1);
        format!(
            "\n{} {}\n",
            "#".repeat(level),
            TAG.replace_all(&c[2], "").trim()
        )
    });
    let html = HTML_BREAK.replace_all(&html, "\n");
    decode_entities(&TAG.replace_all(&html, ""))
}

fn decode_entities(text: &str) -> String {
    text.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// Markdown emphasis and links reduced to their words.
fn clean_inline(text: &str) -> String {
    #[expect(clippy::expect_used, reason = "a literal regex, checked by the tests")]
    static LINK: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"!?\[([^\]]*)\]\([^)]*\)").expect("valid regex"));
    LINK.replace_all(text, "$1")
        .replace(['*', '`'], "")
        .trim()
        .to_owned()
}

fn clean_body(lines: &[&str]) -> String {
    let text: Vec<String> = lines.iter().map(|l| clean_inline(l.trim_end())).collect();
    // Runs of blank lines become one.
    let mut out = String::new();
    for line in text {
        if line.is_empty() && (out.is_empty() || out.ends_with("\n\n")) {
            continue;
        }
        out.push_str(&line);
        out.push('\n');
    }
    out.trim().to_owned()
}

/// `Change the priority` → `change-the-priority` (GitHub's anchors).
pub fn slug(heading: &str) -> String {
    let mut slug = String::new();
    for c in heading.chars() {
        if c.is_alphanumeric() {
            slug.extend(c.to_lowercase());
        } else if (c == ' ' || c == '-') && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    slug.trim_matches('-').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md(text: &str) -> Vec<Section> {
        split(&Page {
            fallback_title: "file",
            url: "https://docs.example.com/edit",
            text,
            html: false,
        })
    }

    #[test]
    fn markdown_splits_at_headings_with_anchored_urls() {
        let sections = md(
            "<!-- url: https://acme.example.com/help/priority -->\n\n# Priority\n\nIntro text.\n\n## Change the **priority**\n\n1. Click 'Edit'.\n2. Pick a priority, then 'Save changes'.\n\n## Empty\n\n```\n# not a heading\n```\n",
        );
        assert_eq!(sections.len(), 3, "{sections:#?}");
        assert_eq!(sections[0].title(), "Priority");
        assert_eq!(sections[0].url, "https://acme.example.com/help/priority");
        assert_eq!(sections[0].body, "Intro text.");
        assert_eq!(sections[1].title(), "Priority \u{2014} Change the priority");
        assert_eq!(
            sections[1].url,
            "https://acme.example.com/help/priority#change-the-priority"
        );
        assert!(sections[1].body.contains("then 'Save changes'"));
        assert!(sections[2].body.contains("# not a heading"), "code is body");
    }

    #[test]
    fn a_page_without_headings_is_one_section_named_after_the_file() {
        let sections = md("Just [a link](https://x) and text.");
        assert_eq!(sections.len(), 1);
        assert_eq!(sections[0].title(), "file");
        assert_eq!(sections[0].body, "Just a link and text.");
        assert!(md("\n\n").is_empty());
    }

    #[test]
    fn html_is_read_as_text_with_its_headings() {
        let sections = split(&Page {
            fallback_title: "f",
            url: "/help/export",
            text: "<html><head><title>x</title><style>p{}</style></head><body><h1>Export</h1><p>Download a <b>CSV</b> &amp; more.</p><h2 id=a>Steps</h2><ol><li>Click 'Export'</li><li>Pick CSV</li></ol><script>alert(1)</script></body></html>",
            html: true,
        });
        assert_eq!(sections.len(), 2, "{sections:#?}");
        assert_eq!(sections[0].body, "Download a CSV & more.");
        assert_eq!(sections[1].title(), "Export \u{2014} Steps");
        assert_eq!(sections[1].url, "/help/export#steps");
        assert_eq!(sections[1].body, "Click 'Export'\nPick CSV");
    }
}
