//! The NLU inbox: messages that fell back or were ambiguous, grouped by
//! similar text (the same words, mostly), so one label covers a group.

use std::collections::BTreeSet;

use serde::Serialize;

use super::TurnRow;

/// Two messages sharing at least this share of their words are one group.
const SIMILAR: f64 = 0.5;

#[derive(Debug, Clone, Serialize)]
pub struct InboxTurn {
    pub id: String,
    pub text: String,
    pub intent: Option<String>,
    pub confidence: Option<f32>,
    pub at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Group {
    /// The newest message's text.
    pub text: String,
    pub count: usize,
    pub turns: Vec<InboxTurn>,
    #[serde(skip)]
    words: BTreeSet<String>,
}

fn words(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

fn jaccard(a: &BTreeSet<String>, b: &BTreeSet<String>) -> f64 {
    let union = a.union(b).count();
    if union == 0 {
        return 1.0;
    }
    a.intersection(b).count() as f64 / union as f64
}

/// Groups `turns` (newest first), biggest group first, then newest.
pub fn group(turns: Vec<TurnRow>) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    for turn in turns {
        let w = words(&turn.text);
        let item = InboxTurn {
            id: turn.id,
            confidence: turn.detail.confidence,
            intent: turn.intent,
            at: turn.at,
            text: turn.text,
        };
        match groups.iter_mut().find(|g| jaccard(&g.words, &w) >= SIMILAR) {
            Some(group) => {
                group.count += 1;
                group.turns.push(item);
            }
            None => groups.push(Group {
                text: item.text.clone(),
                count: 1,
                turns: vec![item],
                words: w,
            }),
        }
    }
    // Stable: equal counts keep newest-first order.
    groups.sort_by_key(|g| std::cmp::Reverse(g.count));
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialogue::record::TurnDetail;

    fn turn(id: &str, text: &str) -> TurnRow {
        TurnRow {
            id: id.to_owned(),
            conversation_id: "c".to_owned(),
            product: None,
            user: None,
            sender: "s".to_owned(),
            at: chrono::Utc::now(),
            kind: "turn".to_owned(),
            text: text.to_owned(),
            intent: Some("nlu_fallback".to_owned()),
            responder: "llm".to_owned(),
            llm_ms: None,
            feedback: None,
            label: None,
            detail: TurnDetail::default(),
        }
    }

    #[test]
    fn similar_messages_share_a_group() {
        let groups = group(vec![
            turn("1", "how do I change a project's priority?"),
            turn("2", "is there a dark mode"),
            turn("3", "How do I change the priority of a project"),
            turn("4", "change project priority how"),
        ]);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].count, 3);
        assert_eq!(groups[0].text, "how do I change a project's priority?");
        assert_eq!(groups[1].turns[0].id, "2");
    }
}
