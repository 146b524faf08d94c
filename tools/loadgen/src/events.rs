//! Realistic PostHog bodies: the stock webhook fixture with per-request values,
//! and `{"batch":[…]}` bodies of one session's actions.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use serde_json::{Value, json};

pub const LABELS: &[&str] = &[
    "Save changes",
    "Edit",
    "Cancel",
    "Delete",
    "Export CSV",
    "Invite teammate",
    "New project",
    "Search",
    "Apply filter",
    "Upgrade plan",
    "Settings",
    "Billing",
    "Archive",
    "Duplicate",
    "Share",
];

pub const PATHS: &[&str] = &[
    "/projects",
    "/projects/8812",
    "/projects/1204",
    "/projects/77",
    "/dashboard",
    "/settings/billing",
    "/settings/team",
    "/reports/weekly",
    "/inbox",
];

pub const FIXTURE: &str = "tests/fixtures/posthog-webhook-autocapture.json";

/// A user's name, session id and email, all derived from an index.
pub fn user_name(prefix: &str, i: usize) -> String {
    format!("{prefix}_{i}")
}

/// A PostHog-like session id (UUIDv7 shape) derived from an index and a tag.
pub fn session_id(tag: u16, i: usize) -> String {
    format!("01932a70-{tag:04x}-7000-8000-{i:012x}")
}

#[derive(Clone, Copy)]
enum Slot {
    Uuid,
    User,
    Session,
    Label,
    Path,
    Ts,
}

/// The stock webhook fixture with placeholders, split once so a body is a few
/// string pushes (the client's CPU is shared with the server on this machine).
pub struct WebhookTemplate {
    parts: Vec<String>,
    slots: Vec<Slot>,
}

pub struct WebhookValues<'a> {
    pub user: &'a str,
    pub session: &'a str,
    pub label: &'a str,
    pub path: &'a str,
}

impl WebhookTemplate {
    pub fn load(repo: &Path) -> anyhow::Result<Self> {
        let file = repo.join(FIXTURE);
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {} (pass --repo)", file.display()))?;
        let mut v: Value = serde_json::from_str(&text)?;
        let ev = &mut v["event"];
        ev["uuid"] = json!("@@UUID@@");
        ev["distinct_id"] = json!("@@USER@@");
        ev["timestamp"] = json!("@@TS@@");
        ev["url"] = json!("https://us.posthog.com/project/1/events/@@UUID@@");
        let chain = ev["elements_chain"]
            .as_str()
            .unwrap_or_default()
            .replace("Save changes", "@@LABEL@@");
        ev["elements_chain"] = json!(chain);
        let props = &mut ev["properties"];
        props["$el_text"] = json!("@@LABEL@@");
        props["$session_id"] = json!("@@SESSION@@");
        props["$current_url"] = json!("https://app.example.com@@PATH@@");
        props["$pathname"] = json!("@@PATH@@");
        props["email"] = json!("@@USER@@@example.com");
        let person = &mut v["person"];
        person["name"] = json!("@@USER@@@example.com");
        person["url"] = json!("https://us.posthog.com/project/1/person/@@USER@@");
        person["properties"]["email"] = json!("@@USER@@@example.com");
        let text = serde_json::to_string(&v)?;

        let mut parts = Vec::new();
        let mut slots = Vec::new();
        let mut rest = text.as_str();
        while let Some(start) = rest.find("@@") {
            let after = &rest[start + 2..];
            let Some(len) = after.find("@@") else { break };
            let slot = match &after[..len] {
                "UUID" => Slot::Uuid,
                "USER" => Slot::User,
                "SESSION" => Slot::Session,
                "LABEL" => Slot::Label,
                "PATH" => Slot::Path,
                "TS" => Slot::Ts,
                other => anyhow::bail!("unknown placeholder {other}"),
            };
            parts.push(rest[..start].to_owned());
            slots.push(slot);
            rest = &after[len + 2..];
        }
        parts.push(rest.to_owned());
        Ok(Self { parts, slots })
    }

    /// One body with a fresh event uuid and the current time.
    pub fn render(&self, v: &WebhookValues<'_>) -> String {
        let uuid = uuid::Uuid::new_v4().to_string();
        let ts = rfc3339(SystemTime::now());
        let mut out = String::with_capacity(1600);
        for (i, part) in self.parts.iter().enumerate() {
            out.push_str(part);
            if let Some(slot) = self.slots.get(i) {
                out.push_str(match slot {
                    Slot::Uuid => &uuid,
                    Slot::User => v.user,
                    Slot::Session => v.session,
                    Slot::Label => v.label,
                    Slot::Path => v.path,
                    Slot::Ts => &ts,
                });
            }
        }
        out
    }
}

fn elements_chain(label: &str) -> String {
    format!(
        "button.btn.btn-primary:attr__class=\"btn btn-primary\"attr__type=\"button\"nth-child=\"2\"nth-of-type=\"2\"text=\"{label}\";div.toolbar:attr__class=\"toolbar\"nth-child=\"1\"nth-of-type=\"1\";main:nth-child=\"2\"nth-of-type=\"1\";body:nth-child=\"2\"nth-of-type=\"1\""
    )
}

/// `{"batch":[…]}` with `actions` events of one session (like tests/fixtures/batch.json):
/// mostly clicks on varied labels and pages, a `$pageview` every fifth event,
/// timestamps 2 s apart ending now.
pub fn session_batch(user: &str, session: &str, actions: usize, seed: usize) -> String {
    let now = SystemTime::now();
    let mut events = Vec::with_capacity(actions);
    for j in 0..actions {
        let k = seed.wrapping_mul(31).wrapping_add(j * 7);
        let path = PATHS[k % PATHS.len()];
        let label = LABELS[(k / 3) % LABELS.len()];
        let ts = rfc3339(now - Duration::from_secs(2 * (actions - j) as u64));
        let url = format!("https://app.example.com{path}");
        let uuid = uuid::Uuid::new_v4().to_string();
        let event = if j % 5 == 0 {
            json!({
                "uuid": uuid, "event": "$pageview", "distinct_id": user, "timestamp": ts,
                "properties": {"$session_id": session, "$current_url": url, "$pathname": path,
                               "$title": "Acme Projects", "email": format!("{user}@example.com")}
            })
        } else {
            json!({
                "uuid": uuid, "event": "$autocapture", "distinct_id": user, "timestamp": ts,
                "elements_chain": elements_chain(label),
                "properties": {"$event_type": "click", "$el_text": label, "$session_id": session,
                               "$current_url": url, "$pathname": path,
                               "email": format!("{user}@example.com")}
            })
        };
        events.push(event);
    }
    json!({ "batch": events }).to_string()
}

/// `2026-11-20T10:15:03.412Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, sod) = ((secs / 86_400) as i64, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60,
        d.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_instant() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_169_703_412);
        assert_eq!(rfc3339(t), "2026-11-20T10:15:03.412Z");
    }

    #[test]
    fn template_renders_valid_json() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let t = WebhookTemplate::load(&repo).unwrap();
        let body = t.render(&WebhookValues {
            user: "user_7",
            session: &session_id(1, 7),
            label: "Export CSV",
            path: "/reports/weekly",
        });
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["event"]["distinct_id"], "user_7");
        assert_eq!(v["event"]["properties"]["$el_text"], "Export CSV");
        assert!(
            v["event"]["elements_chain"]
                .as_str()
                .unwrap()
                .contains("text=\"Export CSV\"")
        );
        assert_eq!(v["person"]["properties"]["email"], "user_7@example.com");
    }
}
