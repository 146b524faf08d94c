use serde_json::{Value, json};

use crate::helpers::{TestApp, click_event, metric, spawn_app, spawn_app_with};
use crate::socket_client::SocketClient;

pub const OFFER: &str = "Editing projects one by one?";

/// Three "Edit" clicks on the projects page, as three webhook deliveries.
pub async fn edit_three_projects(app: &TestApp, user: &str, tag: &str) {
    for row in 0..3 {
        app.deliver_json(&click_event(
            &format!("{tag}-{user}-{row}"),
            user,
            &format!("{user}-session"),
            "Edit",
            "https://app.example.com/projects",
        ))
        .await;
    }
}

pub async fn connect(app: &TestApp, user: &str) -> SocketClient {
    let mut socket = SocketClient::connect(&app.address, Some(json!({ "userId": user })))
        .await
        .unwrap();
    socket.start_session(Some(&format!("chat-{user}"))).await;
    socket
}

/// Every `bot_uttered` up to and including the reply to a `/greet` marker:
/// socket messages arrive in order, so an offer sent earlier is in this list.
async fn until_marker(socket: &mut SocketClient, user: &str) -> Vec<Value> {
    socket.say(&format!("chat-{user}"), user, "/greet").await;
    let mut seen = Vec::new();
    loop {
        let message = socket.next("bot_uttered").await;
        let is_greeting = message["quick_replies"]
            .as_array()
            .is_some_and(|q| q.iter().any(|r| r["payload"] == "/ask_what_just_happened"));
        seen.push(message);
        if is_greeting {
            return seen;
        }
    }
}

fn offers(messages: &[Value]) -> usize {
    messages
        .iter()
        .filter(|m| m["text"].as_str().is_some_and(|t| t.starts_with(OFFER)))
        .count()
}

async fn proactive_count(app: &TestApp, outcome: &str) -> u64 {
    let text = app.metrics().await;
    let prefix = format!("copilot_proactive_offers_total{{outcome=\"{outcome}\"}} ");
    metric(&text, &prefix) as u64
}

