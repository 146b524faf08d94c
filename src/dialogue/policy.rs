//! What the bot does next, as Rasa's RulePolicy and MemoizationPolicy decide:
//! rules (with prior actions, `conversation_start`, conditions on slots and
//! active loops, `wait_for_user_input`) first, then stories remembered as
//! sequences of the last `max_history` steps. Every action name is resolved
//! into an [`ActionId`] when the project loads; a rule or story naming an
//! action the project does not have is skipped with one warning at start-up.

use std::collections::HashMap;

use serde_json::Value as Json;

use super::tracker::{Item, Tracker};
use crate::nlu::Project;
use crate::nlu::stories::Step;

pub const ACTION_LISTEN: &str = "action_listen";
pub const ACTION_RECENT_ACTIVITY: &str = "action_recent_activity";
pub const ACTION_HELP_CURRENT_PAGE: &str = "action_help_current_page";
pub const ACTION_ASK_LLM: &str = "action_ask_llm";
pub const ACTION_DEFAULT_FALLBACK: &str = "action_default_fallback";
pub const ACTION_RESTART: &str = "action_restart";
pub const ACTION_DEACTIVATE_LOOP: &str = "action_deactivate_loop";

/// MemoizationPolicy's default lookback.
pub const DEFAULT_MAX_HISTORY: usize = 5;

/// Most actions one user message may trigger (a guard against rule loops).
pub const MAX_ACTIONS_PER_TURN: usize = 10;

/// An action, resolved.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ActionId {
    Listen,
    /// A domain response (`utter_*`).
    Utter(String),
    /// Built in: a recap of what the user just did.
    RecentActivity,
    /// Built in: help with the page the user is on.
    HelpCurrentPage,
    /// Built in: the LLM with the activity (offline: the grounded template).
    AskLlm,
    DefaultFallback,
    Restart,
    DeactivateLoop,
    /// A form from the domain, by name.
    Form(String),
    /// Run by the action server.
    Custom(String),
}

impl ActionId {
    pub fn name(&self) -> &str {
        match self {
            ActionId::Listen => ACTION_LISTEN,
            ActionId::Utter(name) | ActionId::Form(name) | ActionId::Custom(name) => name,
            ActionId::RecentActivity => ACTION_RECENT_ACTIVITY,
            ActionId::HelpCurrentPage => ACTION_HELP_CURRENT_PAGE,
            ActionId::AskLlm => ACTION_ASK_LLM,
            ActionId::DefaultFallback => ACTION_DEFAULT_FALLBACK,
            ActionId::Restart => ACTION_RESTART,
            ActionId::DeactivateLoop => ACTION_DEACTIVATE_LOOP,
        }
    }
}

/// Resolves action names against a project's domain.
pub struct Actions {
    responses: Vec<String>,
    forms: Vec<String>,
    custom: Vec<String>,
}

impl Actions {
    pub fn new(project: &Project) -> Self {
        let forms: Vec<String> = project
            .domain
            .forms
            .iter()
            .map(|f| f.name.clone())
            .collect();
        let custom = project
            .domain
            .actions
            .iter()
            .filter(|a| {
                builtin(a).is_none()
                    && !forms.contains(a)
                    && !project.domain.responses.contains_key(*a)
            })
            .cloned()
            .collect();
        Self {
            responses: project.domain.responses.keys().cloned().collect(),
            forms,
            custom,
        }
    }

    pub fn resolve(&self, name: &str) -> Option<ActionId> {
        if let Some(action) = builtin(name) {
            return Some(action);
        }
        if self.forms.iter().any(|f| f == name) {
            return Some(ActionId::Form(name.to_owned()));
        }
        if self.responses.iter().any(|r| r == name) {
            return Some(ActionId::Utter(name.to_owned()));
        }
        if self.custom.iter().any(|c| c == name) {
            return Some(ActionId::Custom(name.to_owned()));
        }
        None
    }

    /// Actions the action server must run.
    pub fn custom(&self) -> &[String] {
        &self.custom
    }
}

