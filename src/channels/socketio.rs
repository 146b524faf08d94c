//! Rasa's `socketio` channel on socketioxide: `session_request` →
//! `session_confirm` (the id echoed as a bare string), `user_uttered` →
//! `bot_uttered` to the session's room, optional JWT check on connect.
//! Event names, metadata key and session persistence come from settings.

use std::sync::Arc;

use serde_json::Value;
use socketioxide::SocketIo;
use socketioxide::extract::{SocketRef, State, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::layer::SocketIoLayer;

use super::{payloads, user_id_value};
use crate::config::SocketIoSettings;
use crate::dialogue::{BotMessage, Copilot, UserMessage};
use crate::domain::UserId;
use crate::metrics::Metrics;
use crate::proactive::{Delivery, Notifier, Proactive};

pub const SESSION_REQUEST: &str = "session_request";
pub const SESSION_CONFIRM: &str = "session_confirm";
/// Longest session id accepted from a client.
const MAX_SESSION_ID_LEN: usize = 256;

/// What socket handlers share.
#[derive(Clone)]
pub struct ChatState {
    copilot: Copilot,
    proactive: Proactive,
    metrics: Metrics,
    settings: Arc<SocketIoSettings>,
}

/// The session a socket confirmed.
#[derive(Clone)]
struct SessionExt(String);

/// The user a socket speaks for, once known (auth, or a message's metadata).
#[derive(Clone)]
pub struct UserExt(pub UserId);

/// The room every socket of one user joins, for pushes to all their tabs.
pub fn user_room(user: &UserId) -> String {
    format!("user:{user}")
}

#[derive(Debug, thiserror::Error)]
enum AuthError {
    /// JWT auth is on and the connect packet carried no token.
    #[error("authentication token required")]
    Missing,
    /// The token did not verify.
    #[error("invalid authentication token")]
    Invalid,
}

/// The Socket.IO layer and its handle, with the `/` namespace registered.
/// Proactive offers are delivered through it once the layer exists.
pub fn layer(
    copilot: Copilot,
    proactive: Proactive,
    metrics: Metrics,
    settings: &SocketIoSettings,
) -> (SocketIoLayer, SocketIo) {
    let (layer, io) = SocketIo::builder()
        .max_payload(settings.max_payload_bytes)
        .max_buffer_size(settings.max_buffer_packets)
        .with_state(ChatState {
            copilot: copilot.clone(),
            proactive: proactive.clone(),
            metrics,
            settings: Arc::new(settings.clone()),
        })
        .build_layer();
    // Everything a socket needs is set up in `admit`, a middleware that
    // socketioxide awaits before it acks CONNECT. The connect handler itself
    // is spawned after the ack, and a client's first event (widgets send
    // `session_request` from their connect callback) could beat it.
    io.ns("/", on_connect.with(admit).with(authenticate));
    proactive.set_notifier(Arc::new(SocketNotifier {
        io: io.clone(),
        copilot,
        bot_message_evt: settings.bot_message_evt.clone(),
    }));
    (layer, io)
}

/// Delivers proactive offers to every socket a user has open, with
/// `metadata.forceOpen` so widgets (ours and rasa-webchat) open themselves.
struct SocketNotifier {
    io: SocketIo,
    copilot: Copilot,
    bot_message_evt: String,
}

#[async_trait::async_trait]
impl Notifier for SocketNotifier {
    async fn offer(&self, user: &UserId, message: &BotMessage) -> Delivery {
        let sockets = self.io.to(user_room(user)).sockets();
        if sockets.is_empty() {
            return Delivery::NoSocket;
        }
        let mut payloads = payloads::socket_payloads(std::slice::from_ref(message));
        if let Some(last) = payloads.last_mut() {
            last["metadata"] = serde_json::json!({ "forceOpen": true });
        }
        let mut sessions: Vec<String> = Vec::new();
        for socket in &sockets {
            for payload in &payloads {
                if let Err(error) = socket.emit(&self.bot_message_evt, payload) {
                    tracing::warn!(sid = %socket.id, %error, "could not deliver an offer");
                }
            }
            let session = socket
                .extensions
                .get::<SessionExt>()
                .map_or_else(|| socket.id.to_string(), |SessionExt(id)| id);
            if !sessions.contains(&session) {
                sessions.push(session);
            }
        }
        // The offer is part of each conversation it appeared in.
        if let Some(text) = message.as_text() {
            for session in &sessions {
                self.copilot.conversations().record_bot(session, text);
            }
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

/// Runs after `authenticate` and before the CONNECT ack goes out.
async fn admit(
    socket: SocketRef,
    State(chat): State<ChatState>,
    TryData(auth): TryData<Value>,
) -> Result<(), std::convert::Infallible> {
    // python-socketio puts every socket in a room named after its sid; Rasa relies on it.
    socket.join(socket.id.to_string());
    if let Some(user) = auth.ok().as_ref().and_then(user_from_metadata) {
        remember_user(&socket, user);
    }
    chat.metrics.sockets.inc();
    socket.on_disconnect(async |State(chat): State<ChatState>| {
        chat.metrics.sockets.dec();
    });
    socket.on(SESSION_REQUEST, session_request);
    socket.on(chat.settings.user_message_evt.clone(), user_uttered);
    Ok(())
}

async fn on_connect(socket: SocketRef) {
    tracing::debug!(sid = %socket.id, protocol = ?socket.protocol(), "socket connected");
}

fn remember_user(socket: &SocketRef, user: UserId) {
    socket.join(user_room(&user));
    socket.extensions.insert(UserExt(user));
}

/// `{"userId"}` or `{"customData": {"userId"}}`.
fn user_from_metadata(value: &Value) -> Option<UserId> {
    value
        .get("userId")
        .or_else(|| value.get("customData").and_then(|c| c.get("userId")))
        .and_then(user_id_value)
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
    let session_id = data
        .ok()
        .as_ref()
        .and_then(requested_session)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    if chat.settings.session_persistence {
        if let Some(SessionExt(previous)) = socket.extensions.get::<SessionExt>()
            && previous != session_id
        {
            socket.leave(previous);
        }
        socket.join(session_id.clone());
    }
    socket.extensions.insert(SessionExt(session_id.clone()));
    if let Err(error) = socket.emit(SESSION_CONFIRM, &session_id) {
        tracing::warn!(sid = %socket.id, %error, "could not confirm session");
    }
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
    let (sender, room) = if settings.session_persistence {
        match data
            .get("session_id")
            .and_then(Value::as_str)
            .map(str::trim)
        {
            Some(id) if !id.is_empty() => (id.to_owned(), id.to_owned()),
            _ => {
                tracing::warn!(
                    sid = %socket.id,
                    "user message without session_id while session persistence is on; ignored \
                     (the client must send session_request and include the confirmed id)"
                );
                return;
            }
        }
    } else {
        (socket.id.to_string(), socket.id.to_string())
    };
    if text.is_empty() {
        tracing::debug!(sid = %socket.id, "empty user message; ignored");
        return;
    }
    if let Some(user) = metadata.as_ref().and_then(user_from_metadata) {
        remember_user(&socket, user);
    }
    let user = match socket.extensions.get::<UserExt>() {
        Some(UserExt(user)) => user,
        None => match UserId::parse(&sender) {
            Ok(user) => user,
            Err(error) => {
                tracing::warn!(sid = %socket.id, %error, "unusable sender id; ignored");
                return;
            }
        },
    };
    chat.proactive.on_user_message(&user);
    let result = chat
        .copilot
        .handle(&UserMessage { sender, user, text })
        .await;
    // The session room reaches every tab of the session; the socket's own room
    // covers a client that never confirmed a session. Each socket gets one copy.
    let rooms = vec![room, socket.id.to_string()];
    for payload in payloads::socket_payloads(&result.messages) {
        if let Err(error) = io
            .to(rooms.clone())
            .emit(&settings.bot_message_evt, &payload)
            .await
        {
            tracing::warn!(sid = %socket.id, %error, "could not deliver a bot message");
        }
    }
}
