//! The team console's API (`/admin/api/…`): logins and their cookie, CSRF,
//! product isolation, recorded turns with their reasons, search and export,
//! the live view over SSE, the NLU inbox retraining the classifier, and the
//! numbers. Browser tests of the pages are in `browser.rs`.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::fake_llm::{Behaviour, FakeLlm};
use crate::helpers::{
    API_KEY, PRODUCT, TestApp, click_event, eventually, product, spawn_app_with, spawn_app_with_llm,
};
use crate::socket_client::SocketClient;

const ADMIN: &str = "console-admin-token-for-tests";
const OTHER: &str = "acme";
const OTHER_KEY: &str = "cpk_acme_console_key_for_tests_0123456789";

/// Two products (demo and acme), an admin token, labels in a temp file.
fn configure(s: &mut copilot_server::config::Settings, labels: &std::path::Path) {
    s.admin.token = ADMIN.to_owned().into();
    let mut other = product(OTHER, "acme-webhook-secret-for-tests-0123456789");
    other.api_key = Some(OTHER_KEY.to_owned().into());
    s.products.push(other);
    s.nlu.overrides_file = labels.join("nlu-overrides.yml");
}

/// A logged-in console client: the cookie and the CSRF token.
struct Console<'a> {
    app: &'a TestApp,
    cookie: String,
    csrf: String,
    session: Value,
}