fn builtin(name: &str) -> Option<ActionId> {
    Some(match name {
        ACTION_LISTEN => ActionId::Listen,
        ACTION_RECENT_ACTIVITY => ActionId::RecentActivity,
        ACTION_HELP_CURRENT_PAGE => ActionId::HelpCurrentPage,
        ACTION_ASK_LLM => ActionId::AskLlm,
        ACTION_DEFAULT_FALLBACK => ActionId::DefaultFallback,
        ACTION_RESTART => ActionId::Restart,
        ACTION_DEACTIVATE_LOOP => ActionId::DeactivateLoop,
        _ => return None,
    })
}

/// A state that must hold when a rule or story applies.
#[derive(Debug, Clone, PartialEq)]
enum Condition {
    ActiveLoop(Option<String>),
    /// The slot holds this value (`None`: any value).
    Slot(String, Option<Json>),
}

impl Condition {
    fn holds(&self, tracker: &Tracker) -> bool {
        match self {
            Condition::ActiveLoop(name) => tracker.active_loop() == name.as_deref(),
            Condition::Slot(name, None) => tracker.slot(name).is_some_and(|v| !v.is_null()),
            Condition::Slot(name, Some(value)) => {
                tracker.slot(name).unwrap_or(&Json::Null) == value
            }
        }
    }
}

/// One prediction a rule makes: after `prefix` (the tail of the history),
/// with `conditions` holding, do `action`.
#[derive(Debug, Clone)]
struct RulePoint {
    rule: usize,
    prefix: Vec<Item>,
    /// Required entities of the prefix's user steps: (index in prefix, entity, value).
    entities: Vec<(usize, String, Option<Json>)>,
    conditions: Vec<Condition>,
    conversation_start: bool,
    action: ActionId,
}

impl RulePoint {
    fn matches(&self, history: &[Item], tracker: &Tracker) -> bool {
        let n = self.prefix.len();
        if history.len() < n || (self.conversation_start && history.len() != n) {
            return false;
        }
        if history[history.len() - n..] != self.prefix[..] {
            return false;
        }
        // Entities are checked on the latest message only: older ones are gone.
        for (index, entity, value) in &self.entities {
            if *index + 1 != n {
                continue;
            }
            let found = tracker
                .latest_entities()
                .iter()
                .any(|e| e.entity == *entity && value.as_ref().is_none_or(|v| *v == e.value));
            if !found {
                return false;
            }
        }
        self.conditions.iter().all(|c| c.holds(tracker))
    }

    fn specificity(&self) -> usize {
        self.prefix.len() * 2 + self.conditions.len() + self.entities.len()
    }
}

pub struct Policy {
    rules: Vec<RulePoint>,
    rule_names: Vec<String>,
    /// (from the conversation's start?, story tail) → next action; `None`
    /// where stories disagree.
    memory: HashMap<(bool, Vec<Item>), Option<ActionId>>,
    max_history: usize,
    /// AugmentedMemoizationPolicy: also try ever shorter tails.
    augmented: bool,
    /// Actions some story has; turns of only other actions (rule-only turns,
    /// e.g. a bot challenge mid-story) are invisible to stories, as in Rasa.
    story_actions: std::collections::HashSet<String>,
    /// What runs when nothing predicts an action after a user message.
    core_fallback: ActionId,
}

/// Why an action was chosen, for logs (and, later, the console).
#[derive(Debug, Clone, PartialEq)]
pub enum Reason {
    Rule(String),
    Story,
    ActiveLoop,
    /// The previous action named this one.
    Followup,
    /// Nothing predicted after a user message.
    CoreFallback,
    /// Nothing predicted after a bot action: wait for the user.
    Done,
}

