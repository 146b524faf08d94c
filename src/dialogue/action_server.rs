//! Custom actions through Rasa's action-server protocol (what `rasa-sdk`
//! serves): POST `{next_action, sender_id, tracker, domain, version}` to the
//! endpoint, get back `{events, responses}`. Errors are typed; the copilot
//! turns each into a polite reply and one log line.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::tracker::Tracker;

/// The Rasa version we speak for (rasa-sdk checks the major version).
pub const RASA_VERSION: &str = "3.6.0";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the action server did not answer within {0:?}")]
    Timeout(Duration),
    #[error("could not reach the action server: {0}")]
    Unreachable(String),
    /// The action refused the message (e.g. a form's validation).
    #[error("the action rejected the message: {0}")]
    Rejected(String),
    #[error("the action server answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("the action server's answer is not valid: {0}")]
    BadBody(String),
}

/// What the action asked for.
#[derive(Debug, Default, Deserialize)]
pub struct ActionResult {
    #[serde(default)]
    pub events: Vec<Json>,
    #[serde(default)]
    pub responses: Vec<Json>,
}

pub struct ActionServer {
    url: String,
    client: reqwest::Client,
    timeout: Duration,
}

impl ActionServer {
    pub fn new(url: String, timeout: Duration) -> Self {
        Self {
            url,
            client: reqwest::Client::new(),
            timeout,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub async fn run(
        &self,
        action: &str,
        sender: &str,
        tracker: &Tracker,
        domain: &Json,
    ) -> Result<ActionResult, Error> {
        let body = json!({
            "next_action": action,
            "sender_id": sender,
            "tracker": tracker_json(sender, tracker),
            "domain": domain,
            "version": RASA_VERSION,
        });
        let bytes = serde_json::to_vec(&body).map_err(|e| Error::BadBody(e.to_string()))?;
        let request = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(bytes)
            .send();
        let response = tokio::time::timeout(self.timeout, async {
            let response = request.await?;
            let status = response.status();
            let body = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, body))
        })
        .await
        .map_err(|_| Error::Timeout(self.timeout))?
        .map_err(|e| Error::Unreachable(e.to_string()))?;
        let (status, body) = response;
        if status == reqwest::StatusCode::BAD_REQUEST {
            // rasa-sdk's answer to ActionExecutionRejection.
            let error: Json = serde_json::from_slice(&body).unwrap_or_default();
            return Err(Error::Rejected(
                error["error"].as_str().unwrap_or("rejected").to_owned(),
            ));
        }
        if !status.is_success() {
            return Err(Error::Status {
                status: status.as_u16(),
                body: String::from_utf8_lossy(&body).chars().take(200).collect(),
            });
        }
        serde_json::from_slice(&body).map_err(|e| Error::BadBody(e.to_string()))
    }
}

/// The tracker as Rasa sends it to the action server.
pub fn tracker_json(sender: &str, tracker: &Tracker) -> Json {
    let latest = tracker.latest().map_or(Json::Null, |l| {
        let intent = json!({"name": l.intent, "confidence": l.confidence});
        json!({
            "intent": intent,
            "entities": l.entities,
            "text": l.text,
            "intent_ranking": [intent],
        })
    });
    json!({
        "sender_id": sender,
        "slots": tracker.slots(),
        "latest_message": latest,
        "latest_event_time": chrono::Utc::now().timestamp_millis() as f64 / 1000.0,
        "followup_action": null,
        "paused": false,
        "events": tracker.events_json(),
        "latest_input_channel": null,
        "latest_action_name": tracker.latest_action(),
        "latest_action": {"action_name": tracker.latest_action()},
        "active_loop": tracker.active_loop().map_or(json!({}), |name| json!({"name": name})),
    })
}
