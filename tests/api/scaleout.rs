//! `[store] backend = "redis"`: two instances sharing a real `redis-server`
//! that the test starts (Debian's package, a free port, a temp dir). Each
//! test uses a key prefix of its own.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::durable::{event, kill_9_during_load};
use crate::helpers::{API_KEY, TestApp, eventually, spawn_app_with};
use crate::limits::{SLOW_DOWN, rest_text};
use crate::proactive::{OFFER, connect, edit_three_projects};
use crate::services::Redis;
use copilot_server::config::{Settings, StoreBackend};

const WAIT: Duration = Duration::from_secs(10);

fn on_redis(redis: &Redis, prefix: &str) -> impl FnOnce(&mut Settings) + use<> {
    let (url, prefix) = (redis.url(), prefix.to_owned());
    move |s| {
        s.store.backend = StoreBackend::Redis;
        s.store.redis_url = url.into();
        s.store.key_prefix = prefix;
        s.store.owner_timeout_ms = Duration::from_millis(600);
    }
}

async fn instance(redis: &Redis, prefix: &str) -> TestApp {
    spawn_app_with(on_redis(redis, prefix)).await
}

async fn context_has(app: &TestApp, user: &str, text: &str) -> bool {
    eventually(WAIT, || async {
        let context = app.context(user).await;
        context["context"]
            .as_str()
            .is_some_and(|c| c.contains(text))
            .then_some(())
    })
    .await
    .is_some()
}

fn offers(messages: &[Value]) -> usize {
    messages
        .iter()
        .filter(|m| m["text"].as_str().is_some_and(|t| t.starts_with(OFFER)))
        .count()
}

/// Events ingested on A ground B's answers (and the other way round), the
/// same event sent to both is stored once, and an instance started later
/// finds everything in Redis.
#[tokio::test]
async fn two_instances_share_the_context_and_store_a_retry_once() {
    let Some(redis) = Redis::start("two_instances_share_the_context") else {
        return;
    };
    let a = instance(&redis, "share").await;
    let b = instance(&redis, "share").await;

    let first = a.deliver_json(&event(1)).await;
    assert_eq!(first["accepted"], 1, "{first}");
    let again = b.deliver_json(&event(1)).await;
    assert_eq!(
        (again["accepted"].as_u64(), again["duplicates"].as_u64()),
        (Some(0), Some(1)),
        "the retry to the other instance is a duplicate: {again}"
    );
    assert!(context_has(&b, "load-user-1", "Button 1").await);
    let reply = b.reply_json("load-user-1", "what just happened?").await;
    assert!(
        reply.to_string().contains("Button 1"),
        "/reply on B is grounded in what A ingested: {reply}"
    );

    b.deliver_json(&event(2)).await;
    assert!(context_has(&a, "load-user-2", "Button 2").await);

    let c = instance(&redis, "share").await;
    assert!(context_has(&c, "load-user-1", "Button 1").await);
    let context = c.context("load-user-1").await;
    assert_eq!(
        context["context"]
            .as_str()
            .unwrap()
            .matches("Button 1")
            .count(),
        1,
        "stored once: {context}"
    );
    let retry = c.deliver_json(&event(2)).await;
    assert_eq!(retry["duplicates"], 1, "{retry}");

    // Another deployment on the same Redis (another prefix) sees none of it.
    let other = instance(&redis, "elsewhere").await;
    let context = other.context("load-user-1").await;
    assert!(
        !context.to_string().contains("Button 1"),
        "prefixes keep deployments apart: {context}"
    );
}

/// The socket is on A, the webhook goes to B: B owns the session, makes the
/// offer once, and the Redis adapter carries it to A's socket.
#[tokio::test]
async fn an_offer_made_on_b_reaches_the_socket_held_by_a_once() {
    let Some(redis) = Redis::start("offer_across_instances") else {
        return;
    };
    let a = instance(&redis, "offer").await;
    let b = instance(&redis, "offer").await;
    let mut socket = connect(&a, "casey").await;
    edit_three_projects(&b, "casey", "x").await;
    let offer = socket.next("bot_uttered").await;
    assert!(
        offer["text"].as_str().unwrap().starts_with(OFFER),
        "{offer}"
    );
    // More edits, now sent to A: the session stays with B, no second offer.
    edit_three_projects(&a, "casey", "y").await;
    socket.say("chat-casey", "casey", "/greet").await;
    let mut seen = Vec::new();
    while let Some(m) = socket.try_next("bot_uttered", Duration::from_secs(2)).await {
        seen.push(m);
    }
    assert_eq!(offers(&seen), 0, "{seen:?}");
    let fired = |text: String| {
        crate::helpers::metric(&text, "copilot_proactive_offers_total{outcome=\"fired\"} ")
    };
    assert_eq!(
        fired(a.metrics().await) + fired(b.metrics().await),
        1.0,
        "one offer between the two instances"
    );
}

/// A stops (deploy, crash): the client reconnects to B with its session,
/// and B goes on with the conversation: "yes" still accepts A's offer.
#[tokio::test]
async fn after_a_stops_the_client_goes_on_with_its_conversation_on_b() {
    let Some(redis) = Redis::start("conversation_moves_to_b") else {
        return;
    };
    let a = instance(&redis, "move").await;
    let b = instance(&redis, "move").await;
    let mut socket = connect(&a, "yuki").await;
    edit_three_projects(&a, "yuki", "x").await;
    let offer = socket.next("bot_uttered").await;
    assert!(offer["text"].as_str().unwrap().starts_with(OFFER));
    drop(a);
    socket.disconnect().await;

    let mut socket = connect(&b, "yuki").await;
    socket.say("chat-yuki", "yuki", "yes").await;
    let answer = socket.next("bot_uttered").await;
    assert!(
        answer["text"]
            .as_str()
            .unwrap()
            .contains("Apply to selected"),
        "B knows the bot's last action was A's offer: {answer}"
    );
}