impl Policy {
    /// Resolves the project's rules and stories; returns what was skipped.
    pub fn new(project: &Project, actions: &Actions, max_history: usize) -> (Self, Vec<String>) {
        let mut warnings = Vec::new();
        let mut rules = Vec::new();
        let mut rule_names = Vec::new();
        let known_intent = |name: &str| project.intents.iter().any(|i| i == name);
        'rules: for def in &project.rules {
            let mut conditions: Vec<Condition> = Vec::new();
            for step in &def.condition {
                add_conditions(&mut conditions, step);
            }
            let mut prefix: Vec<Item> = Vec::new();
            let mut entities = Vec::new();
            let mut points = Vec::new();
            for step in &def.steps {
                match step {
                    Step::Intent {
                        name,
                        entities: wanted,
                    } => {
                        if !known_intent(name) {
                            warnings.push(format!(
                                "rule `{}`: unknown intent `{name}`; rule skipped",
                                def.name
                            ));
                            continue 'rules;
                        }
                        prefix.push(Item::User(name.clone()));
                        for (entity, value) in wanted {
                            entities.push((prefix.len() - 1, entity.clone(), value.clone()));
                        }
                    }
                    Step::Action(name) => {
                        let Some(action) = actions.resolve(name) else {
                            warnings.push(format!(
                                "rule `{}`: unknown action `{name}`; rule skipped",
                                def.name
                            ));
                            continue 'rules;
                        };
                        // As Rasa: a rule's leading action is context, not a prediction.
                        if !prefix.is_empty() || def.conversation_start {
                            points.push((
                                prefix.clone(),
                                entities.clone(),
                                conditions.clone(),
                                action,
                            ));
                        }
                        prefix.push(Item::Action(name.clone()));
                    }
                    step @ (Step::ActiveLoop(_) | Step::SlotWasSet(_)) => {
                        add_conditions(&mut conditions, step);
                    }
                }
            }
            let ends_with_action = matches!(prefix.last(), Some(Item::Action(_)));
            if def.wait_for_user_input && ends_with_action {
                points.push((
                    prefix.clone(),
                    entities.clone(),
                    conditions.clone(),
                    ActionId::Listen,
                ));
            }
            let index = rule_names.len();
            rule_names.push(def.name.clone());
            for (prefix, entities, conditions, action) in points {
                rules.push(RulePoint {
                    rule: index,
                    prefix,
                    entities,
                    conditions,
                    conversation_start: def.conversation_start,
                    action,
                });
            }
        }

