//! The console's numbers per day: conversations, messages, fallback rate, LLM
//! share and latency, proactive offers shown / accepted / declined, resolved
//! conversations and thumbs. Counted here from the recorded rows, so SQLite
//! and Postgres give the same numbers.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Serialize;

use super::StatRow;
use crate::dialogue::Responder;

/// Said to turn an offer down (Rasa's usual intent name). What accepts one
/// is recorded with the offer: "yes" and its buttons' intents.
const DECLINE: &str = "deny";

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Day {
    pub date: String,
    pub conversations: u64,
    pub messages: u64,
    pub fallbacks: u64,
    pub llm: u64,
    pub llm_ms_avg: Option<f64>,
    pub offers_shown: u64,
    pub offers_accepted: u64,
    pub offers_declined: u64,
    pub resolved: u64,
    /// Conversations that went quiet after a fallback or with no answer.
    pub unresolved: u64,
    pub thumbs_up: u64,
    pub thumbs_down: u64,
    #[serde(skip)]
    llm_ms_sum: i64,
    #[serde(skip)]
    llm_timed: u64,
}

impl Day {
    /// Counts `other`'s numbers in too (not its average: see `average_latency`).
    fn add(&mut self, other: &Day) {
        self.conversations += other.conversations;
        self.messages += other.messages;
        self.fallbacks += other.fallbacks;
        self.llm += other.llm;
        self.offers_shown += other.offers_shown;
        self.offers_accepted += other.offers_accepted;
        self.offers_declined += other.offers_declined;
        self.resolved += other.resolved;
        self.unresolved += other.unresolved;
        self.thumbs_up += other.thumbs_up;
        self.thumbs_down += other.thumbs_down;
        self.llm_ms_sum += other.llm_ms_sum;
        self.llm_timed += other.llm_timed;
    }