#[tokio::test]
async fn repeated_edits_fire_one_offer_with_quick_replies_that_run_the_right_rule() {
    let app = spawn_app().await;
    let mut socket = connect(&app, "casey").await;
    edit_three_projects(&app, "casey", "a").await;

    let offer = socket.next("bot_uttered").await;
    assert!(
        offer["text"].as_str().unwrap().starts_with(OFFER),
        "{offer}"
    );
    assert_eq!(
        offer["metadata"],
        json!({"forceOpen": true}),
        "opens the widget"
    );
    let replies: Vec<&str> = offer["quick_replies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["payload"].as_str().unwrap())
        .collect();
    assert_eq!(replies, ["/ask_bulk_edit", "/deny"]);
    assert_eq!(proactive_count(&app, "fired").await, 1);

    // Clicking the quick reply sends its payload, which a rule answers.
    socket.say("chat-casey", "casey", "/ask_bulk_edit").await;
    let answer = socket.next("bot_uttered").await;
    assert!(
        answer["text"]
            .as_str()
            .unwrap()
            .contains("Apply to selected"),
        "{answer}"
    );

    // More edits while the offer is still open: nothing new.
    edit_three_projects(&app, "casey", "b").await;
    assert_eq!(offers(&until_marker(&mut socket, "casey").await), 0);
    assert_eq!(proactive_count(&app, "fired").await, 1);
    assert!(proactive_count(&app, "state").await >= 1);
}

#[tokio::test]
async fn no_second_offer_within_the_cooldown() {
    // The offer's interaction ends at once, so the next batch meets the cooldown.
    let app =
        spawn_app_with(|s| s.proactive.triggers[0].interaction_timeout_seconds = Some(0.0)).await;
    let mut socket = connect(&app, "casey").await;
    edit_three_projects(&app, "casey", "a").await;
    assert!(
        socket.next("bot_uttered").await["text"]
            .as_str()
            .unwrap()
            .starts_with(OFFER)
    );
    edit_three_projects(&app, "casey", "b").await;
    assert_eq!(offers(&until_marker(&mut socket, "casey").await), 0);
    assert_eq!(proactive_count(&app, "fired").await, 1);
    assert!(proactive_count(&app, "cooldown").await >= 1);
}

#[tokio::test]
async fn a_user_message_in_between_suppresses_the_offer() {
    let app = spawn_app().await;
    let mut socket = connect(&app, "casey").await;
    // The user's session exists before they type, so typing can mark it reactive.
    app.deliver_json(&click_event(
        "first",
        "casey",
        "casey-session",
        "Projects",
        "https://app.example.com/projects",
    ))
    .await;
    socket.say("chat-casey", "casey", "hi").await;
    socket.next("bot_uttered").await;
    edit_three_projects(&app, "casey", "a").await;
    assert_eq!(offers(&until_marker(&mut socket, "casey").await), 0);
    assert_eq!(proactive_count(&app, "fired").await, 0);
    assert!(proactive_count(&app, "state").await >= 1);
}

#[tokio::test]
async fn another_users_socket_receives_nothing() {
    let app = spawn_app().await;
    let mut alice = connect(&app, "alice").await;
    let mut bob = connect(&app, "bob").await;
    edit_three_projects(&app, "alice", "a").await;
    assert!(
        alice.next("bot_uttered").await["text"]
            .as_str()
            .unwrap()
            .starts_with(OFFER)
    );
    assert_eq!(offers(&until_marker(&mut bob, "bob").await), 0);
}

#[tokio::test]
async fn offers_for_users_without_a_socket_are_dropped_and_counted() {
    let app = spawn_app().await;
    edit_three_projects(&app, "nobody", "a").await;
    assert_eq!(proactive_count(&app, "no_socket").await, 1);
    assert_eq!(proactive_count(&app, "fired").await, 0);
    // Not queued: a socket that opens later gets nothing from back then.
    let mut socket = connect(&app, "nobody").await;
    assert_eq!(offers(&until_marker(&mut socket, "nobody").await), 0);
}

#[tokio::test]
async fn yes_right_after_the_offer_shows_bulk_edit_and_yes_out_of_the_blue_does_not() {
    let app = spawn_app().await;
    let mut socket = connect(&app, "yuki").await;
    edit_three_projects(&app, "yuki", "a").await;
    let offer = socket.next("bot_uttered").await;
    assert!(
        offer["text"].as_str().unwrap().starts_with(OFFER),
        "{offer}"
    );

    // The offer is the bot's last action in this conversation: "yes" accepts it.
    socket.say("chat-yuki", "yuki", "yes").await;
    let answer = socket.next("bot_uttered").await;
    assert!(
        answer["text"]
            .as_str()
            .unwrap()
            .contains("Apply to selected"),
        "{answer}"
    );

    // Another user who got no offer: "yes" is no bulk-edit request.
    let mut other = connect(&app, "zoe").await;
    other.say("chat-zoe", "zoe", "yes").await;
    let answer = other.next("bot_uttered").await;
    let text = answer["text"].as_str().unwrap();
    assert!(
        !text.contains("Bulk edit") && !text.contains("Apply to selected"),
        "{text}"
    );
    // And a second "yes" to the same user, long after the offer, neither.
    socket.say("chat-yuki", "yuki", "yes").await;
    let answer = socket.next("bot_uttered").await;
    assert!(
        !answer["text"]
            .as_str()
            .unwrap()
            .contains("Apply to selected"),
        "{answer}"
    );
}

/// The bot's answer when `user` replies `text` to the bulk-edit offer.
async fn answer_to_the_offer(app: &TestApp, user: &str, text: &str) -> String {
    let mut socket = connect(app, user).await;
    edit_three_projects(app, user, "a").await;
    let offer = socket.next("bot_uttered").await;
    assert!(
        offer["text"].as_str().unwrap().starts_with(OFFER),
        "{offer}"
    );
    socket.say(&format!("chat-{user}"), user, text).await;
    let answer = socket.next("bot_uttered").await;
    answer["text"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_thumbs_up_accepts_the_offer_and_a_thumbs_down_declines_it() {
    let app = spawn_app().await;
    // Chat widgets put emoji one tap away: a bare 👍 is a whole answer.
    let accepted = answer_to_the_offer(&app, "uma", "👍").await;
    assert!(accepted.contains("Apply to selected"), "{accepted}");

    let declined = answer_to_the_offer(&app, "vic", "👎🏽").await;
    assert!(!declined.contains("Apply to selected"), "{declined}");
    let parse: Value = app
        .send_json(
            reqwest::Method::POST,
            "/model/parse",
            None,
            &json!({"text": "👎🏽"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(parse["intent"]["name"], "deny", "{parse}");
}