        let max_history = max_history.max(1);
        let mut memory: HashMap<(bool, Vec<Item>), Option<ActionId>> = HashMap::new();
        let mut story_actions = std::collections::HashSet::new();
        'stories: for story in &project.stories {
            let mut items: Vec<Item> = Vec::new();
            let mut predictions: Vec<(Vec<Item>, ActionId)> = Vec::new();
            let mut ignored_state_steps = false;
            for step in &story.steps {
                match step {
                    Step::Intent { name, .. } => {
                        if matches!(items.last(), Some(Item::Action(_))) {
                            predictions.push((items.clone(), ActionId::Listen));
                        }
                        items.push(Item::User(name.clone()));
                    }
                    Step::Action(name) => {
                        let Some(action) = actions.resolve(name) else {
                            warnings.push(format!(
                                "story `{}`: unknown action `{name}`; story skipped",
                                story.name
                            ));
                            continue 'stories;
                        };
                        if !items.is_empty() {
                            predictions.push((items.clone(), action));
                        }
                        story_actions.insert(name.clone());
                        items.push(Item::Action(name.clone()));
                    }
                    Step::ActiveLoop(_) | Step::SlotWasSet(_) => {
                        if !ignored_state_steps {
                            ignored_state_steps = true;
                            warnings.push(format!(
                                "story `{}`: `slot_was_set` and `active_loop` steps are not \
                                 matched (stories match on intents and actions; use a rule \
                                 with a `condition` to branch on a slot)",
                                story.name
                            ));
                        }
                    }
                }
            }
            if matches!(items.last(), Some(Item::Action(_))) {
                predictions.push((items.clone(), ActionId::Listen));
            }
            for (prefix, action) in predictions {
                let key = memory_key(&prefix, max_history);
                match memory.get(&key) {
                    None => {
                        memory.insert(key, Some(action));
                    }
                    Some(Some(known)) if *known != action => {
                        // As Rasa's memoization: contradicting stories teach nothing.
                        memory.insert(key, None);
                    }
                    Some(_) => {}
                }
            }
        }
        let core_fallback = match &project.config.core_fallback_action {
            Some(name) => actions.resolve(name).unwrap_or_else(|| {
                warnings.push(format!(
                    "config.yml: core_fallback_action_name `{name}` is not an action; using action_default_fallback"
                ));
                ActionId::DefaultFallback
            }),
            None => ActionId::DefaultFallback,
        };
        (
            Self {
                rules,
                rule_names,
                memory,
                max_history,
                augmented: project.config.augmented_memoization,
                story_actions,
                core_fallback,
            },
            warnings,
        )
    }

    /// The next action. `form_rejected`: the active form could not use the
    /// latest message, so other rules and stories answer it.
    pub fn predict(&self, tracker: &Tracker, form_rejected: bool) -> (ActionId, Reason) {
        let history = tracker.items();
        let after_user = matches!(history.last(), Some(Item::User(_)));
        if let (Some(active), true, false) = (tracker.active_loop(), after_user, form_rejected) {
            // A rule conditioned on this loop handles the unhappy path;
            // otherwise the loop takes the message.
            let wanted = Condition::ActiveLoop(Some(active.to_owned()));
            let loop_rule = self.best_rule(history, tracker, |p| p.conditions.contains(&wanted));
            return match loop_rule {
                Some(point) => (
                    point.action.clone(),
                    Reason::Rule(self.rule_names[point.rule].clone()),
                ),
                None => (ActionId::Form(active.to_owned()), Reason::ActiveLoop),
            };
        }
        if let (Some(active), Some(Item::Action(last))) = (tracker.active_loop(), history.last())
            && last == active
        {
            // The form asked for a slot: wait for the answer.
            return (ActionId::Listen, Reason::ActiveLoop);
        }
        if let Some(point) = self.best_rule(history, tracker, |_| true) {
            return (
                point.action.clone(),
                Reason::Rule(self.rule_names[point.rule].clone()),
            );
        }
        if let Some(action) = self.remembered(history) {
            return (action, Reason::Story);
        }
        if after_user {
            (self.core_fallback.clone(), Reason::CoreFallback)
        } else {
            (ActionId::Listen, Reason::Done)
        }
    }

    /// MemoizationPolicy: the last `max_history` steps (rule-only turns
    /// left out) exactly as some story had them at this point.
    fn remembered(&self, history: &[Item]) -> Option<ActionId> {
        if self.memory.is_empty() {
            return None;
        }
        let mut seen: Vec<Item> = Vec::with_capacity(history.len());
        let mut turn_start = 0;
        for item in history {
            if matches!(item, Item::User(_)) {
                self.drop_rule_only_turn(&mut seen, turn_start);
                turn_start = seen.len();
            }
            seen.push(item.clone());
        }
        let key = memory_key(&seen, self.max_history);
        if let Some(found) = self.memory.get(&key) {
            return found.clone();
        }
        if self.augmented {
            for n in (1..key.1.len()).rev() {
                let tail = key.1[key.1.len() - n..].to_vec();
                if let Some(found) = self.memory.get(&(false, tail)) {
                    return found.clone();
                }
            }
        }
        None
    }

    fn drop_rule_only_turn(&self, seen: &mut Vec<Item>, turn_start: usize) {
        let turn = &seen[turn_start..];
        let is_user_turn = matches!(turn.first(), Some(Item::User(_)));
        let actions: Vec<&str> = turn
            .iter()
            .filter_map(|i| match i {
                Item::Action(a) => Some(a.as_str()),
                Item::User(_) => None,
            })
            .collect();
        if is_user_turn
            && !actions.is_empty()
            && actions.iter().all(|a| !self.story_actions.contains(*a))
        {
            seen.truncate(turn_start);
        }
    }

    fn best_rule(
        &self,
        history: &[Item],
        tracker: &Tracker,
        wanted: impl Fn(&RulePoint) -> bool,
    ) -> Option<&RulePoint> {
        let mut best: Option<&RulePoint> = None;
        for point in &self.rules {
            if wanted(point)
                && point.matches(history, tracker)
                && best.is_none_or(|b| point.specificity() > b.specificity())
            {
                best = Some(point);
            }
        }
        best
    }
}

