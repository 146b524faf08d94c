//! How-to questions answered from the product's help pages (`[knowledge]`):
//! the demo's shipped pages offline, the prompt the LLM sees, citations, and
//! a folder that changes while the server runs.

use std::time::Duration;

use crate::fake_llm::{Behaviour, FakeLlm, user_text};
use crate::helpers::{click_event, eventually, spawn_app, spawn_app_with, spawn_app_with_llm};

const ARCHIVE_URL: &str = "https://acme.example.com/help/archive-project";

#[tokio::test]
async fn offline_a_how_to_question_is_answered_from_the_demo_docs_and_cites_them() {
    let app = spawn_app().await;
    let reply = app
        .reply_json("kb-user", "how do I archive a project?")
        .await;
    let text = reply["reply"].as_str().unwrap();
    assert!(text.contains("From the help pages, **Archive"), "{text}");
    assert!(text.contains("'Archive"), "the steps are there: {text}");
    assert!(
        text.contains(&format!("]({ARCHIVE_URL}#")),
        "cites the section: {text}"
    );
}

#[tokio::test]
async fn offline_the_answer_picks_up_after_the_users_last_action() {
    let app = spawn_app().await;
    app.deliver_json(&click_event(
        "kb-edit-1",
        "kb-editor",
        "kb-session",
        "Edit",
        "https://app.example.com/projects",
    ))
    .await;
    let reply = app
        .reply_json("kb-editor", "how do I change a project's priority?")
        .await;
    let text = reply["reply"].as_str().unwrap();
    assert!(
        text.contains("Change the priority of one project"),
        "{text}"
    );
    assert!(
        text.contains("You've already clicked 'Edit', so from here:"),
        "{text}"
    );
    assert!(text.contains("'Save changes'"), "{text}");
    assert!(
        !text.contains("1. Click 'Projects' in the top bar"),
        "the steps already done are left out: {text}"
    );
}

#[tokio::test]
async fn offline_a_question_the_docs_do_not_cover_is_said_so_plainly() {
    let app = spawn_app().await;
    app.deliver_json(&click_event(
        "kb-dark-1",
        "kb-dark",
        "kb-dark-session",
        "Save changes",
        "https://app.example.com/projects/7",
    ))
    .await;
    let reply = app.reply_json("kb-dark", "is there a dark mode?").await;
    let text = reply["reply"].as_str().unwrap();
    assert!(
        text.contains("couldn't find anything about that in the help pages"),
        "{text}"
    );
    assert!(!text.contains("You just"), "no recital of clicks: {text}");
}

#[tokio::test]
async fn the_llm_sees_the_best_sections_under_the_sdks_heading_and_the_reply_cites_them() {
    let fake = FakeLlm::start(Behaviour::Answer("Open it and click Archive.".into())).await;
    let app = spawn_app_with_llm(&fake, |_| {}).await;
    app.deliver_json(&click_event(
        "kb-llm-1",
        "kb-llm",
        "kb-llm-session",
        "Edit",
        "https://app.example.com/projects",
    ))
    .await;
    let reply = app
        .reply_json("kb-llm", "how do I archive a project?")
        .await;
    let text = reply["reply"].as_str().unwrap();
    assert!(text.starts_with("Open it and click Archive."), "{text}");
    assert!(text.contains(&format!("]({ARCHIVE_URL}#")), "cited: {text}");

    let requests = fake.chat_requests();
    let prompt = user_text(requests.last().expect("the LLM was asked"));
    let activity = prompt
        .find("[RECENT PRODUCT ACTIVITY]")
        .expect("activity as before");
    let excerpts = prompt
        .find("Knowledge base excerpts:\n--- Archive")
        .expect(&prompt);
    let message = prompt.find("[CURRENT USER MESSAGE]").unwrap();
    assert!(activity < excerpts && excerpts < message, "{prompt}");
    assert_eq!(
        prompt.matches("\n--- ").count(),
        3,
        "[knowledge] excerpts = 3 sections: {prompt}"
    );
}

#[tokio::test]
async fn pages_added_to_a_products_folder_are_found_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let pages = dir.path().join("demo");
    std::fs::create_dir_all(&pages).unwrap();
    std::fs::write(
        pages.join("export.md"),
        "<!-- url: https://docs.example.com/export -->\n# Export\n\nClick 'Export CSV'.\n",
    )
    .unwrap();
    let root = dir.path().to_path_buf();
    let app = spawn_app_with(move |s| {
        s.knowledge.dir = root;
        s.knowledge.reload_seconds = Duration::from_millis(200);
    })
    .await;
    let text = app.reply_json("kb-reload", "how do I export to csv").await["reply"].to_string();
    assert!(text.contains("Click 'Export CSV'"), "{text}");
    assert!(text.contains("(https://docs.example.com/export)"), "{text}");
    let text = app
        .reply_json("kb-reload", "how do I invite a teammate")
        .await["reply"]
        .to_string();
    assert!(text.contains("couldn't find anything"), "not yet: {text}");

    std::fs::write(
        pages.join("invite.html"),
        "<h1>Invite a teammate</h1><p>Click 'Invite teammate', enter an email.</p>",
    )
    .unwrap();
    let found = eventually(Duration::from_secs(10), || async {
        let reply = app
            .reply_json("kb-reload", "how do I invite a teammate")
            .await;
        let text = reply["reply"].as_str().unwrap_or_default().to_owned();
        text.contains("Click 'Invite teammate'").then_some(text)
    })
    .await;
    assert!(
        found.is_some(),
        "the new page is indexed within a few reloads"
    );
    // A removed page is forgotten the same way.
    std::fs::remove_file(pages.join("export.md")).unwrap();
    let gone = eventually(Duration::from_secs(10), || async {
        let reply = app.reply_json("kb-reload", "how do I export to csv").await;
        let text = reply["reply"].as_str().unwrap_or_default().to_owned();
        text.contains("couldn't find anything").then_some(())
    })
    .await;
    assert!(gone.is_some(), "the removed page is no longer an answer");
}

