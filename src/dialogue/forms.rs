//! Forms as Rasa runs them: activated by a rule, they ask for each required
//! slot in turn (`utter_ask_<form>_<slot>` or `utter_ask_<slot>`), setting
//! `requested_slot`; each answer must fill the slot asked for, or the form
//! rejects the message and the rules answer it instead; once every slot is
//! filled the loop ends and the rules take over (typically a submit action).

use super::tracker::{REQUESTED_SLOT, Tracker};
use crate::nlu::domain::FormDef;

/// What one run of a form did.
#[derive(Debug, Clone, PartialEq)]
pub enum FormStep {
    /// Ask for a slot with this response.
    Ask { slot: String, response: String },
    /// Every required slot is filled: the loop ended.
    Done,
    /// The message did not fill the requested slot.
    Rejected,
}

/// Runs `form` on the tracker, recording the loop and slot events.
pub fn run(form: &FormDef, tracker: &mut Tracker, has_response: impl Fn(&str) -> bool) -> FormStep {
    let active = tracker.active_loop() == Some(form.name.as_str());
    if active
        && let Some(requested) = tracker.requested_slot().map(str::to_owned)
        && !tracker.was_set_this_turn(&requested)
    {
        return FormStep::Rejected;
    }
    if !active {
        tracker.set_active_loop(Some(&form.name));
    }
    let missing = form
        .required_slots
        .iter()
        .find(|slot| tracker.slot(slot).is_none_or(serde_json::Value::is_null));
    match missing {
        Some(slot) => {
            tracker.set_slot(REQUESTED_SLOT, serde_json::Value::String(slot.clone()));
            let specific = format!("utter_ask_{}_{slot}", form.name);
            let response = if has_response(&specific) {
                specific
            } else {
                format!("utter_ask_{slot}")
            };
            FormStep::Ask {
                slot: slot.clone(),
                response,
            }
        }
        None => {
            tracker.set_active_loop(None);
            tracker.set_slot(REQUESTED_SLOT, serde_json::Value::Null);
            FormStep::Done
        }
    }
}
