//! The copilot: one chat turn from message to bot messages. Classify (NLU),
//! fill slots, then let the policy pick actions until it says listen: domain
//! responses, forms, custom actions on the action server, or the activity
//! actions answered by the LLM when configured and by templates otherwise.
//! Callers (sockets, REST, `/reply`) hand it typed values; it knows no transport.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::config::LlmSettings;
use crate::context::{ContextStore, UserActivity};
use crate::domain::{ProductId, UserId, Visitor};
use crate::knowledge::{Excerpt, Knowledge};
use crate::limits::{Limits, Who};
use crate::llm::{Completion, LlmClient};
use crate::metrics::{IntentLabels, Limit, Metrics};
use serde_json::Value as Json;

use crate::nlu::{Button, Classification, Matcher};

use super::action_server::{self, ActionResult};
use super::bot::Bot;
use super::conversation::{ConversationKey, Conversations, TurnStart};
use super::forms::{self, FormStep};
use super::names::{display_name, first_name};
use super::offline::{OfflineResponder, Topic};
use super::policy::{ActionId, MAX_ACTIONS_PER_TURN, Reason};
use super::prompt;
use super::record::{self, Ranked, RecordKind, Responder, TurnDetail, TurnRecord, TurnSink};
use super::responses::BotMessage;
use super::slots;
use super::tracker::Tracker;

/// Said when a custom action fails or times out (the log says which and why).
const ACTION_APOLOGY: &str =
    "Sorry — something went wrong on my side while doing that. Please try again in a moment.";

/// Said (before the template answer) when the LLM fails, times out or babbles.
const LLM_APOLOGY: &str =
    "Sorry — I couldn't reach my language model just now, so here's what I can tell you:";

/// Said instead of an answer when a user sends messages faster than the limit.
pub const SLOW_DOWN: &str = "You're sending messages faster than I can answer — please slow down and try again in a minute.";

/// Said (before the template answer) past the hourly LLM allowance.
const LLM_LIMIT_NOTE: &str = "You've asked me a lot this hour, so I'm answering from what I can see without my language model for now:";

/// One incoming chat message.
#[derive(Debug, Clone)]
pub struct UserMessage {
    /// The conversation (Rasa's sender id: a session id, a socket id, a REST sender).
    pub sender: String,
    /// Who is speaking; their activity grounds the answer only when known.
    pub visitor: Visitor,
    pub text: String,
}

/// What a turn produced.
#[derive(Debug, Clone)]
pub struct TurnResult {
    pub classification: Classification,
    pub messages: Vec<BotMessage>,
    pub name: Option<String>,
    pub has_activity: bool,
    /// Which of `messages` was written into the live turn's draft as it was
    /// made (an LLM answer), if any.
    pub drafted: Option<usize>,
    /// The turn's id in the console's records (None: not recorded).
    pub turn_id: Option<String>,
}

/// A turn someone watches as it happens: the LLM's answer is written into
/// `draft` as it streams, and `cancel` (the watcher left) stops the LLM call;
/// the turn still ends normally, so the conversation keeps its state.
pub struct Live {
    pub draft: crate::llm::Draft,
    pub cancel: tokio_util::sync::CancellationToken,
}

/// `/reply`'s answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub text: String,
    /// The user's display name from their email (`Casey Jones`), if known.
    pub name: Option<String>,
    pub has_activity: bool,
}

impl Reply {
    /// A turn's texts joined.
    pub fn of(result: TurnResult) -> Self {
        let text = result
            .messages
            .iter()
            .filter_map(BotMessage::as_text)
            .collect::<Vec<_>>()
            .join("\n\n");
        Reply {
            text,
            name: result.name,
            has_activity: result.has_activity,
        }
    }
}

/// The LLM and how to call it.
pub struct LlmSetup {
    pub client: Arc<dyn LlmClient>,
    pub system_prompt: String,
    pub temperature: f32,
    pub max_tokens: u32,
}

impl LlmSetup {
    pub fn new(client: Arc<dyn LlmClient>, system_prompt: String, settings: &LlmSettings) -> Self {
        Self {
            client,
            system_prompt,
            temperature: settings.temperature,
            max_tokens: settings.max_tokens,
        }
    }
}

