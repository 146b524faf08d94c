//! `DELETE /users/{user_id}`: a product's user's data is erased, and only theirs.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::{API_KEY, click_event, product, spawn_app_with};

#[tokio::test]
async fn deleting_a_user_erases_their_activity_and_conversation_and_nothing_else() {
    let app = spawn_app_with(|s| {
        let mut acme = product("acme", "acme-webhook-secret-123");
        acme.api_key = Some("acme-key".to_owned().into());
        s.products.push(acme);
    })
    .await;
    for (uuid, user, session, label) in [
        ("1", "u1", "s1", "Mine"),
        ("2", "u1", "s2", "Also mine"),
        ("3", "u2", "s3", "Theirs"),
    ] {
        app.deliver_json(&click_event(
            uuid,
            user,
            session,
            label,
            "https://demo.io/p",
        ))
        .await;
    }
    let acme = app
        .post_webhook(
            "acme",
            Some("acme-webhook-secret-123"),
            click_event("4", "u1", "s4", "Acme's u1", "https://a.io/").to_string(),
        )
        .await;
    assert_eq!(acme.status(), StatusCode::OK);
    app.reply_json("u1", "what did I just do?").await;

    let unauthorised = app.send(Method::DELETE, "/users/u1", None).await;
    assert_eq!(unauthorised.status(), StatusCode::UNAUTHORIZED);

    let response = app.send(Method::DELETE, "/users/u1", Some(API_KEY)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["product_id"], "demo");
    assert_eq!(body["user_id"], "u1");
    let erased = &body["erased"];
    assert_eq!(erased["user_index"], true);
    assert_eq!(erased["sessions"].as_array().unwrap().len(), 2, "{body}");
    assert_eq!(erased["actions"], 2);
    assert_eq!(
        erased["conversations"], 1,
        "the /reply conversation: {body}"
    );

    assert_eq!(app.context("u1").await["has_activity"], false);
    let reply: Value = app.reply_json("u1", "what did I just do?").await;
    assert_eq!(reply["name"], Value::Null, "the email is forgotten too");
    assert_eq!(
        app.context("u2").await["has_activity"],
        true,
        "another user is untouched"
    );
    assert_eq!(
        app.context_as("acme-key", "u1").await["has_activity"],
        true,
        "the same id in another product is another person"
    );
    let again: Value = app
        .send(Method::DELETE, "/users/u1", Some(API_KEY))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["erased"]["actions"], 0, "nothing is left: {again}");
}