async fn login_response(app: &TestApp, body: Value) -> reqwest::Response {
    app.client
        .post(app.url("/admin/api/login"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn login(app: &TestApp, body: Value) -> Console<'_> {
    let response = login_response(app, body).await;
    assert_eq!(response.status(), StatusCode::OK);
    let set_cookie = response
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let session: Value = response.json().await.unwrap();
    Console {
        app,
        cookie,
        csrf: session["csrf"].as_str().unwrap().to_owned(),
        session,
    }
}

async fn admin(app: &TestApp) -> Console<'_> {
    login(app, json!({ "token": ADMIN })).await
}

impl Console<'_> {
    async fn get(&self, path: &str) -> reqwest::Response {
        self.app
            .client
            .get(self.app.url(path))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap()
    }

    async fn get_json(&self, path: &str) -> Value {
        let response = self.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        response.json().await.unwrap()
    }

    async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.app
            .client
            .post(self.app.url(path))
            .header("cookie", &self.cookie)
            .header("x-csrf-token", &self.csrf)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Turns matching `query`, once at least `count` are recorded (the
    /// console's writer is asynchronous).
    async fn turns(&self, query: &str, count: usize) -> Vec<Value> {
        let path = format!("/admin/api/conversations?{query}");
        eventually(Duration::from_secs(5), || async {
            let turns = self.get_json(&path).await["turns"].as_array().cloned()?;
            (turns.len() >= count).then_some(turns)
        })
        .await
        .unwrap_or_else(|| panic!("{count} turns for {query}"))
    }
}

async fn reply_as(app: &TestApp, key: &str, user: &str, text: &str) -> String {
    let response = app.reply_as(key, user, text).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["reply"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn logins_set_a_strict_http_only_cookie_and_wrong_credentials_get_401() {
    let labels = tempfile::tempdir().unwrap();
    let app = spawn_app_with(|s| configure(s, labels.path())).await;

    for body in [
        json!({ "token": "not-the-token" }),
        json!({ "product": PRODUCT, "api_key": OTHER_KEY }),
        json!({ "product": OTHER, "api_key": "cpk_wrong" }),
    ] {
        let response = login_response(&app, body.clone()).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{body}");
        assert!(response.headers().get("set-cookie").is_none());
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"], "wrong credentials");
    }
    let response = login_response(&app, json!({ "token": ADMIN, "product": OTHER })).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let response = login_response(&app, json!({ "token": ADMIN })).await;
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("copilot_console=ccs_"), "{cookie}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/admin"] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    // Loopback: no Secure, so the console works over http://localhost.
    assert!(!cookie.contains("Secure"), "{cookie}");

    let admin = admin(&app).await;
    assert_eq!(admin.session["role"], "admin");
    assert_eq!(admin.session["products"], json!([OTHER, PRODUCT]));
    let session = admin.get_json("/admin/api/session").await;
    assert_eq!(session["role"], "admin");
    assert_eq!(session["csrf"], admin.csrf);

    let acme = login(&app, json!({ "product": OTHER, "api_key": OTHER_KEY })).await;
    assert_eq!(acme.session["role"], "product");
    assert_eq!(acme.session["product"], OTHER);
    assert_eq!(acme.session["products"], json!([OTHER]));

    // No cookie, or a made-up one: 401.
    let anonymous = app
        .client
        .get(app.url("/admin/api/session"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let forged = app
        .client
        .get(app.url("/admin/api/conversations"))
        .header("cookie", "copilot_console=ccs_forged")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);

    // Behind a non-loopback host name the cookie is Secure.
    let response = app
        .client
        .post(app.url("/admin/api/login"))
        .header("host", "console.example.com")
        .json(&json!({ "token": ADMIN }))
        .send()
        .await
        .unwrap();
    assert!(
        response.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Secure")
    );

    // The page itself is served, unframeable.
    let page = app.client.get(app.url("/admin")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert!(page.text().await.unwrap().contains("/dist/console.js"));
}

/// The status of a GET (or, with a body, a POST) to `path` with the given
/// cookie and extra headers (an `Origin`, a `Sec-Fetch-Site`).
async fn status_with(
    app: &TestApp,
    path: &str,
    cookie: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> StatusCode {
    let mut request = match body {
        Some(body) => app.client.post(app.url(path)).json(body),
        None => app.client.get(app.url(path)),
    };
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap().status()
}

#[tokio::test]
async fn changes_need_the_csrf_token_and_logins_from_other_sites_are_refused() {
    let labels = tempfile::tempdir().unwrap();
    let app = spawn_app_with(|s| configure(s, labels.path())).await;
    let admin = admin(&app).await;

    let label = json!({ "turn_ids": ["t_0"], "intent": "greet" });
    for csrf in [None, Some("wrong")] {
        let mut request = app
            .client
            .post(app.url("/admin/api/inbox/label"))
            .header("cookie", &admin.cookie)
            .json(&label);
        if let Some(csrf) = csrf {
            request = request.header("x-csrf-token", csrf);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "csrf {csrf:?}");
    }

    let login = json!({ "token": ADMIN });
    let from = |headers: &'static [(&'static str, &'static str)]| headers;
    for headers in [
        from(&[("origin", "https://evil.example")]),
        from(&[("sec-fetch-site", "cross-site")]),
    ] {
        let status = status_with(&app, "/admin/api/login", None, headers, Some(&login)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{headers:?}");
    }
    let origin = [("origin", app.address.as_str())];
    let status = status_with(&app, "/admin/api/login", None, &origin, Some(&login)).await;
    assert_eq!(status, StatusCode::OK);

    // Reads too are same-origin only: CORS mirrors any origin for the widget,
    // and a sibling subdomain's requests would carry a SameSite cookie.
    let cookie = Some(admin.cookie.as_str());
    for headers in [
        from(&[("origin", "https://evil.example")]),
        from(&[("sec-fetch-site", "same-site")]),
    ] {
        let status = status_with(&app, "/admin/api/conversations", cookie, headers, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{headers:?}");
    }
    let same_origin = [("sec-fetch-site", "same-origin"), origin[0]];
    let status = status_with(&app, "/admin/api/conversations", cookie, &same_origin, None).await;
    assert_eq!(status, StatusCode::OK);

    // Logging out ends the login on the server, not just in the browser.
    let out = admin.post("/admin/api/logout", &json!({})).await;
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        admin.get("/admin/api/session").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_product_login_sees_only_its_own_product() {
    let labels = tempfile::tempdir().unwrap();
    let app = spawn_app_with(|s| configure(s, labels.path())).await;
    app.deliver_json(&click_event(
        "iso-1",
        "dana",
        "dana-session",
        "Edit",
        "https://app.example.com/projects",
    ))
    .await;
    reply_as(&app, API_KEY, "dana", "hello").await;
    reply_as(&app, API_KEY, "dana", "what did I just do?").await;
    reply_as(&app, OTHER_KEY, "erin", "hello").await;

    let admin = admin(&app).await;
    let all = admin.turns("", 3).await;
    assert_eq!(all.len(), 3);
    let demo_conversation =
        all.iter().find(|t| t["product"] == PRODUCT).unwrap()["conversation_id"]
            .as_str()
            .unwrap()
            .to_owned();

    let acme = login(&app, json!({ "product": OTHER, "api_key": OTHER_KEY })).await;
    let own = acme.turns("", 1).await;
    assert_eq!(own.len(), 1);
    assert_eq!(own[0]["product"], OTHER);
    assert_eq!(own[0]["user"], "erin");
    assert_eq!(acme.turns(&format!("product={OTHER}"), 1).await.len(), 1);

    for path in [
        format!("/admin/api/conversations?product={PRODUCT}"),
        format!("/admin/api/conversations/{demo_conversation}"),
        format!("/admin/api/live?product={PRODUCT}"),
        format!("/admin/api/live/events?product={PRODUCT}"),
        format!("/admin/api/inbox?product={PRODUCT}"),
        format!("/admin/api/stats?product={PRODUCT}"),
        format!("/admin/api/export?product={PRODUCT}"),
        // A product that does not exist looks the same as another's.
        "/admin/api/stats?product=nope".to_owned(),
    ] {
        let response = acme.get(&path).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        let body: Value = response.json().await.unwrap();
        assert!(
            body["error"].as_str().unwrap().starts_with("no such"),
            "{path}: {body}"
        );
    }

    // The admin gets the same answer for a product that does not exist.
    let response = admin.get("/admin/api/conversations?product=nope").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    let live = acme.get_json("/admin/api/live").await;
    assert_eq!(live["product"], OTHER);
    assert_eq!(live["sessions"], json!([]), "dana's session is demo's");
    let export = acme.get("/admin/api/export").await.text().await.unwrap();
    assert_eq!(export.lines().count(), 1);
    assert!(!export.contains("dana"));
    let stats = acme.get_json("/admin/api/stats").await;
    assert_eq!(stats["totals"]["messages"], 1);
    let stats = admin.get_json("/admin/api/stats").await;
    assert_eq!(stats["totals"]["messages"], 3);
    let inbox = acme.get_json("/admin/api/inbox").await;
    assert!(!inbox.to_string().contains("dana"));

    // And a product key is no admin: it cannot label another product's turns.
    let demo_turn = all.iter().find(|t| t["product"] == PRODUCT).unwrap()["id"].clone();
    let response = acme
        .post(
            "/admin/api/inbox/label",
            &json!({ "turn_ids": [demo_turn], "intent": "greet" }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn every_turn_is_recorded_with_who_answered_and_what_the_llm_saw() {
    let labels = tempfile::tempdir().unwrap();
    let fake = FakeLlm::start(Behaviour::Answer(
        "Open a project and use Priority.".to_owned(),
    ))
    .await;
    let app = spawn_app_with_llm(&fake, |s| configure(s, labels.path())).await;
    app.deliver_json(&click_event(
        "rec-1",
        "fran",
        "fran-session",
        "Edit",
        "https://app.example.com/projects/42",
    ))
    .await;
    let answer = reply_as(&app, API_KEY, "fran", "hi").await;
    assert!(!answer.is_empty());
    reply_as(
        &app,
        API_KEY,
        "fran",
        "how do I change a project's priority?",
    )
    .await;
    reply_as(&app, API_KEY, "gil", "hello there").await;

    let admin = admin(&app).await;
    let turns = admin.turns("user=fran", 2).await;
    assert_eq!(turns.len(), 2);
    // Newest first.
    let (llm, rule) = (&turns[0], &turns[1]);
    assert_eq!(rule["text"], "hi");
    assert_eq!(rule["intent"], "greet");
    assert_eq!(rule["responder"], "rule");
    assert!(
        rule["rule"].as_str().unwrap().starts_with("rule: "),
        "{rule}"
    );
    assert_eq!(rule["actions"][0], "utter_greet");
    assert!(rule["confidence"].as_f64().unwrap() > 0.5);
    assert_eq!(rule["replies"][0], answer);
    assert_eq!(rule["prompt"], Value::Null);

    assert_eq!(llm["responder"], "llm");
    assert_eq!(llm["intent"], "nlu_fallback");
    assert_eq!(llm["fallback"], true);
    assert!(llm["llm_ms"].as_i64().is_some());
    let activity = llm["activity"].as_str().unwrap();
    assert!(activity.contains("Edit"), "{activity}");
    // The prompt recorded is the one the LLM got, byte for byte.
    let sent = fake.requests();
    let last = sent.last().unwrap();
    assert_eq!(llm["prompt"]["user"], last["messages"][1]["content"]);
    assert_eq!(llm["prompt"]["system"], last["messages"][0]["content"]);
    assert!(llm["prompt"]["user"].as_str().unwrap().contains(activity));
    assert!(
        llm["replies"][0]
            .as_str()
            .unwrap()
            .starts_with("Open a project and use Priority.")
    );
    // The demo's docs were searched and cited.
    assert!(
        llm["sources"].as_array().is_some_and(|s| !s.is_empty()),
        "{llm}"
    );

    // Search by text (message or reply, any case), intent, responder and date.
    let by_text = admin.turns("q=PRIORITY", 1).await;
    assert!(by_text.iter().all(|t| t["user"] == "fran"));
    assert_eq!(
        admin.turns("q=use%20priority", 1).await.len(),
        1,
        "reply text"
    );
    assert_eq!(admin.turns("intent=greet", 2).await.len(), 2);
    assert_eq!(admin.turns("responder=llm", 1).await.len(), 1);
    let today = chrono::Utc::now().date_naive();
    assert_eq!(
        admin
            .turns(&format!("from={today}&to={today}"), 3)
            .await
            .len(),
        3
    );
    let yesterday = today - chrono::Duration::days(1);
    let none = admin
        .get_json(&format!("/admin/api/conversations?to={yesterday}"))
        .await;
    assert_eq!(none["turns"], json!([]));
    let bad = admin.get("/admin/api/conversations?responder=wizard").await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);

    // The transcript: oldest first, with the same details.
    let id = llm["conversation_id"].as_str().unwrap();
    let transcript = admin
        .get_json(&format!("/admin/api/conversations/{id}"))
        .await;
    assert_eq!(transcript["user"], "fran");
    assert_eq!(transcript["product"], PRODUCT);
    assert_eq!(
        texts(&transcript["turns"]),
        ["hi", "how do I change a project's priority?"]
    );
    assert_eq!(transcript["turns"][1]["prompt"], llm["prompt"]);
    let missing = admin
        .get("/admin/api/conversations/c_000000000000000000000000")
        .await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    // Export: JSON Lines, one turn per line, as a download.
    let export = admin.get("/admin/api/export?user=fran").await;
    assert_eq!(export.headers()["content-type"], "application/x-ndjson");
    assert!(
        export.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("conversations.jsonl")
    );
    let lines: Vec<Value> = export
        .text()
        .await
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["id"], llm["id"]);
}

/// Turns that arrive within one millisecond still read back in the order
/// they were sent (a transcript ordered by time alone shuffled them).
#[tokio::test]
async fn a_transcript_keeps_the_order_of_messages_sent_back_to_back() {
    let labels = tempfile::tempdir().unwrap();
    let app = spawn_app_with(|s| configure(s, labels.path())).await;
    let sent: Vec<String> = (1..=12).map(|n| format!("hi {n}")).collect();
    for text in &sent {
        reply_as(&app, API_KEY, "hal", text).await;
    }
    let admin = admin(&app).await;
    let turns = admin.turns("user=hal", sent.len()).await;
    let newest_first: Vec<String> = sent.iter().rev().cloned().collect();
    assert_eq!(texts(&Value::from(turns.clone())), newest_first);
    let id = turns[0]["conversation_id"].as_str().unwrap();
    let transcript = admin
        .get_json(&format!("/admin/api/conversations/{id}"))
        .await;
    assert_eq!(texts(&transcript["turns"]), sent);
}

/// The `text` of each turn in a JSON array of turns, in order.
fn texts(turns: &Value) -> Vec<String> {
    turns
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["text"].as_str().unwrap().to_owned())
        .collect()
}

/// The next `event: live` frame's data from an SSE body, within 5 s.
async fn next_live(response: &mut reqwest::Response, buffer: &mut String) -> Value {
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Some(end) = buffer.find("\n\n") {
                let frame: String = buffer.drain(..end + 2).collect();
                if frame.contains("event: live") {
                    let data = frame
                        .lines()
                        .find_map(|l| l.strip_prefix("data: "))
                        .unwrap();
                    return serde_json::from_str(data).unwrap();
                }
                continue;
            }
            let chunk = response.chunk().await.unwrap().unwrap();
            buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn the_live_view_streams_a_session_as_its_actions_arrive() {
    let labels = tempfile::tempdir().unwrap();
    let app = spawn_app_with(|s| configure(s, labels.path())).await;
    app.deliver_json(&click_event(
        "live-1",
        "hana",
        "hana-session",
        "Edit",
        "https://app.example.com/projects/1",
    ))
    .await;
    let admin = admin(&app).await;
    let mut response = admin
        .get(&format!("/admin/api/live/events?product={PRODUCT}"))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut buffer = String::new();
    let first = next_live(&mut response, &mut buffer).await;
    let session = &first["sessions"][0];
    assert_eq!(session["session_id"], "hana-session");
    assert_eq!(session["user_id"], "hana");
    assert_eq!(session["actions"].as_array().unwrap().len(), 1);
    assert!(
        session["actions"][0]["text"]
            .as_str()
            .unwrap()
            .contains("Edit")
    );

    app.deliver_json(&click_event(
        "live-2",
        "hana",
        "hana-session",
        "Save changes",
        "https://app.example.com/projects/1",
    ))
    .await;
    let second = next_live(&mut response, &mut buffer).await;
    let actions = second["sessions"][0]["actions"].as_array().unwrap();
    assert_eq!(actions.len(), 2, "{second}");
    assert!(
        actions[1]["text"]
            .as_str()
            .unwrap()
            .contains("Save changes")
    );
    // The plain read gives the same view.
    let live = admin
        .get_json(&format!("/admin/api/live?product={PRODUCT}"))
        .await;
    assert_eq!(
        live["sessions"][0]["actions"],
        second["sessions"][0]["actions"]
    );
}

async fn parse(app: &TestApp, text: &str) -> Value {
    app.client
        .post(app.url("/model/parse"))
        .json(&json!({ "text": text }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn labelling_inbox_messages_writes_rasa_yaml_and_retrains_at_once() {
    let labels = tempfile::tempdir().unwrap();
    let app = spawn_app_with(|s| configure(s, labels.path())).await;
    const ODD: &str = "zorblax the quarterly frobnication";
    assert_eq!(parse(&app, ODD).await["intent"]["name"], "nlu_fallback");
    reply_as(&app, API_KEY, "ivy", ODD).await;
    reply_as(&app, API_KEY, "jo", "zorblax quarterly frobnication").await;
    reply_as(&app, API_KEY, "kim", "is there a dark mode").await;
    reply_as(&app, API_KEY, "kim", "hello").await;

    let admin = admin(&app).await;
    admin.turns("", 4).await;
    let inbox = admin.get_json("/admin/api/inbox").await;
    assert_eq!(inbox["out_of_scope"], "nlu_fallback");
    assert!(
        inbox["intents"]
            .as_array()
            .unwrap()
            .contains(&json!("ask_bulk_edit"))
    );
    let groups = inbox["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "{inbox}");
    assert_eq!(groups[0]["count"], 2, "similar texts group together");
    assert!(
        !inbox.to_string().contains("hello"),
        "understood messages stay out"
    );

    let ids: Vec<Value> = groups[0]["turns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].clone())
        .collect();
    let unknown = admin
        .post(
            "/admin/api/inbox/label",
            &json!({ "turn_ids": ids, "intent": "teleport" }),
        )
        .await;
    assert_eq!(unknown.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let response = admin
        .post(
            "/admin/api/inbox/label",
            &json!({ "turn_ids": ids, "intent": "ask_bulk_edit" }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let labelled: Value = response.json().await.unwrap();
    assert_eq!(labelled["labelled"], 2);
    assert_eq!(labelled["examples"], 2);

    // No restart: the next parse uses the retrained classifier.
    assert_eq!(parse(&app, ODD).await["intent"]["name"], "ask_bulk_edit");
    let file = std::fs::read_to_string(labels.path().join("nlu-overrides.yml")).unwrap();
    assert!(file.contains("- intent: ask_bulk_edit"), "{file}");
    assert!(file.contains(&format!("    - {ODD}")), "{file}");
    assert!(file.contains("version: \"3.1\""));

    // Labelled messages leave the inbox; "out of scope" is nlu_fallback.
    let inbox = admin.get_json("/admin/api/inbox").await;
    let groups = inbox["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1);
    let dark = groups[0]["turns"][0]["id"].clone();
    let response = admin
        .post(
            "/admin/api/inbox/label",
            &json!({ "turn_ids": [dark], "intent": "out_of_scope" }),
        )
        .await;
    let labelled: Value = response.json().await.unwrap();
    assert_eq!(labelled["intent"], "nlu_fallback");
    assert_eq!(
        admin.get_json("/admin/api/inbox").await["groups"],
        json!([])
    );
    let file = std::fs::read_to_string(labels.path().join("nlu-overrides.yml")).unwrap();
    assert!(file.contains("- intent: nlu_fallback\n  examples: |\n    - is there a dark mode"));

    // The labels are read again at start: a new server knows them.
    drop(app);
    let again = spawn_app_with(|s| configure(s, labels.path())).await;
    assert_eq!(parse(&again, ODD).await["intent"]["name"], "ask_bulk_edit");
}

#[tokio::test]
async fn numbers_count_messages_fallbacks_offers_and_thumbs() {
    let labels = tempfile::tempdir().unwrap();
    let app = spawn_app_with(|s| configure(s, labels.path())).await;
    // A proactive offer, taken up through its button.
    // Two products: the socket names its product.
    let mut socket = SocketClient::connect(
        &app.address,
        Some(json!({ "userId": "lou", "productId": PRODUCT })),
    )
    .await
    .unwrap();
    socket.start_session(Some("chat-lou")).await;
    crate::proactive::edit_three_projects(&app, "lou", "num").await;
    let offer = socket.next("bot_uttered").await;
    assert!(
        offer["text"]
            .as_str()
            .unwrap()
            .starts_with(crate::proactive::OFFER)
    );

    // Our widget asks for turn ids, and rates an answer.
    let custom = json!({ "userId": "lou", "productId": PRODUCT, "feedback": true });
    socket
        .say_with("chat-lou", custom.clone(), "/ask_bulk_edit")
        .await;
    let answer = socket.next("bot_uttered").await;
    let turn_id = answer["metadata"]["turn_id"].as_str().unwrap().to_owned();
    socket
        .emit("feedback", json!({ "turn_id": turn_id, "value": "down" }))
        .await;
    socket.say_with("chat-lou", custom, "qwxz plmok vrrt").await;
    let fallback = socket.next("bot_uttered").await;
    let other_id = fallback["metadata"]["turn_id"].as_str().unwrap().to_owned();
    socket
        .emit("feedback", json!({ "turn_id": other_id, "value": "up" }))
        .await;
    // Without `feedback` in customData, Rasa's payload is untouched.
    socket
        .say_with(
            "chat-lou",
            json!({ "userId": "lou", "productId": PRODUCT }),
            "hello",
        )
        .await;
    let plain = socket.next("bot_uttered").await;
    assert!(
        plain
            .get("metadata")
            .is_none_or(|m| m.get("turn_id").is_none()),
        "{plain}"
    );

    // Another socket cannot rate lou's answers.
    let mut stranger = SocketClient::connect(
        &app.address,
        Some(json!({ "userId": "mo", "productId": PRODUCT })),
    )
    .await
    .unwrap();
    stranger.start_session(Some("chat-mo")).await;
    stranger
        .emit("feedback", json!({ "turn_id": turn_id, "value": "up" }))
        .await;

    let admin = admin(&app).await;
    let stats = eventually(Duration::from_secs(5), || async {
        let stats = admin.get_json("/admin/api/stats?days=7").await;
        let totals = &stats["totals"];
        (totals["thumbs_up"] == 1 && totals["thumbs_down"] == 1 && totals["messages"] == 3)
            .then_some(stats)
    })
    .await
    .expect("thumbs and messages counted");
    let totals = &stats["totals"];
    assert_eq!(stats["days"].as_array().unwrap().len(), 7);
    assert_eq!(
        stats["days"][6]["date"],
        chrono::Utc::now().date_naive().to_string()
    );
    assert_eq!(totals["conversations"], 1);
    assert_eq!(totals["fallbacks"], 1);
    assert_eq!(totals["offers_shown"], 1);
    assert_eq!(totals["offers_accepted"], 1);
    assert_eq!(totals["offers_declined"], 0);
    assert_eq!(totals["llm"], 0);
    assert!((totals["fallback_rate"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-9);
    assert_eq!(stats["resolved_after_minutes"], 10);

    // The transcript shows the offer and the rating.
    let turns = admin.turns("user=lou", 3).await;
    let rated = turns.iter().find(|t| t["id"] == turn_id.as_str()).unwrap();
    assert_eq!(rated["feedback"], "down");
    let id = rated["conversation_id"].as_str().unwrap();
    let transcript = admin
        .get_json(&format!("/admin/api/conversations/{id}"))
        .await;
    assert_eq!(transcript["offers"][0]["response"], "utter_offer_bulk_edit");
    assert_eq!(transcript["turns"][0]["responder"], "rule");
}

/// On Postgres, shared by two instances: a login made on A works on B, B's
/// console shows the turns A recorded (search, transcript, numbers), and a
/// label retrains the instance it was given to.
#[tokio::test]
async fn the_console_works_across_instances_on_postgres() {
    let Some(pg) = crate::services::Postgres::start("console_on_postgres") else {
        return;
    };
    let labels = tempfile::tempdir().unwrap();
    let url = pg.url();
    let on_pg = |s: &mut copilot_server::config::Settings| {
        configure(s, labels.path());
        s.database.url = url.clone();
    };
    let a = spawn_app_with(on_pg).await;
    let b = spawn_app_with(on_pg).await;
    reply_as(&a, API_KEY, "nell", "hello").await;
    reply_as(&a, API_KEY, "nell", "100% odd_question about zorblax").await;

    let on_a = admin(&a).await;
    // The same cookie, on the other instance.
    let on_b = Console {
        app: &b,
        cookie: on_a.cookie.clone(),
        csrf: on_a.csrf.clone(),
        session: on_a.session.clone(),
    };
    let turns = on_b.turns("user=nell", 2).await;
    assert_eq!(turns.len(), 2);
    // LIKE wildcards in the search are literal on Postgres too.
    assert_eq!(on_b.turns("q=100%25%20odd_q", 1).await.len(), 1);
    assert_eq!(
        on_b.get_json("/admin/api/conversations?q=1000%25").await["turns"],
        json!([])
    );
    let id = turns[0]["conversation_id"].as_str().unwrap();
    let transcript = on_b
        .get_json(&format!("/admin/api/conversations/{id}"))
        .await;
    assert_eq!(transcript["turns"].as_array().unwrap().len(), 2);
    let stats = on_b.get_json("/admin/api/stats").await;
    assert_eq!(stats["totals"]["messages"], 2);
    assert_eq!(stats["totals"]["fallbacks"], 1);

    let inbox = on_b.get_json("/admin/api/inbox").await;
    let id = inbox["groups"][0]["turns"][0]["id"].clone();
    let response = on_b
        .post(
            "/admin/api/inbox/label",
            &json!({ "turn_ids": [id], "intent": "greet" }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(on_b.get_json("/admin/api/inbox").await["groups"], json!([]));

    // Logged out on B: gone on A too.
    let out = on_b.post("/admin/api/logout", &json!({})).await;
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        on_a.get("/admin/api/session").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn with_recording_off_no_turn_is_kept() {
    let labels = tempfile::tempdir().unwrap();
    let app = spawn_app_with(|s| {
        configure(s, labels.path());
        s.console.record = false;
    })
    .await;
    reply_as(&app, API_KEY, "otto", "hello").await;
    reply_as(&app, API_KEY, "otto", "zorblax frobnication").await;
    let admin = admin(&app).await;
    // Give the writer the time it takes when recording is on.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let turns = admin.get_json("/admin/api/conversations").await;
    assert_eq!(turns["turns"], json!([]));
    let stats = admin.get_json("/admin/api/stats").await;
    assert_eq!(stats["totals"]["messages"], 0);
}

#[tokio::test]
async fn erasing_a_user_deletes_their_recorded_turns() {
    let labels = tempfile::tempdir().unwrap();
    let app = spawn_app_with(|s| configure(s, labels.path())).await;
    reply_as(&app, API_KEY, "pat", "hello").await;
    reply_as(&app, API_KEY, "pat", "what did I just do?").await;
    reply_as(&app, API_KEY, "quinn", "hello").await;
    let admin = admin(&app).await;
    admin.turns("", 3).await;
    let erased: Value = app
        .send(reqwest::Method::DELETE, "/users/pat", Some(API_KEY))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(erased["erased"]["console_turns"], 2, "{erased}");
    let left = admin.get_json("/admin/api/conversations").await;
    let users: Vec<&str> = left["turns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["user"].as_str().unwrap())
        .collect();
    assert_eq!(users, ["quinn"]);
}

/// Two instances sharing the intents folder: a label given on A reaches B's
/// classifier without a restart (B notices the labels file changed).
#[tokio::test]
async fn a_label_given_on_one_instance_retrains_another_sharing_the_folder() {
    let labels = tempfile::tempdir().unwrap();
    let fast = |s: &mut copilot_server::config::Settings| {
        configure(s, labels.path());
        s.nlu.labels_reload_seconds = Duration::from_millis(200);
    };
    let a = spawn_app_with(fast).await;
    let b = spawn_app_with(fast).await;
    const ODD: &str = "glorp the widget matrix";
    assert_eq!(parse(&b, ODD).await["intent"]["name"], "nlu_fallback");
    reply_as(&a, API_KEY, "rae", ODD).await;
    let admin = admin(&a).await;
    let turn = admin.turns("user=rae", 1).await[0]["id"].clone();
    let response = admin
        .post(
            "/admin/api/inbox/label",
            &json!({ "turn_ids": [turn], "intent": "ask_bulk_edit" }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let learnt = eventually(Duration::from_secs(10), || async {
        (parse(&b, ODD).await["intent"]["name"] == "ask_bulk_edit").then_some(())
    })
    .await;
    assert!(learnt.is_some(), "B retrained from the shared labels file");
}

#[tokio::test]
async fn guessing_a_login_is_slowed_to_ten_tries_a_minute_per_target() {
    let labels = tempfile::tempdir().unwrap();
    let app = spawn_app_with(|s| configure(s, labels.path())).await;
    for _ in 0..10 {
        let response =
            login_response(&app, json!({ "product": OTHER, "api_key": "cpk_guess" })).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    // The right key too: the target is what is limited, not the key.
    let response = login_response(&app, json!({ "product": OTHER, "api_key": OTHER_KEY })).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    // Other targets are not.
    assert_eq!(admin(&app).await.session["role"], "admin");
    let demo = login(&app, json!({ "product": PRODUCT, "api_key": API_KEY })).await;
    assert_eq!(demo.session["product"], PRODUCT);
}

/// Browsers abandon requests when a view changes; the database a later
/// request reads must still be there (an in-memory SQLite lives in one
/// connection: closing it would lose every recorded turn).
#[tokio::test]
async fn abandoned_requests_leave_the_console_answering() {
    let app = spawn_app_with(|s| s.admin.token = ADMIN.to_owned().into()).await;
    let console = admin(&app).await;
    reply_as(&app, API_KEY, "ann", "hello").await;
    console.turns("user=ann", 1).await;
    for round in 0..200u64 {
        let abandoned = app
            .client
            .get(app.url("/admin/api/conversations?limit=100"))
            .header("cookie", &console.cookie)
            .timeout(Duration::from_micros(200 + (round % 20) * 100))
            .send()
            .await;
        drop(abandoned);
    }
    let turns = console.get_json("/admin/api/conversations?user=ann").await;
    assert_eq!(turns["turns"].as_array().map(Vec::len), Some(1), "{turns}");
}
