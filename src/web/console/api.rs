//! The console's read endpoints (live sessions, conversations, export, inbox,
//! numbers) and its one write: labelling inbox messages, which retrains the
//! classifier at once.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use futures_util::Stream;
use serde::{Deserialize, Serialize};

use super::session::ConsoleLogin;
use crate::console::inbox::{self, Group};
use crate::console::live::{self, Live};
use crate::console::{Filter, Scope, TurnRow, stats};
use crate::dialogue::Responder;
use crate::domain::ProductId;
use crate::nlu::FALLBACK;
use crate::state::AppState;
use crate::web::AppError;

/// How often the live view looks for changes.
const LIVE_EVERY: Duration = Duration::from_secs(1);
/// What the inbox label for "not something the bot should answer" means.
const OUT_OF_SCOPE: &str = "out_of_scope";

fn store_error(error: sqlx::Error) -> AppError {
    AppError::ConsoleStore(error.to_string())
}

#[derive(Deserialize)]
pub struct ProductParam {
    product: Option<String>,
}

/// The one product the live view shows: the login's, or the one asked for
/// (the admin may omit it when there is only one).
fn live_product(
    state: &AppState,
    login: &ConsoleLogin,
    params: Result<Query<ProductParam>, QueryRejection>,
) -> Result<ProductId, AppError> {
    let Query(params) = params.map_err(AppError::from_query)?;
    match login.scope(params.product.as_deref())? {
        Scope::Product(product) => Ok(product),
        Scope::All => {
            state.products.sole().map(|p| p.id.clone()).ok_or_else(|| {
                AppError::BadQuery("query parameter `product` is required".to_owned())
            })
        }
    }
}

fn snapshot(state: &AppState, product: &ProductId) -> Live {
    live::snapshot(
        &state.store,
        &state.proactive,
        product,
        state.settings.console.live_seconds,
    )
}

pub async fn live(
    State(state): State<AppState>,
    login: ConsoleLogin,
    params: Result<Query<ProductParam>, QueryRejection>,
) -> Result<Json<Live>, AppError> {
    let product = live_product(&state, &login, params)?;
    Ok(Json(snapshot(&state, &product)))
}

