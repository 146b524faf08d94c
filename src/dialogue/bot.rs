//! The dialogue side of a loaded project, resolved once at start-up: the
//! policy (rules and stories with typed actions), responses, slots, forms,
//! the action server and the domain as the action server is sent it. Start-up
//! logs each problem once, by name (an unknown action, a custom action with no
//! action server).

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Map, Value as Json, json};

use super::action_server::ActionServer;
use super::policy::{Actions, DEFAULT_MAX_HISTORY, Policy};
use super::responses::{BotMessage, Fill, render};
use super::tracker::Tracker;
use crate::nlu::domain::{FormDef, SlotDef, SlotKind};
use crate::nlu::{Project, ResponseVariant};

/// How the project's dialogue is run; from `[nlu]`.
#[derive(Debug, Clone, Default)]
pub struct DialogueOptions {
    /// Overrides the project's config.yml.
    pub max_history: Option<usize>,
    /// Overrides the project's endpoints.yml.
    pub action_endpoint: Option<String>,
    pub action_timeout: Duration,
}

pub struct Bot {
    pub policy: Policy,
    pub actions: Actions,
    pub responses: HashMap<String, Vec<ResponseVariant>>,
    pub slots: Vec<SlotDef>,
    pub forms: Vec<FormDef>,
    pub action_server: Option<ActionServer>,
    pub domain_json: Json,
    /// Everything start-up found wrong, already logged once.
    pub warnings: Vec<String>,
}

impl Bot {
    pub fn load(project: &Project, options: &DialogueOptions) -> Self {
        let actions = Actions::new(project);
        let max_history = options
            .max_history
            .or(project.config.max_history)
            .unwrap_or(DEFAULT_MAX_HISTORY);
        let (policy, mut warnings) = Policy::new(project, &actions, max_history);
        let endpoint = options
            .action_endpoint
            .clone()
            .filter(|u| !u.is_empty())
            .or_else(|| project.action_endpoint.clone())
            .filter(|u| !u.is_empty());
        let action_server = endpoint.map(|url| ActionServer::new(url, options.action_timeout));
        if action_server.is_none() {
            for action in actions.custom() {
                warnings.push(format!(
                    "custom action `{action}` needs an action server (endpoints.yml \
                     action_endpoint or [nlu] action_endpoint); it will answer with an apology"
                ));
            }
        }
        for form in &project.domain.forms {
            for slot in &form.required_slots {
                if !project.domain.slots.iter().any(|s| s.name == *slot) {
                    warnings.push(format!(
                        "form `{}`: slot `{slot}` is not in the domain",
                        form.name
                    ));
                }
                let specific = format!("utter_ask_{}_{slot}", form.name);
                let general = format!("utter_ask_{slot}");
                if !project.domain.responses.contains_key(&specific)
                    && !project.domain.responses.contains_key(&general)
                {
                    warnings.push(format!(
                        "form `{}`: no `{general}` response to ask for `{slot}`",
                        form.name
                    ));
                }
            }
        }
        for slot in &project.domain.slots {
            if slot.mappings.iter().any(|m| {
                matches!(
                    m.source,
                    crate::nlu::domain::MappingSource::FromTriggerIntent { .. }
                )
            }) {
                warnings.push(format!(
                    "slot `{}`: `from_trigger_intent` mappings are not supported; they fill nothing",
                    slot.name
                ));
            }
        }
        for warning in &warnings {
            tracing::warn!("{warning}");
        }
        Self {
            policy,
            domain_json: domain_json(project),
            actions,
            responses: project.domain.responses.clone(),
            slots: project.domain.slots.clone(),
            forms: project.domain.forms.clone(),
            action_server,
            warnings,
        }
    }

    pub fn initial_slots(&self) -> Vec<(String, Json)> {
        self.slots
            .iter()
            .map(|s| (s.name.clone(), s.initial_value.clone()))
            .collect()
    }

    pub fn has_response(&self, name: &str) -> bool {
        self.responses.contains_key(name)
    }

    /// A domain response for this tracker (its slots) and user.
    pub fn render(
        &self,
        name: &str,
        tracker: Option<&Tracker>,
        first_name: Option<&str>,
    ) -> Vec<BotMessage> {
        match self.responses.get(name) {
            Some(variants) => render(
                variants,
                Fill {
                    first_name,
                    slots: tracker.map(Tracker::slots),
                },
            ),
            None => Vec::new(),
        }
    }
}

/// The domain as Rasa sends it to the action server (what rasa-sdk reads).
fn domain_json(project: &Project) -> Json {
    let domain = &project.domain;
    let slots: Map<String, Json> = domain
        .slots
        .iter()
        .map(|s| {
            let kind = match &s.kind {
                SlotKind::Text => "text",
                SlotKind::Bool => "bool",
                SlotKind::Float => "float",
                SlotKind::List => "list",
                SlotKind::Any => "any",
                SlotKind::Categorical(_) => "categorical",
            };
            (
                s.name.clone(),
                json!({"type": kind, "initial_value": s.initial_value, "mappings": []}),
            )
        })
        .collect();
    let responses: Map<String, Json> = domain
        .responses
        .iter()
        .map(|(name, variants)| {
            let variants: Vec<Json> = variants.iter().map(|v| json!({"text": v.text})).collect();
            (name.clone(), Json::Array(variants))
        })
        .collect();
    let forms: Map<String, Json> = domain
        .forms
        .iter()
        .map(|f| (f.name.clone(), json!({"required_slots": f.required_slots})))
        .collect();
    json!({
        "version": "3.1",
        "intents": project.intents,
        "entities": domain.entities,
        "slots": slots,
        "responses": responses,
        "actions": domain.actions,
        "forms": forms,
        "config": {"store_entities_as_slots": true},
        "session_config": {"session_expiration_time": 60, "carry_over_slots_to_new_session": true},
    })
}
