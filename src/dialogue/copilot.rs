//! The copilot: one chat turn from message to bot messages. Classify (NLU),
//! pick the rule's actions, run them: `utter_*` responses, or the activity
//! actions answered by the LLM when configured and by templates otherwise.
//! Callers (sockets, REST, `/reply`) hand it typed values; it knows no transport.

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::LlmSettings;
use crate::context::{ContextStore, UserActivity};
use crate::domain::{ProductId, UserId, Visitor};
use crate::limits::{Limits, Who};
use crate::llm::{Completion, LlmClient};
use crate::metrics::{IntentLabels, Limit, Metrics};
use crate::nlu::{Classification, Matcher};
use crate::rasa::{Project, ResponseVariant};

use super::conversation::{ConversationKey, Conversations, TurnStart};
use super::names::{display_name, first_name};
use super::offline::{OfflineResponder, Topic};
use super::prompt;
use super::responses::{BotMessage, render};

pub const ACTION_RECENT_ACTIVITY: &str = "action_recent_activity";
pub const ACTION_HELP_CURRENT_PAGE: &str = "action_help_current_page";
pub const ACTION_ASK_LLM: &str = "action_ask_llm";

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
}

/// `/reply`'s answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub text: String,
    /// The user's display name from their email (`Casey Jones`), if known.
    pub name: Option<String>,
    pub has_activity: bool,
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
    matcher: Matcher,
    responses: HashMap<String, Vec<ResponseVariant>>,
    /// intent → actions, from the rules.
    rules: HashMap<String, Vec<String>>,
    llm: Option<LlmSetup>,
    limits: Limits,
    metrics: Metrics,
}

/// Everything one action needs to know about the turn.
struct TurnContext<'a> {
    message: &'a UserMessage,
    who: Who,
    activity: UserActivity,
    first_name: Option<String>,
    start: TurnStart,
}

impl Copilot {
    pub fn new(
        store: ContextStore,
        conversations: Conversations,
        project: &Project,
        matcher: Matcher,
        llm: Option<LlmSetup>,
        limits: Limits,
        metrics: Metrics,
    ) -> Self {
        let mut rules = HashMap::new();
        for rule in &project.rules {
            // First rule for an intent wins, as rules are read in file order.
            rules
                .entry(rule.intent.clone())
                .or_insert_with(|| rule.actions.clone());
        }
        Self {
            inner: Arc::new(Inner {
                store,
                conversations,
                matcher,
                responses: project.responses.clone(),
                rules,
                llm,
                limits,
                metrics,
            }),
        }
    }

    pub fn classify(&self, text: &str) -> Classification {
        self.inner.matcher.classify(text)
    }

    pub fn conversations(&self) -> &Conversations {
        &self.inner.conversations
    }

    /// One chat turn. Past the per-user message limit the answer is a polite
    /// "slow down", and nothing else happens (no LLM call, no memory).
    pub async fn handle(&self, message: &UserMessage) -> TurnResult {
        let inner = &self.inner;
        let classification = inner.matcher.classify(&message.text);
        let who = Who::of(&message.visitor, &message.sender);
        if !inner.limits.allow_message(&who) {
            inner.metrics.limited(Limit::Messages);
            return TurnResult {
                classification,
                messages: vec![BotMessage::text(SLOW_DOWN.to_owned())],
                name: None,
                has_activity: false,
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
        let start = inner.conversations.begin_turn(&conversation, &message.text);
        let has_activity = activity.has_activity();
        let turn = TurnContext {
            message,
            who,
            activity,
            first_name: name.as_deref().map(first_name).map(str::to_owned),
            start,
        };

        let intent = classification.intent.name.as_str();
        inner
            .metrics
            .chat_turns
            .get_or_create(&IntentLabels {
                intent: intent.to_owned(),
            })
            .inc();
        let actions: Vec<String> = match inner.rules.get(intent) {
            Some(actions) => actions.clone(),
            None => {
                tracing::debug!(intent, "no rule for intent; asking the LLM");
                vec![ACTION_ASK_LLM.to_owned()]
            }
        };
        let mut messages = Vec::new();
        for action in &actions {
            messages.extend(self.run_action(action, &turn).await);
        }
        for text in messages.iter().filter_map(BotMessage::as_text) {
            inner.conversations.record_bot(&conversation, text);
        }
        tracing::debug!(
            intent,
            confidence = classification.intent.confidence,
            replies = messages.len(),
            "chat turn"
        );
        TurnResult {
            classification,
            messages,
            name,
            has_activity,
        }
    }

    /// `/reply/{user}`: the same pipeline, texts joined. The caller proved it
    /// is the product's backend, so the user is known.
    pub async fn reply(&self, product: &ProductId, user: &UserId, query: &str) -> Reply {
        let result = self
            .handle(&UserMessage {
                sender: format!("reply:{user}"),
                visitor: Visitor::known(product.clone(), user.clone()),
                text: query.to_owned(),
            })
            .await;
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

    async fn run_action(&self, action: &str, turn: &TurnContext<'_>) -> Vec<BotMessage> {
        let topic = match action {
            ACTION_RECENT_ACTIVITY => Topic::Recap,
            ACTION_HELP_CURRENT_PAGE => Topic::CurrentPage,
            ACTION_ASK_LLM => Topic::Other,
            utter => {
                return match self.inner.responses.get(utter) {
                    Some(variants) => render(variants, turn.first_name.as_deref()),
                    None => {
                        tracing::warn!(action = utter, "rule names an unknown action or response");
                        Vec::new()
                    }
                };
            }
        };
        vec![BotMessage::text(self.answer(topic, turn).await)]
    }

    /// An activity-grounded answer: the LLM when configured, templates otherwise
    /// or when the LLM fails.
    async fn answer(&self, topic: Topic, turn: &TurnContext<'_>) -> String {
        let greet = turn
            .first_name
            .as_deref()
            .filter(|_| turn.start.first_reply);
        let offline = || OfflineResponder.reply(topic, &turn.activity, greet);
        let Some(llm) = &self.inner.llm else {
            return offline();
        };
        if !self.inner.limits.allow_llm(&turn.who) {
            self.inner.metrics.limited(Limit::Llm);
            return format!("{LLM_LIMIT_NOTE} {}", offline());
        }
        let request = Completion {
            system: prompt::system_prompt(
                &llm.system_prompt,
                turn.first_name.as_deref(),
                turn.start.first_reply,
            ),
            user: prompt::user_block(
                &turn.activity.to_text(),
                &turn.start.history,
                &turn.message.text,
            ),
            temperature: llm.temperature,
            max_tokens: llm.max_tokens,
        };
        match llm.client.complete(request).await {
            Ok(text) => text,
            Err(error) => {
                tracing::warn!(%error, "LLM failed; answering from templates");
                format!(
                    "{LLM_APOLOGY} {}",
                    OfflineResponder.reply(topic, &turn.activity, None)
                )
            }
        }
    }
}