    fn average_latency(&mut self) {
        self.llm_ms_avg =
            (self.llm_timed > 0).then(|| self.llm_ms_sum as f64 / self.llm_timed as f64);
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Totals {
    #[serde(flatten)]
    pub counts: Day,
    pub fallback_rate: Option<f64>,
    pub llm_share: Option<f64>,
    pub resolution_rate: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stats {
    pub resolved_after_minutes: u64,
    pub days: Vec<Day>,
    pub totals: Totals,
}

fn ratio(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// `rows` sorted by conversation, then time (as `TurnLog::stat_rows` gives
/// them); `days` days ending with `now`'s (UTC).
pub fn daily(rows: &[StatRow], days: u32, now: DateTime<Utc>, resolved_after: Duration) -> Stats {
    let today = now.date_naive();
    let first = today - Duration::days(i64::from(days.max(1)) - 1);
    let mut out: Vec<Day> = (0..days.max(1))
        .map(|i| Day {
            date: (first + Duration::days(i64::from(i))).to_string(),
            ..Day::default()
        })
        .collect();
    let slot = |at_ms: i64| -> Option<usize> {
        let date: NaiveDate = DateTime::from_timestamp_millis(at_ms)?.date_naive();
        usize::try_from((date - first).num_days()).ok()
    };
    let mut seen: Vec<(String, usize)> = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let Some(day) = slot(row.at_ms).filter(|d| *d < out.len()) else {
            continue;
        };
        let next = rows
            .get(i + 1)
            .filter(|n| n.conversation_id == row.conversation_id);
        let d = &mut out[day];
        if row.offer {
            d.offers_shown += 1;
            let accepting = row.intent.as_deref().unwrap_or("affirm");
            match next.filter(|n| !n.offer).and_then(|n| n.intent.as_deref()) {
                Some(DECLINE) => d.offers_declined += 1,
                Some(intent) if accepting.split(',').any(|a| a == intent) => {
                    d.offers_accepted += 1;
                }
                _ => {}
            }
            continue;
        }
        d.messages += 1;
        if !seen
            .iter()
            .any(|(c, s)| *c == row.conversation_id && *s == day)
        {
            seen.push((row.conversation_id.clone(), day));
            d.conversations += 1;
        }
        d.fallbacks += u64::from(row.fallback);
        if row.responder == Responder::Llm {
            d.llm += 1;
            if let Some(ms) = row.llm_ms {
                d.llm_ms_sum += ms;
                d.llm_timed += 1;
            }
        }
        match row.feedback.as_deref() {
            Some("up") => d.thumbs_up += 1,
            Some("down") => d.thumbs_down += 1,
            _ => {}
        }
        // The conversation went quiet after this answer (the next user
        // message came late, or none yet and long enough ago).
        let next_message = rows[i + 1..]
            .iter()
            .take_while(|n| n.conversation_id == row.conversation_id)
            .find(|n| !n.offer);
        let quiet_until = next_message.map_or(now.timestamp_millis(), |n| n.at_ms);
        if quiet_until - row.at_ms >= resolved_after.num_milliseconds() {
            let answered =
                !row.fallback && !matches!(row.responder, Responder::None | Responder::Fallback);
            if answered {
                d.resolved += 1;
            } else {
                d.unresolved += 1;
            }
        }
    }
    for d in &mut out {
        d.average_latency();
    }
    let mut totals = Day {
        date: format!("{first}..{today}"),
        ..Day::default()
    };
    for d in &out {
        totals.add(d);
    }
    totals.average_latency();
    Stats {
        resolved_after_minutes: u64::try_from(resolved_after.num_minutes()).unwrap_or(0),
        days: out,
        totals: Totals {
            fallback_rate: ratio(totals.fallbacks, totals.messages),
            llm_share: ratio(totals.llm, totals.messages),
            resolution_rate: ratio(totals.resolved, totals.resolved + totals.unresolved),
            counts: totals,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(conversation: &str, at_ms: i64, intent: &str, responder: Responder) -> StatRow {
        StatRow {
            conversation_id: conversation.to_owned(),
            at_ms,
            offer: responder == Responder::Proactive,
            intent: Some(if responder == Responder::Proactive {
                "affirm,ask_bulk_edit".to_owned()
            } else {
                intent.to_owned()
            }),
            responder,
            fallback: intent == "nlu_fallback",
            llm_ms: (responder == Responder::Llm).then_some(200),
            feedback: None,
        }
    }

    #[test]
    fn counts_offers_resolutions_and_rates_per_day() {
        let now = DateTime::parse_from_rfc3339("2026-12-06T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let t = |minutes_ago: i64| now.timestamp_millis() - minutes_ago * 60_000;
        let mut rows = vec![
            // a: an offer, accepted, answered; quiet since: resolved.
            row("a", t(60), "", Responder::Proactive),
            row("a", t(59), "ask_bulk_edit", Responder::Rule),
            // b: a fallback then nothing: unresolved; an offer declined.
            row("b", t(50), "nlu_fallback", Responder::Llm),
            row("b", t(40), "", Responder::Proactive),
            row("b", t(39), "deny", Responder::Rule),
            // c: just answered (2 minutes ago): neither yet.
            row("c", t(2), "greet", Responder::Rule),
            // yesterday
            row("d", t(24 * 60), "greet", Responder::Rule),
        ];
        rows.sort_by(|x, y| (&x.conversation_id, x.at_ms).cmp(&(&y.conversation_id, y.at_ms)));
        let stats = daily(&rows, 2, now, Duration::minutes(10));
        let today = &stats.days[1];
        assert_eq!(today.date, "2026-12-06");
        assert_eq!(
            (
                today.conversations,
                today.messages,
                today.fallbacks,
                today.llm
            ),
            (3, 4, 1, 1)
        );
        assert_eq!(
            (
                today.offers_shown,
                today.offers_accepted,
                today.offers_declined
            ),
            (2, 1, 1)
        );
        // b's fallback was followed by "deny" 11 minutes later: unresolved;
        // a's and b's last answers are resolved; c's is too recent.
        assert_eq!((today.resolved, today.unresolved), (2, 1));
        assert_eq!(today.llm_ms_avg, Some(200.0));
        assert_eq!(stats.days[0].messages, 1);
        assert_eq!(stats.totals.fallback_rate, Some(0.2));
        assert_eq!(stats.totals.resolution_rate, Some(0.75));
    }
}