const ACME_KEY: &str = "acme-api-key-for-knowledge-tests";

fn with_acme(s: &mut copilot_server::config::Settings) {
    let mut acme = crate::helpers::product("acme", "acme-webhook-secret-for-tests");
    acme.api_key = Some(ACME_KEY.to_owned().into());
    s.products.push(acme);
}

fn page(body: &str) -> serde_json::Value {
    serde_json::json!({
        "title": "Webhooks",
        "url": "https://docs.example.com/webhooks",
        "body": body,
    })
}

#[tokio::test]
async fn pages_are_upserted_and_deleted_through_the_api_with_the_products_key_only() {
    use reqwest::{Method, StatusCode};
    let app = spawn_app_with(with_acme).await;
    let path = "/knowledge/demo/webhooks";
    let body = page("## Rotate the webhook secret\n\nOpen 'Developers', click 'Rotate secret'.");

    let no_key = app.send_json(Method::PUT, path, None, &body).await;
    assert_eq!(no_key.status(), StatusCode::UNAUTHORIZED);
    let other = app
        .send_json(Method::PUT, path, Some(ACME_KEY), &body)
        .await;
    assert_eq!(
        other.status(),
        StatusCode::NOT_FOUND,
        "acme's key cannot write demo's pages"
    );
    let both = serde_json::json!({"title": "x", "body": "a", "html": "<p>b</p>"});
    let bad = app
        .send_json(Method::PUT, path, Some(crate::helpers::API_KEY), &both)
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let bad_id = app
        .send_json(
            Method::PUT,
            "/knowledge/demo/a%20b",
            Some(crate::helpers::API_KEY),
            &body,
        )
        .await;
    assert_eq!(bad_id.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let put = app
        .send_json(Method::PUT, path, Some(crate::helpers::API_KEY), &body)
        .await;
    assert_eq!(put.status(), StatusCode::OK);
    let answer: serde_json::Value = put.json().await.unwrap();
    assert_eq!(answer["sections"], 1, "{answer}");
    let text = app
        .reply_json("kb-api", "how do I rotate the webhook secret")
        .await["reply"]
        .to_string();
    assert!(text.contains("click 'Rotate secret'"), "{text}");
    assert!(
        text.contains("(https://docs.example.com/webhooks#rotate-the-webhook-secret)"),
        "{text}"
    );

    // The same id again replaces the page.
    let body = page("## Rotate the webhook secret\n\nAsk an admin to click 'New secret'.");
    let put = app
        .send_json(Method::PUT, path, Some(crate::helpers::API_KEY), &body)
        .await;
    assert_eq!(put.status(), StatusCode::OK);
    let text = app
        .reply_json("kb-api", "how do I rotate the webhook secret")
        .await["reply"]
        .to_string();
    assert!(
        text.contains("'New secret'") && !text.contains("'Rotate secret'"),
        "{text}"
    );

    let other = app.send(Method::DELETE, path, Some(ACME_KEY)).await;
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
    let deleted = app
        .send(Method::DELETE, path, Some(crate::helpers::API_KEY))
        .await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let text = app
        .reply_json("kb-api", "how do I rotate the webhook secret")
        .await["reply"]
        .to_string();
    assert!(text.contains("couldn't find anything"), "{text}");
    let again = app
        .send(Method::DELETE, path, Some(crate::helpers::API_KEY))
        .await;
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn api_pages_survive_a_restart_and_reach_other_instances_on_the_same_database() {
    use reqwest::{Method, StatusCode};
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("copilot.db").display());
    let configure = |url: String| {
        move |s: &mut copilot_server::config::Settings| {
            s.database.url = url;
            s.knowledge.reload_seconds = Duration::from_millis(200);
        }
    };
    let a = spawn_app_with(configure(url.clone())).await;
    let b = spawn_app_with(configure(url.clone())).await;
    let body = serde_json::json!({
        "title": "Billing",
        "url": "https://docs.example.com/billing",
        "html": "<h2>Download an invoice</h2><p>Open 'Billing', click 'Download invoice'.</p>",
    });
    let put = a
        .send_json(
            Method::PUT,
            "/knowledge/demo/billing",
            Some(crate::helpers::API_KEY),
            &body,
        )
        .await;
    assert_eq!(put.status(), StatusCode::OK);
    let question = "how do I download an invoice";
    let on_b = eventually(Duration::from_secs(10), || async {
        let text = b.reply_json("kb-b", question).await["reply"].to_string();
        text.contains("'Download invoice'").then_some(())
    })
    .await;
    assert!(
        on_b.is_some(),
        "instance B indexes A's page from the shared database"
    );
    drop(a);
    drop(b);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let c = spawn_app_with(configure(url)).await;
    let text = c.reply_json("kb-c", question).await["reply"].to_string();
    assert!(
        text.contains("'Download invoice'"),
        "after a restart: {text}"
    );
}
