//! Rasa's `socketio` channel on socketioxide: `session_request` →
//! `session_confirm` (the id echoed as a bare string), `user_uttered` →
//! `bot_uttered` to the session's room, optional JWT check on connect.
//! Event names, metadata key and session persistence come from settings.
//!
//! Identity: a socket claims `userId`, `userHash` and `productId` in its
//! connect `auth`, in `session_request`'s `customData`, or in each message's
//! `customData` (rasa-webchat can only do the last). `identity::resolve`
//! judges the claim; an unverified user is an anonymous visitor. Rooms are
//! named after the verified visitor, so no socket can listen in on another
//! user's session or offers by naming them.

use std::sync::Arc;
use std::time::Duration;

use governor::DefaultDirectRateLimiter;
use serde_json::Value;
use socketioxide::extract::{State, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::layer::SocketIoLayer;
use socketioxide_redis::{RedisAdapterConfig, RedisAdapterCtr};

use super::{Presence, claim_in, payloads};
use crate::config::SocketIoSettings;
use crate::dialogue::conversation::ConversationKey;
use crate::dialogue::live::{self, LiveEvent};
use crate::dialogue::{BotMessage, Copilot, UserMessage, copilot::SLOW_DOWN};
use crate::domain::{ProductId, UserId, Visitor};
use crate::identity::{self, Claim, Resolved, Verdict};
use crate::limits::Limits;
use crate::metrics::{Channel, Limit, Metrics};
use crate::proactive::{Delivery, Notifier, Proactive};
use crate::products::Products;
use crate::redis::bus::{Adapter, Bus};

/// Every handler speaks through the Redis adapter; with one instance its bus
/// is local and nothing leaves the process.
type SocketRef = socketioxide::extract::SocketRef<Adapter>;
type SocketIo = socketioxide::SocketIo<Adapter>;

pub const SESSION_REQUEST: &str = "session_request";
pub const SESSION_CONFIRM: &str = "session_confirm";
/// A live answer's steps, for clients that asked for them (`customData.stream`).
pub const BOT_STREAM: &str = "bot_stream";
/// A thumbs up or down on a bot answer (`{turn_id, value}`), from clients
/// that asked for turn ids (`customData.feedback`).
pub const FEEDBACK: &str = "feedback";
/// Longest session id accepted from a client.
const MAX_SESSION_ID_LEN: usize = 256;

/// What socket handlers share.
#[derive(Clone)]
pub struct ChatState {
    copilot: Copilot,
    proactive: Proactive,
    products: Products,
    limits: Limits,
    metrics: Metrics,
    settings: Arc<SocketIoSettings>,
    /// Who is online (here, or on any instance with Redis).
    presence: Arc<dyn Presence>,
}

/// Everything a socket carries between events, in one extension (each
/// `extensions.get` clones under a lock, so one `Arc` beats four values).
#[derive(Clone)]
struct ConnExt(Arc<Conn>);

struct Conn {
    /// The socket's own message allowance.
    limiter: Arc<DefaultDirectRateLimiter>,
    /// Cancelled when the socket disconnects: its live answers stop.
    gone: tokio_util::sync::CancellationToken,
    state: parking_lot::Mutex<ConnState>,
}

struct ConnState {
    /// What the socket claimed at connect or session_request.
    claim: Claim,
    /// Who the socket speaks for, as judged.
    visitor: Visitor,
    /// The session it confirmed.
    session: Option<String>,
}

fn conn(socket: &SocketRef) -> Option<Arc<Conn>> {
    socket.extensions.get::<ConnExt>().map(|ConnExt(conn)| conn)
}

/// Room names. Ids cannot hold control characters, so the separator keeps
/// every part apart; sids stay bare rooms (python-socketio's, Rasa relies on it).
pub mod room {
    use crate::domain::{ProductId, UserId, Visitor};

    const SEP: char = '\u{1f}';

    /// Every socket of one verified user of one product.
    pub fn user(product: &ProductId, user: &UserId) -> String {
        format!("user{SEP}{product}{SEP}{user}")
    }

    /// The chat session a `session` room is for.
    pub fn session_of(room: &str) -> Option<&str> {
        let rest = room.strip_prefix("session")?.strip_prefix(SEP)?;
        rest.rsplit(SEP)
            .next()
            .filter(|_| rest.matches(SEP).count() == 2)
    }

    /// Every tab of one chat session of one visitor.
    pub fn session(visitor: &Visitor, session: &str) -> String {
        let product = visitor.product.as_ref().map_or("", ProductId::as_str);
        let user = visitor.user.as_ref().map_or("", UserId::as_str);
        format!("session{SEP}{product}{SEP}{user}{SEP}{session}")
    }
}

#[derive(Debug, thiserror::Error)]
enum AuthError {
    /// JWT auth is on and the connect packet carried no token.
    #[error("authentication token required")]
    Missing,
    /// The token did not verify.
    #[error("invalid authentication token")]
    Invalid,
    /// The page's origin is not one the product allows.
    #[error("origin '{origin}' is not allowed for product '{product}'")]
    Origin { origin: String, product: ProductId },
}

/// The Socket.IO layer and its handle, with the `/` namespace registered.
/// Proactive offers are delivered through it once the layer exists.
/// `bus` carries broadcasts to the other instances (`channel_prefix` keeps
/// deployments sharing a Redis apart).
#[allow(clippy::too_many_arguments)]
pub async fn layer(
    copilot: Copilot,
    proactive: Proactive,
    products: Products,
    limits: Limits,
    metrics: Metrics,
    settings: &SocketIoSettings,
    bus: Bus,
    channel_prefix: &str,
    presence: Arc<dyn Presence>,
) -> Result<(SocketIoLayer<Adapter>, SocketIo), String> {
    let adapter = RedisAdapterCtr::new_with_driver(
        bus,
        RedisAdapterConfig::new()
            .with_prefix(format!("{channel_prefix}-socket.io"))
            .with_request_timeout(Duration::from_secs(2)),
    );
    let (layer, io) = socketioxide::SocketIo::builder()
        .max_payload(settings.max_payload_bytes)
        .max_buffer_size(settings.max_buffer_packets)
        .with_state(ChatState {
            copilot: copilot.clone(),
            proactive: proactive.clone(),
            products,
            limits,
            metrics,
            settings: Arc::new(settings.clone()),
            presence: presence.clone(),
        })
        .with_adapter::<Adapter>(adapter)
        .build_layer();
    // Everything a socket needs is set up in `admit`, a middleware that
    // socketioxide awaits before it acks CONNECT. The connect handler itself
    // is spawned after the ack, and a client's first event (widgets send
    // `session_request` from their connect callback) could beat it.
    io.ns(
        "/",
        on_connect.with(admit).with(check_origin).with(authenticate),
    )
    .await
    .map_err(|e| e.to_string())?;
    proactive.set_notifier(Arc::new(SocketNotifier {
        io: io.clone(),
        presence,
        copilot,
        bot_message_evt: settings.bot_message_evt.clone(),
    }));
    Ok((layer, io))
}

/// Delivers proactive offers to every socket a verified user has open, with
/// `metadata.forceOpen` so widgets (ours and rasa-webchat) open themselves.
struct SocketNotifier {
    io: SocketIo,
    presence: Arc<dyn Presence>,
    copilot: Copilot,
    bot_message_evt: String,
}

#[async_trait::async_trait]
impl Notifier for SocketNotifier {
    async fn offer(
        &self,
        product: &ProductId,
        user: &UserId,
        response: Option<&str>,
        message: &BotMessage,
    ) -> Delivery {
        if !self.presence.online(product, user).await {
            return Delivery::NoSocket;
        }
        // Every instance's sockets: the user may be connected to another one.
        let sockets = match self.io.to(room::user(product, user)).fetch_sockets().await {
            Ok(sockets) => sockets,
            Err(error) => {
                tracing::warn!(%error, "could not look for the user's sockets");
                return Delivery::NoSocket;
            }
        };
        if sockets.is_empty() {
            return Delivery::NoSocket;
        }
        let mut messages = response
            .map(|r| self.copilot.response(r))
            .unwrap_or_default();
        if messages.is_empty() {
            messages = vec![message.clone()];
        }
        let mut payloads = payloads::socket_payloads(&messages);
        if let Some(last) = payloads.last_mut() {
            last["metadata"] = serde_json::json!({ "forceOpen": true });
        }
        let mut sessions: Vec<String> = Vec::new();
        for socket in &sockets {
            let sid = socket.data().id;
            for payload in &payloads {
                if let Err(error) = socket.emit(&self.bot_message_evt, payload).await {
                    tracing::warn!(%sid, %error, "could not deliver an offer");
                }
            }
            // The socket's confirmed session is the one room it joined for it.
            let session = socket
                .rooms()
                .await
                .ok()
                .and_then(|rooms| {
                    rooms
                        .iter()
                        .find_map(|r| room::session_of(r).map(str::to_owned))
                })
                .unwrap_or_else(|| sid.to_string());
            if !sessions.contains(&session) {
                sessions.push(session);
            }
        }
        // The offer is part of each conversation it appeared in.
        let visitor = Visitor::known(product.clone(), user.clone());
        for session in &sessions {
            self.copilot.record_offer(
                &ConversationKey::new(&visitor, session),
                response,
                &messages,
            );
        }
        Delivery::Delivered(sockets.len())
    }
}

/// Rasa's check: `auth.token`, a leading `Bearer ` stripped, verified with the
/// configured secret and algorithm. Off when no secret is set.
async fn authenticate(
    State(chat): State<ChatState>,
    TryData(auth): TryData<Value>,
) -> Result<(), AuthError> {
    let secret = &chat.settings.jwt_secret;
    if secret.is_empty() {
        return Ok(());
    }
    let token = auth
        .ok()
        .as_ref()
        .and_then(|a| a.get("token"))
        .and_then(Value::as_str)
        .map(|t| t.strip_prefix("Bearer ").unwrap_or(t).trim().to_owned())
        .filter(|t| !t.is_empty())
        .ok_or(AuthError::Missing)?;
    let algorithm = chat
        .settings
        .jwt_method
        .parse()
        .map_err(|_| AuthError::Invalid)?;
    let mut validation = jsonwebtoken::Validation::new(algorithm);
    // Like PyJWT: `exp` is checked when present, not required.
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<Value>(
        &token,
        &jsonwebtoken::DecodingKey::from_secret(secret.as_bytes()),
        &validation,
    )
    .map(|_| ())
    .map_err(|_| AuthError::Invalid)
}

/// The Origin of the socket's handshake request, if a browser sent one.
fn origin_of(socket: &SocketRef) -> Option<String> {
    socket
        .req_parts()
        .headers
        .get(axum::http::header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .map(str::to_owned)
}

/// Refuses a page whose origin the product (named in `auth`, or the only
/// one) does not allow; the client sees a `connect_error` with the message.
async fn check_origin(
    socket: SocketRef,
    State(chat): State<ChatState>,
    TryData(auth): TryData<Value>,
) -> Result<(), AuthError> {
    let claim = auth.ok().as_ref().map(claim_in).unwrap_or_default();
    let resolved = identity::resolve(&chat.products, &claim);
    match resolved.product {
        Some(product) => {
            let origin = origin_of(&socket);
            if product.origin_allowed(origin.as_deref()) {
                Ok(())
            } else {
                Err(AuthError::Origin {
                    origin: origin.unwrap_or_default(),
                    product: product.id.clone(),
                })
            }
        }
        None => Ok(()),
    }
}

/// Runs after the checks and before the CONNECT ack goes out.
async fn admit(
    socket: SocketRef,
    State(chat): State<ChatState>,
    TryData(auth): TryData<Value>,
) -> Result<(), std::convert::Infallible> {
    // python-socketio puts every socket in a room named after its sid; Rasa relies on it.
    socket.join(socket.id.to_string());
    let claim = auth.ok().as_ref().map(claim_in).unwrap_or_default();
    let resolved = identity::resolve(&chat.products, &claim);
    let conn = Arc::new(Conn {
        limiter: chat.limits.for_socket(),
        gone: tokio_util::sync::CancellationToken::new(),
        state: parking_lot::Mutex::new(ConnState {
            claim,
            visitor: Visitor::anonymous(None),
            session: None,
        }),
    });
    socket.extensions.insert(ConnExt(Arc::clone(&conn)));
    remember(&socket, &chat, &conn, &resolved);
    chat.metrics.sockets.inc();
    socket.on_disconnect(async |socket: SocketRef, State(chat): State<ChatState>| {
        chat.metrics.sockets.dec();
        let Some(conn) = self::conn(&socket) else {
            return;
        };
        conn.gone.cancel();
        if let Some((product, user)) = conn.state.lock().visitor.identity() {
            chat.presence.left(product, user);
        }
    });
    socket.on(SESSION_REQUEST, session_request);
    socket.on(chat.settings.user_message_evt.clone(), user_uttered);
    socket.on(FEEDBACK, feedback);
    Ok(())
}

async fn on_connect(socket: SocketRef) {
    tracing::debug!(sid = %socket.id, protocol = ?socket.protocol(), "socket connected");
}

/// Records who the socket speaks for; a known user's sockets share a room for
/// offers. Counts an unverified claim.
fn remember(socket: &SocketRef, chat: &ChatState, conn: &Conn, resolved: &Resolved) {
    if resolved.verdict == Verdict::Unverified {
        chat.metrics.unverified(Channel::Socketio);
    }
    let visitor = &resolved.visitor;
    let (previous, session) = {
        let mut state = conn.state.lock();
        if &state.visitor == visitor {
            return;
        }
        let previous = std::mem::replace(&mut state.visitor, visitor.clone());
        (previous, state.session.clone())
    };
    // Rooms are joined outside our lock: the adapter has locks of its own.
    if let Some((product, user)) = previous.identity() {
        socket.leave(room::user(product, user));
        chat.presence.left(product, user);
    }
    if let Some((product, user)) = visitor.identity() {
        socket.join(room::user(product, user));
        chat.presence.joined(product, user);
    }
    // The session's room is per visitor: move to the new visitor's.
    if let Some(session) = &session
        && chat.settings.session_persistence
    {
        socket.leave(room::session(&previous, session));
        socket.join(room::session(visitor, session));
    }
}

fn requested_session(data: &Value) -> Option<String> {
    let id = data.get("session_id")?.as_str()?.trim();
    (!id.is_empty() && id.len() <= MAX_SESSION_ID_LEN && !id.chars().any(char::is_control))
        .then(|| id.to_owned())
}

async fn session_request(
    socket: SocketRef,
    State(chat): State<ChatState>,
    TryData(data): TryData<Value>,
) {
    let Some(conn) = conn(&socket) else {
        return;
    };
    let data = data.ok();
    let session_id = data
        .as_ref()
        .and_then(requested_session)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    // Our widget repeats its identity here (`customData`), for servers that
    // read it from the session request rather than the connect auth.
    if let Some(claim) = data
        .as_ref()
        .and_then(|d| d.get("customData"))
        .map(claim_in)
        .filter(|c| c.user_id.is_some())
    {
        let claim = claim.or(&conn.state.lock().claim);
        let resolved = identity::resolve(&chat.products, &claim);
        if resolved_origin_ok(&socket, &resolved) {
            conn.state.lock().claim = claim;
            remember(&socket, &chat, &conn, &resolved);
        }
    }
    let (visitor, previous) = {
        let mut state = conn.state.lock();
        let previous = state.session.replace(session_id.clone());
        (state.visitor.clone(), previous)
    };
    if chat.settings.session_persistence {
        if let Some(previous) = previous
            && previous != session_id
        {
            socket.leave(room::session(&visitor, &previous));
        }
        socket.join(room::session(&visitor, &session_id));
    }
    ack_sent(&socket).await;
    if let Err(error) = socket.emit(SESSION_CONFIRM, &session_id) {
        tracing::warn!(sid = %socket.id, %error, "could not confirm session");
    }
}

/// Waits until socketioxide marks the socket connected. It does so just after
/// queueing the CONNECT ack, so a client that answers the ack at once can have
/// its first event handled before, and an emit then fails as "closed" (seen
/// about once in 1000 connects on a busy 2-core machine). The wait is bounded:
/// a socket that really is gone stays unconnected.
async fn ack_sent(socket: &SocketRef) {
    const POLLS: u32 = 2000;
    for _ in 0..POLLS {
        if socket.connected() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// The socket's page may use the product a later claim named.
fn resolved_origin_ok(socket: &SocketRef, resolved: &Resolved) -> bool {
    resolved.product.as_ref().is_none_or(|product| {
        let origin = origin_of(socket);
        let ok = product.origin_allowed(origin.as_deref());
        if !ok {
            tracing::warn!(sid = %socket.id, product = %product.id, origin, "origin not allowed for the product a message named; ignored");
        }
        ok
    })
}

async fn user_uttered(
    socket: SocketRef,
    io: SocketIo,
    State(chat): State<ChatState>,
    TryData(data): TryData<Value>,
) {
    let Ok(data) = data else {
        tracing::warn!(sid = %socket.id, "user message is not JSON; ignored");
        return;
    };
    let settings = &chat.settings;
    let text = data
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .trim()
        .to_owned();
    let metadata = [settings.metadata_key.as_str(), "metadata", "customData"]
        .iter()
        .find_map(|key| data.get(*key))
        .map(|m| match m {
            // Rasa accepts metadata given as a JSON string.
            Value::String(s) => serde_json::from_str(s).unwrap_or(Value::Null),
            other => other.clone(),
        });
    let sender = if settings.session_persistence {
        match data
            .get("session_id")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|id| {
                !id.is_empty()
                    && id.len() <= MAX_SESSION_ID_LEN
                    && !id.chars().any(char::is_control)
            }) {
            Some(id) => id.to_owned(),
            None => {
                tracing::warn!(
                    sid = %socket.id,
                    "user message without a usable session_id while session persistence is on; \
                     ignored (the client must send session_request and include the confirmed id)"
                );
                return;
            }
        }
    } else {
        socket.id.to_string()
    };
    if text.is_empty() {
        tracing::debug!(sid = %socket.id, "empty user message; ignored");
        return;
    }
    let Some(conn) = conn(&socket) else {
        return;
    };
    let claim = metadata
        .as_ref()
        .map(claim_in)
        .unwrap_or_default()
        .or(&conn.state.lock().claim);
    let resolved = identity::resolve(&chat.products, &claim);
    if !resolved_origin_ok(&socket, &resolved) {
        return;
    }
    remember(&socket, &chat, &conn, &resolved);
    let visitor = resolved.visitor;
    // The session room reaches every tab of the session; the socket's own room
    // covers a client that never confirmed a session. Each socket gets one copy.
    let rooms = if settings.session_persistence {
        let session_room = room::session(&visitor, &sender);
        // `remember` keeps the confirmed session's room; joining takes the
        // adapter's global write lock, so only a session the socket never
        // confirmed is joined here.
        let confirmed = conn.state.lock().session.as_deref() == Some(sender.as_str());
        if !confirmed {
            socket.join(session_room.clone());
        }
        vec![session_room, socket.id.to_string()]
    } else {
        vec![socket.id.to_string()]
    };
    if conn.limiter.check().is_err() {
        // Only the sender hears it; nothing is queued or remembered.
        chat.metrics.limited(Limit::Messages);
        let slow_down = [BotMessage::text(SLOW_DOWN.to_owned())];
        emit_messages(
            &io,
            &socket,
            settings,
            vec![socket.id.to_string()],
            &slow_down,
            None,
            None,
        )
        .await;
        return;
    }
    chat.proactive.on_user_message(&visitor);
    let message = UserMessage {
        sender,
        visitor,
        text,
    };
    // Our widget asks for turn ids, to rate answers (`customData.feedback`).
    let wants_feedback = metadata
        .as_ref()
        .and_then(|m| m.get("feedback"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    // Our widget asks for the answer as it is written (`customData.stream`).
    let wants_stream = metadata
        .as_ref()
        .and_then(|m| m.get("stream"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if !wants_stream {
        let result = chat.copilot.handle(&message).await;
        let turn_id = result.turn_id.as_deref().filter(|_| wants_feedback);
        emit_messages(
            &io,
            &socket,
            settings,
            rooms,
            &result.messages,
            None,
            turn_id,
        )
        .await;
        return;
    }
    let mut turn = live::run(chat.copilot.clone(), message, conn.gone.child_token());
    while let Some(event) = turn.events.recv().await {
        match event {
            LiveEvent::Progress(progress) => {
                let frame = payloads::progress_frame(&progress);
                if let Err(error) = io.to(rooms.clone()).emit(BOT_STREAM, &frame).await {
                    tracing::debug!(sid = %socket.id, %error, "could not deliver a draft");
                }
            }
            LiveEvent::Done(result) => {
                let drafted = result.drafted.map(|i| (i, turn.message_id.as_str()));
                let turn_id = result.turn_id.as_deref().filter(|_| wants_feedback);
                emit_messages(
                    &io,
                    &socket,
                    settings,
                    rooms.clone(),
                    &result.messages,
                    drafted,
                    turn_id,
                )
                .await;
            }
        }
    }
}

/// Emits `messages` as `bot_uttered` payloads to `rooms`; the `drafted` one
/// (index, message id) goes out whole, naming its draft. With `turn_id`,
/// each payload's metadata names the turn, so the client can rate it.
async fn emit_messages(
    io: &SocketIo,
    socket: &SocketRef,
    settings: &SocketIoSettings,
    rooms: Vec<String>,
    messages: &[BotMessage],
    drafted: Option<(usize, &str)>,
    turn_id: Option<&str>,
) {
    for mut payload in payloads::socket_payloads_drafted(messages, drafted) {
        if let Some(turn_id) = turn_id {
            payloads::set_metadata(&mut payload, "turn_id", Value::from(turn_id));
        }
        if let Err(error) = io
            .to(rooms.clone())
            .emit(&settings.bot_message_evt, &payload)
            .await
        {
            tracing::warn!(sid = %socket.id, %error, "could not deliver a bot message");
        }
    }
}

/// `feedback {turn_id, value: "up"|"down"}`: recorded only for a turn of this
/// socket's own conversation (its visitor and confirmed session), so nobody
/// rates another's answers.
async fn feedback(socket: SocketRef, State(chat): State<ChatState>, TryData(data): TryData<Value>) {
    let Ok(data) = data else {
        return;
    };
    let turn_id = data
        .get("turn_id")
        .and_then(Value::as_str)
        .filter(|id| id.len() <= 64 && id.starts_with("t_"));
    let value = match data.get("value").and_then(Value::as_str) {
        Some("up") => crate::dialogue::Feedback::Up,
        Some("down") => crate::dialogue::Feedback::Down,
        _ => {
            tracing::debug!(sid = %socket.id, "feedback value is not up or down; ignored");
            return;
        }
    };
    let (Some(turn_id), Some(conn)) = (turn_id, conn(&socket)) else {
        tracing::debug!(sid = %socket.id, "feedback without a turn id; ignored");
        return;
    };
    let (visitor, sender) = {
        let state = conn.state.lock();
        let sender = if chat.settings.session_persistence {
            state.session.clone()
        } else {
            Some(socket.id.to_string())
        };
        (state.visitor.clone(), sender)
    };
    let Some(sender) = sender else {
        return;
    };
    chat.copilot
        .feedback(&ConversationKey::new(&visitor, &sender), turn_id, value);
}