#[derive(Clone)]
pub struct Copilot {
    inner: Arc<Inner>,
}

struct Inner {
    store: ContextStore,
    conversations: Conversations,
    /// Replaced whole when the console's labels retrain the classifier.
    matcher: parking_lot::RwLock<Arc<Matcher>>,
    bot: Bot,
    llm: Option<LlmSetup>,
    limits: Limits,
    metrics: Metrics,
    /// Help pages for how-to questions, and how many sections an answer uses.
    knowledge: Option<(Knowledge, usize)>,
    /// Where turns are recorded for the console.
    sink: Option<Arc<dyn TurnSink>>,
}

/// How running one action went.
enum Ran {
    Done(Vec<BotMessage>),
    /// The action named the next one.
    Followup(Vec<BotMessage>, ActionId),
    /// The form (or action) could not use the message: predict again without it.
    Rejected,
    /// Said this, and the turn is over.
    Stop(Vec<BotMessage>),
}

/// One of an action server's `responses`: a domain response by name, or a
/// message spelled out.
fn custom_response(
    bot: &Bot,
    response: &Json,
    tracker: &Tracker,
    first_name: Option<&str>,
) -> Vec<BotMessage> {
    let named = response["response"]
        .as_str()
        .or(response["template"].as_str());
    if let Some(name) = named.filter(|n| bot.has_response(n)) {
        return bot.render(name, Some(tracker), first_name);
    }
    let mut said = Vec::new();
    let buttons: Vec<Button> = response["buttons"]
        .as_array()
        .map(|b| {
            b.iter()
                .filter_map(|b| {
                    Some(Button {
                        title: b["title"].as_str()?.to_owned(),
                        payload: b["payload"].as_str().unwrap_or_default().to_owned(),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    if let Some(text) = response["text"].as_str() {
        said.push(BotMessage::Text {
            text: text.to_owned(),
            buttons,
            metadata: None,
        });
    } else if !buttons.is_empty() {
        said.push(BotMessage::Text {
            text: String::new(),
            buttons,
            metadata: None,
        });
    }
    if let Some(url) = response["image"].as_str() {
        said.push(BotMessage::Image {
            url: url.to_owned(),
        });
    }
    if !response["attachment"].is_null() {
        said.push(BotMessage::Attachment(response["attachment"].clone()));
    }
    if !response["custom"].is_null() && response["custom"] != Json::Object(Default::default()) {
        said.push(BotMessage::Custom(response["custom"].clone()));
    }
    said
}

/// Everything one action needs to know about the turn.
struct TurnContext<'a> {
    message: &'a UserMessage,
    who: Who,
    activity: UserActivity,
    first_name: Option<String>,
    start: TurnStart,
    live: Option<&'a Live>,
    /// Set when an answer was written into the live draft (taken by the turn).
    drafted: AtomicBool,
    /// What the answer was made from, for the console.
    trace: parking_lot::Mutex<Trace>,
}

/// What the turn's generated answer was made from (filled by `compose`).
#[derive(Default)]
struct Trace {
    /// Set by `compose`; taken by the action loop.
    generated: Option<Responder>,
    sources: Vec<record::Source>,
    activity: Option<String>,
    prompt: Option<record::Prompt>,
    llm_ms: Option<u64>,
    llm_failed: bool,
}

/// Who answers when an action that says something ran (generated answers
/// say so themselves, through the trace).
fn responder_of(action: &ActionId, reason: &Reason) -> Responder {
    match action {
        ActionId::Utter(_) | ActionId::Restart => match reason {
            Reason::Rule(_) => Responder::Rule,
            _ => Responder::Response,
        },
        ActionId::Form(_) => Responder::Form,
        ActionId::Custom(_) => Responder::CustomAction,
        ActionId::DefaultFallback => Responder::Fallback,
        _ => Responder::None,
    }
}

/// "yes", and the intents an offer's buttons send (`/ask_bulk_edit`), except "no".
fn accepting_intents(messages: &[BotMessage]) -> Vec<String> {
    let mut intents = vec!["affirm".to_owned()];
    for message in messages {
        if let BotMessage::Text { buttons, .. } = message {
            for button in buttons {
                let Some(command) = button.payload.strip_prefix('/') else {
                    continue;
                };
                let intent = command.split(['{', '@']).next().unwrap_or_default();
                if !intent.is_empty() && intent != "deny" && !intents.iter().any(|i| i == intent) {
                    intents.push(intent.to_owned());
                }
            }
        }
    }
    intents
}

fn reason_label(reason: &Reason) -> String {
    match reason {
        Reason::Rule(name) => format!("rule: {name}"),
        Reason::Story => "story".to_owned(),
        Reason::ActiveLoop => "form".to_owned(),
        Reason::Followup => "followup".to_owned(),
        Reason::CoreFallback => "core fallback".to_owned(),
        Reason::Done => "done".to_owned(),
    }
}

impl Copilot {
    pub fn new(
        store: ContextStore,
        conversations: Conversations,
        bot: Bot,
        matcher: Matcher,
        llm: Option<LlmSetup>,
        limits: Limits,
        metrics: Metrics,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                conversations,
                matcher: parking_lot::RwLock::new(Arc::new(matcher)),
                bot,
                llm,
                limits,
                metrics,
                knowledge: None,
                sink: None,
            }),
        }
    }

    /// Answers how-to questions from `knowledge` too, with `excerpts` sections
    /// at most. Call right after [`Copilot::new`], before the copilot is cloned.
    pub fn with_knowledge(mut self, knowledge: Knowledge, excerpts: usize) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.knowledge = Some((knowledge, excerpts)),
            None => tracing::error!("with_knowledge on a shared copilot; knowledge not used"),
        }
        self
    }

    /// Records every turn and offer in `sink`. Call right after
    /// [`Copilot::new`], before the copilot is cloned.
    pub fn with_turn_sink(mut self, sink: Arc<dyn TurnSink>) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.sink = Some(sink),
            None => tracing::error!("with_turn_sink on a shared copilot; turns not recorded"),
        }
        self
    }

    /// The classifier in use now.
    pub fn matcher(&self) -> Arc<Matcher> {
        Arc::clone(&self.inner.matcher.read())
    }

    /// Swaps in a retrained classifier: the next message uses it.
    pub fn replace_matcher(&self, matcher: Matcher) {
        *self.inner.matcher.write() = Arc::new(matcher);
    }

    /// A thumbs up or down from the conversation's own client.
    pub fn feedback(&self, key: &ConversationKey, turn_id: &str, feedback: record::Feedback) {
        if let Some(sink) = &self.inner.sink {
            sink.feedback(&record::conversation_id(key), turn_id, feedback);
        }
    }

    /// Help sections for an open question (None: the product has no pages).
    fn excerpts(&self, topic: Topic, turn: &TurnContext<'_>) -> Option<Vec<Excerpt>> {
        if topic != Topic::Other {
            return None;
        }
        let (knowledge, limit) = self.inner.knowledge.as_ref()?;
        let product = turn.message.visitor.product.as_ref()?;
        if !knowledge.has_pages(product) {
            return None;
        }
        Some(knowledge.search(product, &turn.message.text, *limit))
    }

    pub fn classify(&self, text: &str) -> Classification {
        self.matcher().classify(text)
    }

    pub fn conversations(&self) -> &Conversations {
        &self.inner.conversations
    }

    /// A domain response as a proactive offer shows it (no slots, no name).
    pub fn response(&self, name: &str) -> Vec<BotMessage> {
        self.inner.bot.render(name, None, None)
    }

    pub fn has_response(&self, name: &str) -> bool {
        self.inner.bot.has_response(name)
    }

    /// A proactive offer appeared in this conversation: it is the bot's last
    /// action there, so rules can follow on from it.
    pub fn record_offer(
        &self,
        key: &ConversationKey,
        response: Option<&str>,
        messages: &[BotMessage],
    ) {
        let texts: Vec<&str> = messages.iter().filter_map(BotMessage::as_text).collect();
        if let Some(sink) = &self.inner.sink {
            sink.record(TurnRecord {
                id: record::new_turn_id(),
                conversation_id: record::conversation_id(key),
                product: key.visitor.product.clone(),
                user: key.visitor.user.clone(),
                sender: key.sender.clone(),
                at_ms: self
                    .inner
                    .conversations
                    .stamp(key, chrono::Utc::now().timestamp_millis()),
                kind: RecordKind::Offer,
                text: texts.join("\n\n"),
                // For an offer: the intents that take it up (its buttons', and
                // "yes"), comma-separated, so the numbers can tell accepted.
                intent: Some(accepting_intents(messages).join(",")),
                responder: Responder::Proactive,
                llm_ms: None,
                detail: TurnDetail {
                    actions: response.map(str::to_owned).into_iter().collect(),
                    replies: texts.iter().map(|t| (*t).to_owned()).collect(),
                    ..TurnDetail::default()
                },
            });
        }
        match response {
            Some(action) => self.inner.conversations.record_action(key, action, &texts),
            None => {
                for text in texts {
                    self.inner.conversations.record_bot(key, text);
                }
            }
        }
    }

    /// One chat turn. Past the per-user message limit the answer is a polite
    /// "slow down", and nothing else happens (no LLM call, no memory).
    pub async fn handle(&self, message: &UserMessage) -> TurnResult {
        self.handle_live(message, None).await
    }

    /// [`Copilot::handle`], watched live: see [`Live`].
    pub async fn handle_live(&self, message: &UserMessage, live: Option<&Live>) -> TurnResult {
        let inner = &self.inner;
        let matcher = self.matcher();
        let classification = matcher.classify(&message.text);
        let received_ms = chrono::Utc::now().timestamp_millis();
        let who = Who::of(&message.visitor, &message.sender);
        if !inner.limits.allow_message(&who).await {
            inner.metrics.limited(Limit::Messages);
            return TurnResult {
                classification,
                messages: vec![BotMessage::text(SLOW_DOWN.to_owned())],
                name: None,
                has_activity: false,
                drafted: None,
                turn_id: None,
            };
        }
        let (activity, email) = match message.visitor.identity() {
            Some((product, user)) => {
                let activity = inner.store.user_activity(product, user);
                let email = activity
                    .email
                    .clone()
                    .or_else(|| inner.store.user_email(product, user));
                (activity, email)
            }
            None => (UserActivity::default(), None),
        };
        let name = email.as_deref().and_then(display_name);
        let conversation = ConversationKey::new(&message.visitor, &message.sender);
        let mut start = inner
            .conversations
            .begin_turn(&conversation, &message.text, received_ms);
        let at_ms = start.at_ms;
        let mut tracker = std::mem::take(&mut start.tracker);
        let has_activity = activity.has_activity();
        let turn = TurnContext {
            message,
            who,
            activity,
            first_name: name.as_deref().map(first_name).map(str::to_owned),
            start,
            live,
            drafted: AtomicBool::new(false),
            trace: parking_lot::Mutex::new(Trace::default()),
        };

        let intent = classification.intent.name.as_str();
        inner
            .metrics
            .chat_turns
            .get_or_create(&IntentLabels {
                intent: intent.to_owned(),
            })
            .inc();
        tracker.ensure_initial(|| inner.bot.initial_slots());
        tracker.user_uttered(&message.text, &classification);
        slots::extract(&inner.bot.slots, &mut tracker);
        let mut messages = Vec::new();
        let mut form_rejected = false;
        let mut followup: Option<ActionId> = None;
        let mut drafted = None;
        // What the console's record needs (nothing when nobody records).
        let recording = inner.sink.is_some();
        let mut actions_run = Vec::new();
        // Who answered, and why that action ran.
        let mut answered: Option<(Responder, String)> = None;
        for _ in 0..MAX_ACTIONS_PER_TURN {
            let (action, reason) = match followup.take() {
                Some(action) => (action, Reason::Followup),
                None => inner.bot.policy.predict(&tracker, form_rejected),
            };
            tracing::debug!(intent, action = action.name(), ?reason, "next action");
            if action == ActionId::Listen {
                break;
            }
            let ran = self.run_action(&action, &mut tracker, &turn).await;
            let said_something = match &ran {
                Ran::Done(said) | Ran::Followup(said, _) | Ran::Stop(said) => !said.is_empty(),
                Ran::Rejected => false,
            };
            if recording {
                actions_run.push(action.name().to_owned());
                if let Some(generated) = turn.trace.lock().generated.take() {
                    answered = Some((generated, reason_label(&reason)));
                } else if said_something && answered.is_none() {
                    answered = Some((responder_of(&action, &reason), reason_label(&reason)));
                }
            }
            // An answer that was drafted is the first message its action said.
            if turn.drafted.swap(false, Ordering::Relaxed) {
                drafted = Some(messages.len());
            }
            match ran {
                Ran::Done(said) => {
                    for text in said.iter().filter_map(BotMessage::as_text) {
                        tracker.bot(text);
                    }
                    messages.extend(said);
                }
                Ran::Followup(said, next) => {
                    messages.extend(said);
                    followup = Some(next);
                }
                Ran::Rejected => form_rejected = true,
                Ran::Stop(said) => {
                    messages.extend(said);
                    break;
                }
            }
        }
        let texts: Vec<&str> = messages.iter().filter_map(BotMessage::as_text).collect();
        inner
            .conversations
            .finish_turn(&conversation, tracker, &texts);
        tracing::debug!(
            intent,
            confidence = classification.intent.confidence,
            replies = messages.len(),
            "chat turn"
        );
        let turn_id = inner.sink.as_ref().map(|sink| {
            let id = record::new_turn_id();
            let trace = std::mem::take(&mut *turn.trace.lock());
            let (responder, rule) = answered.unwrap_or((Responder::None, String::new()));
            let doubt = matcher.doubt(&classification);
            sink.record(TurnRecord {
                id: id.clone(),
                conversation_id: record::conversation_id(&conversation),
                product: message.visitor.product.clone(),
                user: message.visitor.user.clone(),
                sender: message.sender.clone(),
                at_ms,
                kind: RecordKind::Turn,
                text: message.text.clone(),
                intent: Some(classification.intent.name.clone()),
                responder,
                llm_ms: trace.llm_ms,
                detail: TurnDetail {
                    confidence: Some(classification.intent.confidence),
                    ranking: classification
                        .ranking
                        .iter()
                        .map(|r| Ranked {
                            name: r.name.clone(),
                            confidence: r.confidence,
                        })
                        .collect(),
                    rule: Some(rule).filter(|r| !r.is_empty()),
                    actions: actions_run,
                    replies: messages
                        .iter()
                        .filter_map(BotMessage::as_text)
                        .map(str::to_owned)
                        .collect(),
                    sources: trace.sources,
                    activity: trace.activity,
                    prompt: trace.prompt,
                    llm_failed: trace.llm_failed,
                    fallback: doubt == crate::nlu::Doubt::Fallback,
                    ambiguous: doubt == crate::nlu::Doubt::Ambiguous,
                },
            });
            id
        });
        TurnResult {
            classification,
            messages,
            name,
            has_activity,
            drafted,
            turn_id,
        }
    }

    /// `/reply/{user}`: the same pipeline, texts joined. The caller proved it
    /// is the product's backend, so the user is known.
    pub async fn reply(&self, product: &ProductId, user: &UserId, query: &str) -> Reply {
        Reply::of(
            self.handle(&Self::reply_message(product, user, query))
                .await,
        )
    }

    /// The message `/reply/{user}` asks: its own conversation per user.
    pub fn reply_message(product: &ProductId, user: &UserId, query: &str) -> UserMessage {
        UserMessage {
            sender: format!("reply:{user}"),
            visitor: Visitor::known(product.clone(), user.clone()),
            text: query.to_owned(),
        }
    }

    async fn run_action(
        &self,
        action: &ActionId,
        tracker: &mut Tracker,
        turn: &TurnContext<'_>,
    ) -> Ran {
        let bot = &self.inner.bot;
        let first_name = turn.first_name.as_deref();
        let said = match action {
            ActionId::Listen => return Ran::Stop(Vec::new()),
            ActionId::Utter(name) => bot.render(name, Some(tracker), first_name),
            ActionId::RecentActivity => {
                vec![BotMessage::text(self.answer(Topic::Recap, turn).await)]
            }
            ActionId::HelpCurrentPage => {
                vec![BotMessage::text(
                    self.answer(Topic::CurrentPage, turn).await,
                )]
            }
            ActionId::AskLlm => vec![BotMessage::text(self.answer(Topic::Other, turn).await)],
            ActionId::DefaultFallback => {
                let said = if bot.has_response("utter_default") {
                    bot.render("utter_default", Some(tracker), first_name)
                } else {
                    vec![BotMessage::text(self.answer(Topic::Other, turn).await)]
                };
                // As Rasa: the message that was not understood leaves no trace.
                tracker.revert_user_utterance();
                return Ran::Stop(said);
            }
            ActionId::Restart => {
                tracker.restart(bot.initial_slots());
                return Ran::Stop(bot.render("utter_restart", None, first_name));
            }
            ActionId::DeactivateLoop => {
                tracker.set_active_loop(None);
                tracker.set_slot(super::tracker::REQUESTED_SLOT, Json::Null);
                Vec::new()
            }
            ActionId::Form(name) => {
                let Some(form) = bot.forms.iter().find(|f| f.name == *name) else {
                    return Ran::Stop(Vec::new());
                };
                match forms::run(form, tracker, |r| bot.has_response(r)) {
                    FormStep::Rejected => return Ran::Rejected,
                    FormStep::Done => Vec::new(),
                    FormStep::Ask { response, .. } => {
                        tracker.action(name);
                        let said = bot.render(&response, Some(tracker), first_name);
                        return Ran::Done(said);
                    }
                }
            }
            ActionId::Custom(name) => return self.run_custom(name, tracker, turn).await,
        };
        tracker.action(action.name());
        Ran::Done(said)
    }

    /// A custom action on the action server: its events applied, its
    /// responses said. Failures are a polite reply and one log line.
    async fn run_custom(&self, name: &str, tracker: &mut Tracker, turn: &TurnContext<'_>) -> Ran {
        let bot = &self.inner.bot;
        let Some(server) = &bot.action_server else {
            tracing::warn!(
                action = name,
                "custom action with no action server configured"
            );
            return Ran::Stop(vec![BotMessage::text(ACTION_APOLOGY)]);
        };
        let result = server
            .run(name, &turn.message.sender, tracker, &bot.domain_json)
            .await;
        let ActionResult { events, responses } = match result {
            Ok(result) => result,
            Err(action_server::Error::Rejected(reason)) => {
                tracing::debug!(action = name, reason, "custom action rejected the message");
                return Ran::Rejected;
            }
            Err(error) => {
                tracing::warn!(action = name, url = server.url(), %error, "custom action failed");
                return Ran::Stop(vec![BotMessage::text(ACTION_APOLOGY)]);
            }
        };
        tracker.action(name);
        let first_name = turn.first_name.as_deref();
        let mut said = Vec::new();
        for response in &responses {
            said.extend(custom_response(bot, response, tracker, first_name));
        }
        let mut followup = None;
        for event in &events {
            match event["event"].as_str().unwrap_or_default() {
                "slot" => {
                    if let Some(slot) = event["name"].as_str() {
                        tracker.set_slot(slot, event["value"].clone());
                    }
                }
                "followup" => {
                    let next = event["name"].as_str().unwrap_or_default();
                    match bot.actions.resolve(next) {
                        Some(action) => followup = Some(action),
                        None => tracing::warn!(
                            action = name,
                            followup = next,
                            "unknown followup action"
                        ),
                    }
                }
                "active_loop" | "form" => tracker.set_active_loop(event["name"].as_str()),
                "reset_slots" => {
                    for slot in &bot.slots {
                        tracker.set_slot(&slot.name, slot.initial_value.clone());
                    }
                }
                "restart" => tracker.restart(bot.initial_slots()),
                "bot" => {
                    if let Some(text) = event["text"].as_str() {
                        said.push(BotMessage::text(text));
                    }
                }
                other => tracing::debug!(action = name, event = other, "action event not applied"),
            }
        }
        for text in said.iter().filter_map(BotMessage::as_text) {
            tracker.bot(text);
        }
        match followup {
            Some(next) => Ran::Followup(said, next),
            None => Ran::Done(said),
        }
    }

    /// An activity-grounded answer: the LLM when configured, templates otherwise
    /// or when the LLM fails. In a live turn it is the drafted message, whole
    /// in the draft at the end, however it was made.
    async fn answer(&self, topic: Topic, turn: &TurnContext<'_>) -> String {
        let text = self.compose(topic, turn).await;
        if let Some(live) = turn.live {
            live.draft.send_replace(text.clone());
            turn.drafted.store(true, Ordering::Relaxed);
        }
        text
    }

    async fn compose(&self, topic: Topic, turn: &TurnContext<'_>) -> String {
        let greet = turn
            .first_name
            .as_deref()
            .filter(|_| turn.start.first_reply);
        let excerpts = self.excerpts(topic, turn);
        let recording = self.inner.sink.is_some();
        // For the LLM's prompt and the record; offline answers read the
        // activity itself, so an offline server that records nothing skips it.
        let activity = if recording || self.inner.llm.is_some() {
            turn.activity.to_text()
        } else {
            String::new()
        };
        if recording {
            let mut trace = turn.trace.lock();
            trace.activity = Some(activity.clone()).filter(|a| !a.is_empty());
            trace.generated = Some(match excerpts.as_deref() {
                Some([_, ..]) => Responder::Knowledge,
                _ => Responder::Offline,
            });
            // Offline, the best section is the answer; an LLM gets them all.
            trace.sources = excerpts
                .iter()
                .flatten()
                .take(if self.inner.llm.is_some() {
                    usize::MAX
                } else {
                    1
                })
                .map(|e| record::Source {
                    title: e.title.clone(),
                    url: e.url.clone(),
                })
                .collect();
        }
        let offline = |greet: Option<&str>| match excerpts.as_deref() {
            Some([best, ..]) => OfflineResponder.from_docs(best, turn.activity.latest(), greet),
            Some([]) => match greet {
                Some(name) => format!("Hi {name}! {}", super::offline::NOT_IN_DOCS),
                None => super::offline::NOT_IN_DOCS.to_owned(),
            },
            None => OfflineResponder.reply(topic, &turn.activity, greet),
        };
        let Some(llm) = &self.inner.llm else {
            return offline(greet);
        };
        if !self.inner.limits.allow_llm(&turn.who).await {
            self.inner.metrics.limited(Limit::Llm);
            return format!("{LLM_LIMIT_NOTE} {}", offline(greet));
        }
        let request = Completion {
            system: prompt::system_prompt(
                &llm.system_prompt,
                turn.first_name.as_deref(),
                turn.start.first_reply,
            ),
            user: prompt::user_block(
                &activity,
                excerpts.as_deref().unwrap_or_default(),
                &turn.start.history,
                &turn.message.text,
            ),
            temperature: llm.temperature,
            max_tokens: llm.max_tokens,
        };
        if recording {
            turn.trace.lock().prompt = Some(record::Prompt {
                system: request.system.clone(),
                user: request.user.clone(),
            });
        }
        let started = std::time::Instant::now();
        let answer = match turn.live {
            None => llm.client.complete(request).await,
            Some(live) => {
                tokio::select! {
                    answer = llm.client.stream(request, &live.draft) => answer,
                    () = live.cancel.cancelled() => {
                        // Nobody is reading; what was shown is what is kept.
                        turn.trace.lock().generated = Some(Responder::Llm);
                        return live.draft.borrow().clone();
                    }
                }
            }
        };
        if recording {
            let mut trace = turn.trace.lock();
            trace.llm_ms = Some(u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX));
            match &answer {
                Ok(_) => trace.generated = Some(Responder::Llm),
                Err(_) => {
                    trace.llm_failed = true;
                    trace.sources.truncate(1);
                }
            }
        }
        match answer {
            // The pages it was given are cited, so the user can check them.
            Ok(text) => match excerpts.as_deref() {
                Some(given @ [_, ..]) => format!("{text}\n\n{}", super::offline::sources(given)),
                _ => text,
            },
            Err(error) => {
                tracing::warn!(%error, "LLM failed; answering from templates");
                format!("{LLM_APOLOGY} {}", offline(None))
            }
        }
    }
}
