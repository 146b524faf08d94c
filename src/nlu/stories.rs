//! Rules and stories as Rasa writes them: steps of user intents, bot actions,
//! active loops and slots set. Parsed as written; the dialogue resolves the
//! names when the project loads. Unsupported step kinds (`or`, `checkpoint`,
//! end-to-end `user:` text) skip their rule or story with a warning.

use serde_json::Value as Json;
use serde_yaml_ng::{Mapping, Value};

use super::yaml::{Sink, bool_at, json, keys, scalar, seq, str_at};

#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// The user said this intent, with these entities (a value when given).
    Intent {
        name: String,
        entities: Vec<(String, Option<Json>)>,
    },
    /// The bot ran this action (a response, a form, a custom action).
    Action(String),
    /// A loop became active (`Some`) or ended (`None`).
    ActiveLoop(Option<String>),
    /// Slots were set: to a value, or (`None`) to anything.
    SlotWasSet(Vec<(String, Option<Json>)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct RuleDef {
    pub name: String,
    /// Only at the very start of a conversation.
    pub conversation_start: bool,
    /// `ActiveLoop` and `SlotWasSet` steps that must hold when the rule applies.
    pub condition: Vec<Step>,
    pub steps: Vec<Step>,
    /// `false`: after the last step, other rules and stories may continue.
    pub wait_for_user_input: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StoryDef {
    pub name: String,
    pub steps: Vec<Step>,
}

pub fn rules(value: Value, sink: &mut Sink<'_>) -> Vec<RuleDef> {
    let mut out = Vec::new();
    for rule in seq(value) {
        let Value::Mapping(rule) = rule else { continue };
        let name = str_at(&rule, "rule").unwrap_or_else(|| "unnamed rule".to_owned());
        if let Some(other) = keys(&rule).into_iter().find(|k| {
            !matches!(
                *k,
                "rule"
                    | "steps"
                    | "conversation_start"
                    | "wait_for_user_input"
                    | "condition"
                    | "metadata"
            )
        }) {
            sink.warn(format!(
                "rule `{name}`: `{other}` is not supported; rule skipped"
            ));
            continue;
        }
        let Some(steps) = steps_of(&rule, &format!("rule `{name}`"), sink) else {
            continue;
        };
        let condition = match rule.get("condition") {
            Some(value) => {
                match steps_from(value.clone(), &format!("rule `{name}` condition"), sink) {
                    Some(c) => c,
                    None => continue,
                }
            }
            None => Vec::new(),
        };
        if condition
            .iter()
            .any(|s| matches!(s, Step::Intent { .. } | Step::Action(_)))
        {
            sink.warn(format!(
                "rule `{name}`: a condition may only name slots and active loops; rule skipped"
            ));
            continue;
        }
        if !steps
            .iter()
            .any(|s| matches!(s, Step::Action(_) | Step::ActiveLoop(_)))
        {
            sink.warn(format!("rule `{name}` has no action; rule skipped"));
            continue;
        }
        out.push(RuleDef {
            name,
            conversation_start: bool_at(&rule, "conversation_start").unwrap_or(false),
            condition,
            steps,
            wait_for_user_input: bool_at(&rule, "wait_for_user_input").unwrap_or(true),
        });
    }
    out
}

pub fn stories(value: Value, sink: &mut Sink<'_>) -> Vec<StoryDef> {
    let mut out = Vec::new();
    for story in seq(value) {
        let Value::Mapping(story) = story else {
            continue;
        };
        let name = str_at(&story, "story").unwrap_or_else(|| "unnamed story".to_owned());
        if let Some(steps) = steps_of(&story, &format!("story `{name}`"), sink) {
            out.push(StoryDef { name, steps });
        }
    }
    out
}

fn steps_of(map: &Mapping, what: &str, sink: &mut Sink<'_>) -> Option<Vec<Step>> {
    steps_from(map.get("steps").cloned().unwrap_or(Value::Null), what, sink)
}

/// The steps, or `None` (warned) when one is of a kind we do not support.
fn steps_from(value: Value, what: &str, sink: &mut Sink<'_>) -> Option<Vec<Step>> {
    let mut steps = Vec::new();
    for step in seq(value) {
        let Some(step) = step.as_mapping() else {
            sink.warn(format!("{what}: a step is not a mapping; skipped"));
            return None;
        };
        if let Some(intent) = str_at(step, "intent") {
            let entities = step
                .get("entities")
                .cloned()
                .map(seq)
                .unwrap_or_default()
                .iter()
                .filter_map(|e| match e {
                    Value::Mapping(m) if m.len() == 1 => {
                        let (k, v) = m.iter().next()?;
                        Some((scalar(k)?, Some(json(v))))
                    }
                    other => scalar(other).map(|name| (name, None)),
                })
                .collect();
            steps.push(Step::Intent {
                name: intent,
                entities,
            });
        } else if let Some(action) = str_at(step, "action") {
            steps.push(Step::Action(action));
        } else if let Some(active) = step.get("active_loop") {
            steps.push(Step::ActiveLoop(active.as_str().map(str::to_owned)));
        } else if let Some(slots) = step.get("slot_was_set") {
            let slots = seq(slots.clone())
                .iter()
                .filter_map(|s| match s {
                    Value::Mapping(m) if m.len() == 1 => {
                        let (k, v) = m.iter().next()?;
                        Some((scalar(k)?, Some(json(v))))
                    }
                    other => scalar(other).map(|name| (name, None)),
                })
                .collect();
            steps.push(Step::SlotWasSet(slots));
        } else {
            let kinds = keys(step).join(", ");
            sink.warn(format!(
                "{what}: `{kinds}` steps are not supported; {} skipped",
                what.split(' ').next().unwrap_or("it")
            ));
            return None;
        }
    }
    Some(steps)
}