/// One allowance per user, whichever instance the messages reach.
#[tokio::test]
async fn a_user_is_rate_limited_across_instances() {
    let Some(redis) = Redis::start("rate_limit_across_instances") else {
        return;
    };
    let configure = |redis: &Redis| {
        let on = on_redis(redis, "limits");
        move |s: &mut Settings| {
            on(s);
            s.chat.max_messages_per_minute = 2;
        }
    };
    let a = spawn_app_with(configure(&redis)).await;
    let b = spawn_app_with(configure(&redis)).await;
    assert!(!rest_text(&a, "conv-a", "u1").await.contains(SLOW_DOWN));
    assert!(!rest_text(&b, "conv-b", "u1").await.contains(SLOW_DOWN));
    assert!(
        rest_text(&a, "conv-c", "u1").await.contains(SLOW_DOWN),
        "the third message in the minute, on either instance"
    );
    assert!(!rest_text(&b, "conv-d", "u2").await.contains(SLOW_DOWN));
}

/// Erasing a user on A erases them on B, and in Redis: an instance started
/// afterwards does not bring them back.
#[tokio::test]
async fn an_erasure_on_a_reaches_b_and_redis() {
    let Some(redis) = Redis::start("erasure_across_instances") else {
        return;
    };
    let a = instance(&redis, "erase").await;
    let b = instance(&redis, "erase").await;
    a.deliver_json(&event(3)).await;
    a.deliver_json(&event(4)).await;
    assert!(context_has(&b, "load-user-3", "Button 3").await);
    let erased = a
        .send(reqwest::Method::DELETE, "/users/load-user-3", Some(API_KEY))
        .await;
    assert_eq!(erased.status(), StatusCode::OK);
    let gone = eventually(WAIT, || async {
        (!b.context("load-user-3")
            .await
            .to_string()
            .contains("Button 3"))
        .then_some(())
    })
    .await;
    assert!(gone.is_some(), "B forgot the user");
    let c = instance(&redis, "erase").await;
    assert!(context_has(&c, "load-user-4", "Button 4").await);
    assert!(
        !c.context("load-user-3")
            .await
            .to_string()
            .contains("Button 3"),
        "the erased user's entries are gone from Redis"
    );
}

/// Redis down: ingest answers 503 with Retry-After, chat still answers;
/// Redis back: ingest, the shared context and offers across instances work
/// again without a restart of ours.
#[tokio::test]
async fn redis_down_gets_503_and_both_instances_recover_when_it_returns() {
    let Some(mut redis) = Redis::start_persistent("redis_down") else {
        return;
    };
    let a = instance(&redis, "faults").await;
    let b = instance(&redis, "faults").await;
    a.deliver_json(&event(5)).await;
    redis.stop();

    let refused = a
        .post_webhook(
            crate::helpers::PRODUCT,
            Some(crate::helpers::SECRET),
            event(6).to_string(),
        )
        .await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(refused.headers().contains_key("retry-after"));
    let body: Value = refused.json().await.unwrap();
    assert!(body["error"].is_string(), "{body}");
    let reply = a.reply("load-user-5", "what just happened?").await;
    assert_eq!(reply.status(), StatusCode::OK, "chat still answers");

    redis.resume();
    let accepted = eventually(WAIT, || async {
        let r = a
            .post_webhook(
                crate::helpers::PRODUCT,
                Some(crate::helpers::SECRET),
                event(6).to_string(),
            )
            .await;
        (r.status() == StatusCode::OK).then_some(())
    })
    .await;
    assert!(accepted.is_some(), "A takes events again");
    assert!(context_has(&b, "load-user-6", "Button 6").await);

    // The adapter's connection notices the restart at its next ping (every
    // half second) and subscribes again; until then an offer finds no socket.
    let mut delivered = false;
    for attempt in 0..10 {
        let user = format!("robin{attempt}");
        let mut socket = connect(&a, &user).await;
        edit_three_projects(&b, &user, "x").await;
        if let Some(offer) = socket.try_next("bot_uttered", Duration::from_secs(1)).await {
            assert!(
                offer["text"].as_str().unwrap().starts_with(OFFER),
                "{offer}"
            );
            delivered = true;
            break;
        }
    }
    assert!(
        delivered,
        "offers cross instances again after the Redis restart"
    );
}

/// The binary on Redis, killed with SIGKILL under load and started again:
/// every event that was answered 200 is back (from Redis), the summary too,
/// and retries are still duplicates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_answered_200_survives_kill_9_on_redis() {
    let Some(redis) = Redis::start("kill_9_on_redis") else {
        return;
    };
    let url = redis.url();
    kill_9_during_load(
        "sqlite::memory:",
        &[
            ("COPILOT__STORE__BACKEND", "redis"),
            ("COPILOT__STORE__REDIS_URL", &url),
            ("COPILOT__STORE__KEY_PREFIX", "kill9"),
        ],
    )
    .await;
}
