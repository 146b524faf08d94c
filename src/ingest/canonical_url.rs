//! Canonical URLs: the same page gives the same string whatever record it shows.
//! Query and fragment are dropped; path segments that are ids become `:id`.

use url::Url;

/// A URL split into the forms actions carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonicalUrl {
    /// `https://app.example.com/projects/:id`, or the path alone when the input had
    /// no scheme and host.
    pub url: String,
    /// `/projects/:id`.
    pub path: String,
}

/// Canonicalises an absolute URL or a bare path. Never fails: input that is not a
/// URL is treated as a path.
pub fn canonicalise(raw: &str) -> CanonicalUrl {
    let raw = raw.trim();
    if let Ok(url) = Url::parse(raw)
        && url.has_host()
    {
        let path = canonical_path(url.path());
        let mut origin = url.origin().ascii_serialization();
        if origin == "null" {
            origin.clear();
        }
        return CanonicalUrl {
            url: format!("{origin}{path}"),
            path,
        };
    }
    let path_only = raw.split(['?', '#']).next().unwrap_or_default();
    let path = canonical_path(path_only);
    CanonicalUrl {
        url: path.clone(),
        path,
    }
}

fn canonical_path(path: &str) -> String {
    let segments: Vec<&str> = path
        .split('/')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if segments.is_empty() {
        return "/".to_owned();
    }
    let mut out = String::new();
    for segment in segments {
        out.push('/');
        if looks_like_id(segment) {
            out.push_str(":id");
        } else {
            out.push_str(segment);
        }
    }
    out
}

/// Numbers, UUIDs, long hex strings, and long mixed letter/digit tokens (ULIDs,
/// nanoids, `prj_8xK2…`) are ids; words, slugs and short versions (`v2`) are not.
fn looks_like_id(segment: &str) -> bool {
    let has_digit = segment.bytes().any(|b| b.is_ascii_digit());
    if !has_digit {
        return false;
    }
    if segment.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    if is_uuid(segment) {
        return true;
    }
    let alnum = |b: u8| b.is_ascii_alphanumeric();
    if segment.len() >= 12 && segment.bytes().all(|b| b.is_ascii_hexdigit()) {
        return true;
    }
    let has_alpha = segment.bytes().any(|b| b.is_ascii_alphabetic());
    if segment.len() >= 16 && has_alpha && segment.bytes().all(alnum) {
        return true;
    }
    // Prefixed ids such as `prj_8xK2mQ9s` or `cus-4f9a21bc`.
    if let Some((prefix, rest)) = segment.split_once(['_', '-'])
        && !prefix.is_empty()
        && prefix.bytes().all(|b| b.is_ascii_alphabetic())
        && rest.len() >= 8
        && rest.bytes().all(alnum)
        && rest.bytes().any(|b| b.is_ascii_digit())
    {
        return true;
    }
    false
}

fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, len)| g.len() == len && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_urls_follow_the_rules() {
        let cases = [
            (
                "https://app.example.com/projects/8812?tab=details#x",
                "https://app.example.com/projects/:id",
                "numeric id and query dropped",
            ),
            (
                "https://app.example.com/projects",
                "https://app.example.com/projects",
                "plain page unchanged",
            ),
            (
                "https://app.example.com/",
                "https://app.example.com/",
                "root keeps its slash",
            ),
            (
                "https://app.example.com/p/01932a70-0000-7000-8000-00000000abcd/edit",
                "https://app.example.com/p/:id/edit",
                "uuid",
            ),
            (
                "https://app.example.com/o/507f1f77bcf86cd799439011",
                "https://app.example.com/o/:id",
                "mongo object id",
            ),
            (
                "https://app.example.com/c/prj_8xK2mQ9s",
                "https://app.example.com/c/:id",
                "prefixed id",
            ),
            (
                "https://app.example.com/api/v2/settings/",
                "https://app.example.com/api/v2/settings",
                "short version kept, trailing slash dropped",
            ),
            (
                "https://app.example.com:8443/a//b",
                "https://app.example.com:8443/a/b",
                "port kept, empty segment dropped",
            ),
            ("/projects/42?x=1", "/projects/:id", "bare path"),
            ("", "/", "empty"),
            (
                "https://app.example.com/blog/how-to-use-2fa",
                "https://app.example.com/blog/how-to-use-2fa",
                "slug with a digit is not an id",
            ),
        ];
        for (input, expected, why) in cases {
            assert_eq!(canonicalise(input).url, expected, "{why}: {input}");
        }
    }

    #[test]
    fn path_is_the_canonical_path() {
        let c = canonicalise("https://app.example.com/projects/8812?tab=details");
        assert_eq!(c.path, "/projects/:id");
    }
}
