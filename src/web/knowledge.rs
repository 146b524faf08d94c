//! `PUT /knowledge/{product_id}/{doc_id}` and `DELETE …`: a product's help
//! pages from its own systems (Intercom's external pages API works this way:
//! upsert by external id, title, url, body). Needs the product's API key,
//! and only that product's pages can be changed.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::put;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::AppError;
use super::auth::ProductKey;
use super::json::AppJson;
use crate::db::StoredPage;
use crate::knowledge;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/knowledge/{product_id}/{doc_id}",
        put(page_put).delete(page_delete),
    )
}

/// Longest doc id accepted (an external system's id or path).
const MAX_DOC_ID: usize = 200;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PageBody {
    title: String,
    #[serde(default)]
    url: String,
    /// Markdown; or `html`, read as text.
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    html: Option<String>,
}

#[derive(Serialize)]
struct PageAnswer {
    product_id: String,
    doc_id: String,
    sections: usize,
}

/// The product named in the path, if the key is that product's (another
/// product's key gets 404, as if the product did not exist).
fn owned(product: &crate::products::Product, raw: &str) -> Result<(), AppError> {
    if product.id.as_str() == raw {
        Ok(())
    } else {
        Err(AppError::UnknownProduct(raw.to_owned()))
    }
}

fn check_doc_id(doc_id: &str) -> Result<(), AppError> {
    let ok = !doc_id.is_empty()
        && doc_id.len() <= MAX_DOC_ID
        && doc_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:~".contains(c));
    if ok {
        Ok(())
    } else {
        Err(AppError::InvalidField {
            field: "doc_id",
            message: format!("must be 1 to {MAX_DOC_ID} characters of A-Z a-z 0-9 - _ . : ~"),
        })
    }
}

async fn page_put(
    State(state): State<AppState>,
    ProductKey(product): ProductKey,
    Path((product_id, doc_id)): Path<(String, String)>,
    AppJson(page): AppJson<PageBody>,
) -> Result<Json<PageAnswer>, AppError> {
    owned(&product, &product_id)?;
    check_doc_id(&doc_id)?;
    let title = page.title.trim();
    if title.is_empty() {
        return Err(AppError::InvalidField {
            field: "title",
            message: "must not be empty".to_owned(),
        });
    }
    let (text, html) = match (page.body, page.html) {
        (Some(body), None) => (body, false),
        (None, Some(html)) => (html, true),
        _ => {
            return Err(AppError::InvalidField {
                field: "body",
                message: "send exactly one of `body` (Markdown) or `html`".to_owned(),
            });
        }
    };
    let sections = knowledge::api_page(title, &page.url, &text, html);
    let stored = StoredPage {
        product: product.id.as_str().to_owned(),
        doc_id: doc_id.clone(),
        title: title.to_owned(),
        url: page.url.clone(),
        html,
        body: text,
    };
    state
        .pages
        .upsert(&stored)
        .await
        .map_err(|e| AppError::Knowledge(e.to_string()))?;
    let indexed = state
        .knowledge
        .replace_page(&product.id, &doc_id, &sections)
        .map_err(|e| AppError::Knowledge(e.to_string()))?;
    Ok(Json(PageAnswer {
        product_id: product.id.as_str().to_owned(),
        doc_id,
        sections: indexed,
    }))
}

async fn page_delete(
    State(state): State<AppState>,
    ProductKey(product): ProductKey,
    Path((product_id, doc_id)): Path<(String, String)>,
) -> Result<StatusCode, AppError> {
    owned(&product, &product_id)?;
    check_doc_id(&doc_id)?;
    let existed = state
        .pages
        .delete(product.id.as_str(), &doc_id)
        .await
        .map_err(|e| AppError::Knowledge(e.to_string()))?;
    if !existed {
        return Err(AppError::NotFound(format!("no page '{doc_id}'")));
    }
    state
        .knowledge
        .remove_page(&product.id, &doc_id)
        .map_err(|e| AppError::Knowledge(e.to_string()))?;
    Ok(StatusCode::NO_CONTENT)
}
