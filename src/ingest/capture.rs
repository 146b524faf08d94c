//! posthog-js capture bodies (`/e/`, `/batch/`, …): gzip, base64 form
//! (`data=…`) or plain JSON, detected by content rather than trusted headers;
//! the project token found; events handed on as JSON values for
//! [`super::event::parse_events`]. Pure: bytes in, values out.

use std::io::Read;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use flate2::read::GzDecoder;
use serde_json::Value;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Why a capture body was refused.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The body looks gzipped but does not inflate.
    #[error("body is not valid gzip: {0}")]
    Gzip(#[source] std::io::Error),
    /// Inflated or decoded, the body is larger than allowed (a zip bomb, say).
    #[error("decompressed body is larger than the limit of {limit} bytes")]
    TooLarge { limit: usize },
    /// A `data=` form value that is not base64.
    #[error("`data` is not valid base64: {0}")]
    Base64(#[source] base64::DecodeError),
    /// Not JSON after decoding.
    #[error("body is not valid JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// JSON, but neither an event, a batch nor an array of events.
    #[error("body must be an event, {{\"batch\": [...]}} or an array of events")]
    Shape,
}

/// A decoded capture request.
#[derive(Debug, Clone, PartialEq)]
pub struct Capture {
    /// The project token (`phc_…`): top-level `api_key`/`token`, or an event's
    /// `properties.token`.
    pub token: Option<String>,
    pub events: Vec<Value>,
}

/// Decodes a capture body. `compression` is the `compression` query parameter
/// when present; content wins over it (posthog-js does not always send it).
pub fn decode(
    body: &[u8],
    compression: Option<&str>,
    limit: usize,
) -> Result<Capture, CaptureError> {
    let json = decoded_json(body, compression, limit)?;
    let value: Value = serde_json::from_slice(&json).map_err(CaptureError::Json)?;
    split(value)
}

fn decoded_json(
    body: &[u8],
    compression: Option<&str>,
    limit: usize,
) -> Result<Vec<u8>, CaptureError> {
    let body = trim_ascii(body);
    if body.starts_with(&GZIP_MAGIC) {
        return gunzip(body, limit);
    }
    if let Some(data) = form_data(body) {
        let data = data.trim();
        if data.starts_with('{') || data.starts_with('[') {
            return Ok(data.as_bytes().to_vec());
        }
        let decoded = base64_decode(data)?;
        if decoded.starts_with(&GZIP_MAGIC) {
            return gunzip(&decoded, limit);
        }
        return Ok(decoded);
    }
    if compression == Some("base64") && !body.starts_with(b"{") && !body.starts_with(b"[") {
        return base64_decode(&String::from_utf8_lossy(body));
    }
    Ok(body.to_vec())
}

fn trim_ascii(body: &[u8]) -> &[u8] {
    let start = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(body.len());
    &body[start..]
}

fn gunzip(body: &[u8], limit: usize) -> Result<Vec<u8>, CaptureError> {
    let mut out = Vec::new();
    // Read one byte past the limit to know whether it was exceeded, never more.
    GzDecoder::new(body)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(CaptureError::Gzip)?;
    if out.len() > limit {
        return Err(CaptureError::TooLarge { limit });
    }
    Ok(out)
}

/// The `data` value of a form-encoded body (`data=…&compression=base64`).
fn form_data(body: &[u8]) -> Option<String> {
    if !body.starts_with(b"data=") && !body.windows(6).any(|w| w == b"&data=") {
        return None;
    }
    url::form_urlencoded::parse(body)
        .find(|(key, _)| key == "data")
        .map(|(_, value)| value.into_owned())
}

fn base64_decode(data: &str) -> Result<Vec<u8>, CaptureError> {
    let cleaned: String = data.chars().filter(|c| !c.is_whitespace()).collect();
    STANDARD
        .decode(&cleaned)
        .or_else(|_| URL_SAFE.decode(&cleaned))
        .map_err(CaptureError::Base64)
}

fn token_of(map: &serde_json::Map<String, Value>) -> Option<String> {
    ["api_key", "token"]
        .iter()
        .find_map(|k| map.get(*k))
        .or_else(|| map.get("properties").and_then(|p| p.get("token")))
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}

fn split(value: Value) -> Result<Capture, CaptureError> {
    let (top_token, events) = match value {
        Value::Object(mut map) => match map.remove("batch") {
            Some(Value::Array(events)) => (token_of(&map), events),
            Some(_) => return Err(CaptureError::Shape),
            None => (None, vec![Value::Object(map)]),
        },
        Value::Array(events) => (None, events),
        _ => return Err(CaptureError::Shape),
    };
    let token = top_token.or_else(|| {
        events
            .iter()
            .filter_map(Value::as_object)
            .find_map(token_of)
    });
    Ok(Capture { token, events })
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::Compression;
    use flate2::write::GzEncoder;
    use serde_json::json;

    use super::*;

    const LIMIT: usize = 1 << 20;

    fn batch() -> Value {
        json!({"api_key": "phc_x", "batch": [{"event": "$pageview", "properties": {"distinct_id": "u"}}], "sent_at": "now"})
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn every_encoding_posthog_js_sends_decodes_to_the_same_events() {
        let json_text = batch().to_string();
        let b64 = STANDARD.encode(&json_text);
        let form = format!(
            "data={}&compression=base64",
            url::form_urlencoded::byte_serialize(b64.as_bytes()).collect::<String>()
        );
        let cases: Vec<(&str, Vec<u8>, Option<&str>)> = vec![
            ("plain json", json_text.clone().into_bytes(), None),
            ("gzip-js", gzip(json_text.as_bytes()), Some("gzip-js")),
            ("gzip without query", gzip(json_text.as_bytes()), None),
            ("base64 form", form.into_bytes(), Some("base64")),
            ("raw base64 body", b64.into_bytes(), Some("base64")),
            (
                "form with plain json",
                format!(
                    "data={}",
                    url::form_urlencoded::byte_serialize(json_text.as_bytes()).collect::<String>()
                )
                .into_bytes(),
                None,
            ),
        ];
        for (why, body, compression) in cases {
            let capture =
                decode(&body, compression, LIMIT).unwrap_or_else(|e| panic!("{why}: {e}"));
            assert_eq!(capture.token.as_deref(), Some("phc_x"), "{why}");
            assert_eq!(capture.events.len(), 1, "{why}");
            assert_eq!(capture.events[0]["event"], "$pageview", "{why}");
        }
    }

    #[test]
    fn single_events_and_arrays_find_the_token_in_properties() {
        let single = json!({"event": "x", "properties": {"token": "phc_p", "distinct_id": "u"}});
        assert_eq!(
            decode(single.to_string().as_bytes(), None, LIMIT)
                .unwrap()
                .token
                .as_deref(),
            Some("phc_p")
        );
        let array = json!([{"event": "x", "properties": {"token": "phc_a"}}]);
        assert_eq!(
            decode(array.to_string().as_bytes(), None, LIMIT)
                .unwrap()
                .token
                .as_deref(),
            Some("phc_a")
        );
    }

    #[test]
    fn corrupt_bodies_are_clear_errors() {
        let mut truncated = gzip(batch().to_string().as_bytes());
        truncated.truncate(truncated.len() / 2);
        assert!(matches!(
            decode(&truncated, Some("gzip-js"), LIMIT),
            Err(CaptureError::Gzip(_))
        ));
        assert!(matches!(
            decode(&[0x1f, 0x8b, 0, 1, 2], None, LIMIT),
            Err(CaptureError::Gzip(_))
        ));
        assert!(matches!(
            decode(b"data=%%%not-base64!!", Some("base64"), LIMIT),
            Err(CaptureError::Base64(_))
        ));
        assert!(matches!(
            decode(b"{\"batch\": [", None, LIMIT),
            Err(CaptureError::Json(_))
        ));
        assert!(matches!(
            decode(b"\"text\"", None, LIMIT),
            Err(CaptureError::Shape)
        ));
        assert!(matches!(
            decode(b"{\"batch\": 3}", None, LIMIT),
            Err(CaptureError::Shape)
        ));
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_limit() {
        let bomb = gzip(&vec![b' '; 50 * LIMIT]);
        assert!(bomb.len() < LIMIT / 10, "the bomb is small on the wire");
        assert!(matches!(
            decode(&bomb, Some("gzip-js"), LIMIT),
            Err(CaptureError::TooLarge { .. })
        ));
    }
}