/// A memory key: the last `max_history` steps, and whether they reach back to
/// the conversation's start (as Rasa pads short histories, a story's first
/// steps match only a conversation's first steps).
fn memory_key(items: &[Item], max_history: usize) -> (bool, Vec<Item>) {
    let from_start = items.len() < max_history;
    (
        from_start,
        items[items.len().saturating_sub(max_history)..].to_vec(),
    )
}

/// Adds a step's conditions. We only see the present state, so a later step
/// about the same loop or slot replaces an earlier one: the submit rule's
/// `condition: active_loop: form` then `active_loop: null` means "now null".
fn add_conditions(conditions: &mut Vec<Condition>, step: &Step) {
    match step {
        Step::ActiveLoop(name) => {
            conditions.retain(|c| !matches!(c, Condition::ActiveLoop(_)));
            conditions.push(Condition::ActiveLoop(name.clone()));
        }
        Step::SlotWasSet(slots) => {
            for (slot, value) in slots {
                conditions.retain(|c| !matches!(c, Condition::Slot(s, _) if s == slot));
                conditions.push(Condition::Slot(slot.clone(), value.clone()));
            }
        }
        Step::Intent { .. } | Step::Action(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nlu::{Classification, IntentScore};

    fn policy(rules: &str) -> Policy {
        let project = Project::from_sources([
            (
                "domain.yml",
                "intents: [greet, affirm, deny]\nresponses:\n  utter_hi: [{text: hi}]\n  utter_offer: [{text: offer}]\n  utter_yes: [{text: yes}]\n  utter_more: [{text: more}]\n",
            ),
            ("rules.yml", rules),
        ])
        .unwrap();
        let (policy, warnings) = Policy::new(&project, &Actions::new(&project), 5);
        assert!(
            warnings.iter().all(|w| w.contains("unknown")),
            "{warnings:?}"
        );
        policy
    }

    fn said(tracker: &mut Tracker, intent: &str) {
        let score = IntentScore {
            name: intent.into(),
            confidence: 1.0,
        };
        let c = Classification {
            intent: score.clone(),
            ranking: vec![score],
            entities: Vec::new(),
        };
        tracker.user_uttered(intent, &c);
    }

    /// Runs predictions until listen, recording each action.
    fn run(policy: &Policy, tracker: &mut Tracker) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            let (action, _) = policy.predict(tracker, false);
            if action == ActionId::Listen || out.len() > 5 {
                return out;
            }
            tracker.action(action.name());
            out.push(action.name().to_owned());
        }
    }

    #[test]
    fn context_rules_conversation_start_and_wait_for_user_input() {
        let p = policy(
            "rules:\n- rule: start\n  conversation_start: true\n  steps:\n  - intent: greet\n  - action: utter_hi\n  - action: utter_offer\n- rule: accept\n  steps:\n  - action: utter_offer\n  - intent: affirm\n  - action: utter_yes\n  wait_for_user_input: false\n- rule: then more\n  steps:\n  - action: utter_yes\n  - action: utter_more\n- rule: bad\n  steps:\n  - intent: deny\n  - action: utter_nothing\n",
        );
        let mut t = Tracker::default();
        said(&mut t, "greet");
        assert_eq!(run(&p, &mut t), ["utter_hi", "utter_offer"]);
        said(&mut t, "affirm");
        assert_eq!(
            run(&p, &mut t),
            ["utter_yes", "utter_more"],
            "no wait after the accept rule"
        );
        // The same words out of context: no rule; the core fallback answers.
        said(&mut t, "affirm");
        assert_eq!(p.predict(&t, false).0, ActionId::DefaultFallback);
        // conversation_start: a greet later on is not covered.
        said(&mut t, "greet");
        assert_eq!(p.predict(&t, false).1, Reason::CoreFallback);
    }
}