/// `event: live` with the whole view, at once and on every change.
pub async fn live_events(
    State(state): State<AppState>,
    login: ConsoleLogin,
    params: Result<Query<ProductParam>, QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, AppError> {
    let product = live_product(&state, &login, params)?;
    let stream = futures_util::stream::unfold(
        (state, product, None::<Live>),
        |(state, product, last)| async move {
            loop {
                if last.is_some() {
                    tokio::select! {
                        () = tokio::time::sleep(LIVE_EVERY) => {}
                        () = state.shutdown.cancelled() => return None,
                    }
                }
                let now = snapshot(&state, &product);
                if last.as_ref().is_none_or(|l| !l.same_as(&now)) {
                    let data = serde_json::to_string(&now).unwrap_or_default();
                    let event = Event::default().event("live").data(data);
                    return Some((Ok(event), (state, product, Some(now))));
                }
            }
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

#[derive(Deserialize)]
pub struct SearchParams {
    product: Option<String>,
    user: Option<String>,
    q: Option<String>,
    intent: Option<String>,
    responder: Option<String>,
    /// `YYYY-MM-DD` (UTC), inclusive.
    from: Option<String>,
    /// `YYYY-MM-DD` (UTC), inclusive.
    to: Option<String>,
    limit: Option<usize>,
}

fn day_start_ms(raw: &str, field: &str) -> Result<i64, AppError> {
    NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_millis())
        .ok_or_else(|| AppError::BadQuery(format!("`{field}` must be a date like 2026-12-06")))
}

fn given(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

fn filter_of(params: &SearchParams, default_limit: usize, max: usize) -> Result<Filter, AppError> {
    let responder = match given(&params.responder) {
        None => None,
        Some(raw) => Some(Responder::parse(&raw).ok_or_else(|| {
            let names: Vec<&str> = Responder::ALL.iter().map(|r| r.as_str()).collect();
            AppError::BadQuery(format!("`responder` must be one of {}", names.join(", ")))
        })?),
    };
    Ok(Filter {
        user: given(&params.user),
        text: given(&params.q),
        intent: given(&params.intent),
        responder,
        from_ms: given(&params.from)
            .map(|d| day_start_ms(&d, "from"))
            .transpose()?,
        to_ms: given(&params.to)
            .map(|d| day_start_ms(&d, "to").map(|ms| ms + 86_400_000))
            .transpose()?,
        limit: params.limit.unwrap_or(default_limit).clamp(1, max),
    })
}

#[derive(Serialize)]
pub struct Turns {
    turns: Vec<TurnRow>,
}

/// The turns a search names, within what the login may see; `limits` are
/// the default and the most it may ask for.
async fn search(
    state: &AppState,
    login: &ConsoleLogin,
    params: Result<Query<SearchParams>, QueryRejection>,
    (default_limit, max): (usize, usize),
) -> Result<Vec<TurnRow>, AppError> {
    let Query(params) = params.map_err(AppError::from_query)?;
    let scope = login.scope(params.product.as_deref())?;
    let filter = filter_of(&params, default_limit, max)?;
    state
        .console
        .turns
        .search(&scope, &filter)
        .await
        .map_err(store_error)
}

pub async fn conversations(
    State(state): State<AppState>,
    login: ConsoleLogin,
    params: Result<Query<SearchParams>, QueryRejection>,
) -> Result<Json<Turns>, AppError> {
    let turns = search(&state, &login, params, (100, 1_000)).await?;
    Ok(Json(Turns { turns }))
}

#[derive(Serialize)]
pub struct Offer {
    at: chrono::DateTime<chrono::Utc>,
    response: Option<String>,
    text: String,
}

#[derive(Serialize)]
pub struct Transcript {
    conversation_id: String,
    product: Option<String>,
    user: Option<String>,
    sender: String,
    turns: Vec<TurnRow>,
    offers: Vec<Offer>,
}

fn is_conversation_id(id: &str) -> bool {
    id.strip_prefix("c_")
        .is_some_and(|hex| hex.len() == 24 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

pub async fn conversation(
    State(state): State<AppState>,
    login: ConsoleLogin,
    Path(id): Path<String>,
    params: Result<Query<ProductParam>, QueryRejection>,
) -> Result<Json<Transcript>, AppError> {
    let Query(params) = params.map_err(AppError::from_query)?;
    let scope = login.scope(params.product.as_deref())?;
    let not_found = || AppError::NotFound("no such conversation".to_owned());
    if !is_conversation_id(&id) {
        return Err(not_found());
    }
    let rows = state
        .console
        .turns
        .conversation(&scope, &id)
        .await
        .map_err(store_error)?;
    let first = rows.first().ok_or_else(not_found)?;
    let (product, user, sender) = (
        first.product.clone(),
        first.user.clone(),
        first.sender.clone(),
    );
    let (offers, turns): (Vec<TurnRow>, Vec<TurnRow>) =
        rows.into_iter().partition(|r| r.kind == "offer");
    Ok(Json(Transcript {
        conversation_id: id,
        product,
        user,
        sender,
        turns,
        offers: offers
            .into_iter()
            .map(|o| Offer {
                at: o.at,
                response: o.detail.actions.first().cloned(),
                text: o.text,
            })
            .collect(),
    }))
}

/// The same search as JSON Lines, one turn per line, as a download.
pub async fn export(
    State(state): State<AppState>,
    login: ConsoleLogin,
    params: Result<Query<SearchParams>, QueryRejection>,
) -> Result<Response, AppError> {
    let turns = search(&state, &login, params, (10_000, 100_000)).await?;
    let mut body = String::new();
    for turn in &turns {
        body.push_str(&serde_json::to_string(turn).unwrap_or_default());
        body.push('\n');
    }
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/x-ndjson"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"conversations.jsonl\"",
            ),
        ],
        body,
    )
        .into_response())
}

#[derive(Serialize)]
pub struct Inbox {
    intents: Vec<String>,
    out_of_scope: &'static str,
    groups: Vec<Group>,
}

pub async fn inbox(
    State(state): State<AppState>,
    login: ConsoleLogin,
    params: Result<Query<ProductParam>, QueryRejection>,
) -> Result<Json<Inbox>, AppError> {
    let Query(params) = params.map_err(AppError::from_query)?;
    let scope = login.scope(params.product.as_deref())?;
    let rows = state
        .console
        .turns
        .inbox(&scope, 500)
        .await
        .map_err(store_error)?;
    Ok(Json(Inbox {
        intents: state.copilot.matcher().intents().to_vec(),
        out_of_scope: FALLBACK,
        groups: inbox::group(rows),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelBody {
    turn_ids: Vec<String>,
    intent: String,
}

#[derive(Serialize)]
pub struct Labelled {
    labelled: usize,
    intent: String,
    file: String,
    examples: usize,
    retrained_ms: u64,
}

pub async fn label(
    State(state): State<AppState>,
    login: ConsoleLogin,
    crate::web::AppJson(body): crate::web::AppJson<LabelBody>,
) -> Result<Json<Labelled>, AppError> {
    let scope = login.scope(None)?;
    if body.turn_ids.is_empty() || body.turn_ids.len() > 1_000 {
        return Err(AppError::InvalidField {
            field: "turn_ids",
            message: "give 1 to 1000 turn ids".to_owned(),
        });
    }
    let intent = match body.intent.trim() {
        OUT_OF_SCOPE => FALLBACK.to_owned(),
        other => other.to_owned(),
    };
    if !state.copilot.matcher().knows(&intent) {
        return Err(AppError::InvalidField {
            field: "intent",
            message: format!("'{intent}' is not an intent of the project"),
        });
    }
    let _one_at_a_time = state.console.labelling.lock().await;
    let found = state
        .console
        .turns
        .texts(&scope, &body.turn_ids)
        .await
        .map_err(store_error)?;
    if found.is_empty() {
        return Err(AppError::NotFound("no such turns".to_owned()));
    }
    let texts: Vec<String> = found.iter().map(|(_, text)| text.clone()).collect();
    let trainer = state.console.trainer.clone();
    let label = intent.clone();
    let started = Instant::now();
    let copilot = state.copilot.clone();
    let examples = tokio::task::spawn_blocking(move || {
        trainer.label(&label, &texts, |matcher| copilot.replace_matcher(matcher))
    })
    .await
    .map_err(|e| AppError::ConsoleStore(e.to_string()))?
    .map_err(|e| AppError::ConsoleStore(e.to_string()))?;
    let retrained_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let ids: Vec<String> = found.into_iter().map(|(id, _)| id).collect();
    state
        .console
        .turns
        .set_label(&ids, &intent)
        .await
        .map_err(store_error)?;
    tracing::info!(
        intent,
        labelled = ids.len(),
        retrained_ms,
        "console labels; classifier retrained"
    );
    Ok(Json(Labelled {
        labelled: ids.len(),
        intent,
        file: state
            .console
            .trainer
            .overrides()
            .path()
            .display()
            .to_string(),
        examples,
        retrained_ms,
    }))
}

#[derive(Deserialize)]
pub struct StatsParams {
    product: Option<String>,
    days: Option<u32>,
}

pub async fn stats(
    State(state): State<AppState>,
    login: ConsoleLogin,
    params: Result<Query<StatsParams>, QueryRejection>,
) -> Result<Json<stats::Stats>, AppError> {
    let Query(params) = params.map_err(AppError::from_query)?;
    let scope = login.scope(params.product.as_deref())?;
    let days = params.days.unwrap_or(14).clamp(1, 90);
    let now = chrono::Utc::now();
    let first_day = now.date_naive() - chrono::Duration::days(i64::from(days) - 1);
    let since = first_day
        .and_hms_opt(0, 0, 0)
        .map_or(0, |t| t.and_utc().timestamp_millis());
    let rows = state
        .console
        .turns
        .stat_rows(&scope, since)
        .await
        .map_err(store_error)?;
    let minutes = i64::try_from(state.settings.console.resolved_after_minutes).unwrap_or(10);
    Ok(Json(stats::daily(
        &rows,
        days,
        now,
        chrono::Duration::minutes(minutes),
    )))
}
