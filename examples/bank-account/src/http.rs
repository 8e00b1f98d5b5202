//! The HTTP API: the CLI's commands as JSON over HTTP (axum).
//!
//! | method and path | body | success |
//! | --- | --- | --- |
//! | `POST /accounts` | `{"account", "owner_id", "owner_name", "email"?, "initial"?}` | 201 |
//! | `POST /accounts/{id}/deposits` | `{"amount"}` | 201 (200 for a retry) |
//! | `POST /accounts/{id}/withdrawals` | `{"amount"}` | 201 (200 for a retry) |
//! | `POST /transfers` | `{"from", "to", "amount"}` | 201 (200 for a retry) |
//! | `GET /accounts/{id}` | | 200 `{"account", "balance", …}` |
//! | `GET /accounts/{id}/history` | | 200 |
//! | `GET /search?q=` | | 200 |
//! | `DELETE /owners/{id}` | | 200 |
//! | `GET /metrics` | | 200, Prometheus text |
//! | `GET /health` | | 200 `{"status": "ok"}`, or `"degraded"` naming the halted read models |
//!
//! A write answers once it is written. If the read models do not show it
//! within the server's wait (2 s by default), it still answers its 201 or 200,
//! with `"visible": false`, the lagging models in `"lagging"` and the header
//! `Read-Models-Lag` naming them; a transfer the saga has not settled by then
//! answers 202 with `"status": "pending"`. Never an error for a write that
//! landed.
//!
//! Writes honour an `Idempotency-Key` header. Errors are
//! `{"error": kind, "message": …}` with 422 (validation, business rules), 404,
//! 409 (a conflict that outlasted the retries, a key reused for another
//! body), 413 `too_large` (a body over 16 KiB) or 503 with `Retry-After`.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::server::{Role, Tokens};
use crate::{AccountId, Bank, Error, OwnerId, parse_key};

/// The largest request body accepted.
pub const MAX_BODY: usize = 16 * 1024;

/// What the handlers share.
#[derive(Clone)]
struct App {
    bank: Arc<Bank>,
    metrics: Option<PrometheusHandle>,
}

/// The API's router over `bank`, without authentication; `metrics` renders
/// `GET /metrics` (the process's Prometheus recorder), absent: an empty page.
pub fn router(bank: Arc<Bank>, metrics: Option<PrometheusHandle>) -> Router {
    router_with(bank, metrics, Tokens::none())
}

/// [`router`], where every route but `/health` needs a bearer token of
/// `tokens` with the route's role: the accounts routes `teller`, forgetting
/// an owner and the metrics `operator` (`Authorization: Bearer <token>`;
/// missing or unknown: 401 `unauthenticated`, without the role: 403
/// `forbidden`). With no tokens, every route is open.
pub fn router_with(bank: Arc<Bank>, metrics: Option<PrometheusHandle>, tokens: Tokens) -> Router {
    let tokens = Arc::new(tokens);
    let teller = Router::new()
        .route("/accounts", post(open))
        .route("/accounts/{id}", get(account))
        .route("/accounts/{id}/deposits", post(deposit))
        .route("/accounts/{id}/withdrawals", post(withdraw))
        .route("/accounts/{id}/history", get(history))
        .route("/transfers", post(transfer))
        .route("/search", get(search))
        .route_layer(require(&tokens, Role::Teller));
    let operator = Router::new()
        .route("/owners/{id}", delete(forget))
        .route("/metrics", get(render_metrics))
        .route_layer(require(&tokens, Role::Operator));
    Router::new()
        .merge(teller)
        .merge(operator)
        .route("/health", get(health))
        .fallback(|| async { failure(&Error::NotFound("no such route".into())) })
        .method_not_allowed_fallback(|| async {
            failure(&Error::MethodNotAllowed(
                "this route does not take that method".into(),
            ))
        })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(App { bank, metrics })
}

/// What the authorization middleware knows: the tokens and the route's role.
type Guard = (Arc<Tokens>, Role);
/// The authorization middleware's function.
type Authorize = fn(
    State<Guard>,
    axum::extract::Request,
    axum::middleware::Next,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Response> + Send>>;

/// The middleware that lets through requests whose bearer token has `role`.
fn require(
    tokens: &Arc<Tokens>,
    role: Role,
) -> axum::middleware::FromFnLayer<Authorize, Guard, (State<Guard>, axum::extract::Request)> {
    axum::middleware::from_fn_with_state((Arc::clone(tokens), role), |state, request, next| {
        Box::pin(authorize(state, request, next))
    })
}

async fn authorize(
    State((tokens, role)): State<(Arc<Tokens>, Role)>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if tokens.is_empty() {
        return next.run(request).await;
    }
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(presented) = presented else {
        return unauthenticated("a bearer token is required");
    };
    match tokens.roles(presented) {
        None => unauthenticated("the bearer token is not valid"),
        Some(roles) if !roles.contains(&role) => failure(&Error::Forbidden(format!(
            "this route needs the `{}` role",
            role.name()
        ))),
        Some(_) => next.run(request).await,
    }
}

fn unauthenticated(message: &str) -> Response {
    let mut response = failure(&Error::Unauthenticated(message.to_owned()));
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

fn failure(error: &Error) -> Response {
    let status =
        StatusCode::from_u16(error.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, axum::Json(error.to_json())).into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

/// The header that names the read models which do not show a write yet.
pub const LAG_HEADER: &str = "read-models-lag";

fn reply(
    result: Result<(StatusCode, Value), Error>,
    route: &'static str,
    started: Instant,
) -> Response {
    let outcome = match &result {
        Ok(_) => "ok",
        Err(e) => e.kind(),
    };
    metrics::counter!("bank_http_requests_total", "route" => route, "outcome" => outcome)
        .increment(1);
    metrics::histogram!("bank_http_request_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    match result {
        Ok((status, body)) => {
            let lagging: Vec<&str> = body["lagging"]
                .as_array()
                .map(|l| l.iter().filter_map(|l| l["projection"].as_str()).collect())
                .unwrap_or_default();
            let mut response = (status, axum::Json(&body)).into_response();
            if !lagging.is_empty()
                && let Ok(value) = HeaderValue::from_str(&lagging.join(", "))
            {
                response.headers_mut().insert(LAG_HEADER, value);
            }
            response
        }
        Err(error) => failure(&error),
    }
}

/// Parses a JSON body: malformed, mistyped or unknown fields are
/// `invalid_input`; an oversized body is `too_large` (413).
fn body<T: DeserializeOwned>(raw: Result<Bytes, BytesRejection>) -> Result<T, Error> {
    let bytes = raw.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Error::TooLarge(format!("the request body is over {MAX_BODY} bytes"))
        } else {
            Error::InvalidInput("the request body cannot be read".into())
        }
    })?;
    // An object, not anything serde would take for one (it reads a struct
    // from an array too: `[2]` would be a deposit of 2).
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(Error::InvalidInput(
            "the request body is not a JSON object".into(),
        ));
    }
    // serde's messages quote what they read (a field name, a string value):
    // only the category and the place are told, never the input.
    serde_json::from_slice(&bytes).map_err(|e| {
        let what = match e.classify() {
            serde_json::error::Category::Syntax => "is not valid JSON",
            serde_json::error::Category::Eof => "ends before the JSON does",
            serde_json::error::Category::Data => {
                "does not have the expected fields of the expected types (see the API's table)"
            }
            serde_json::error::Category::Io => "cannot be read",
        };
        Error::InvalidInput(format!(
            "the request body {what} (at line {}, column {})",
            e.line(),
            e.column()
        ))
    })
}

/// The `{id}` of a path, decoded; one that does not decode (`%FF`) is
/// `invalid_input`, never echoed.
fn path_id(path: Result<Path<String>, PathRejection>) -> Result<String, Error> {
    path.map(|Path(id)| id)
        .map_err(|_| Error::InvalidInput("the path holds an id that is not UTF-8 text".into()))
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<es_core::IdempotencyKey>, Error> {
    // Two keys are two intents in one request: which one is meant cannot be
    // guessed.
    if headers.get_all("idempotency-key").iter().nth(1).is_some() {
        return Err(Error::BadRequest(
            "the Idempotency-Key header is given more than once".into(),
        ));
    }
    match headers.get("idempotency-key") {
        None => Ok(None),
        Some(value) => {
            let text = value.to_str().map_err(|_| {
                Error::InvalidInput("the Idempotency-Key header is not text".into())
            })?;
            parse_key(text).map(Some)
        }
    }
}

/// A JSON number of cents, as the CLI takes it: a positive whole number.
fn amount(value: &Value) -> Result<crate::Cents, Error> {
    match value {
        Value::Number(n) => match n.as_u64() {
            Some(cents) => Ok(crate::Cents::amount(cents)?),
            None => Err(Error::InvalidInput(
                "amounts are positive whole numbers of cents".into(),
            )),
        },
        _ => Err(Error::InvalidInput(
            "amounts are JSON numbers of cents".into(),
        )),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OpenBody {
    account: String,
    owner_id: String,
    owner_name: String,
    email: Option<String>,
    initial: Option<Value>,
}

async fn open(State(app): State<App>, raw: Result<Bytes, BytesRejection>) -> Response {
    let started = Instant::now();
    let result = async {
        let body: OpenBody = body(raw)?;
        let account = AccountId::new(body.account)?;
        let owner = OwnerId::new(body.owner_id)?;
        let initial = match &body.initial {
            None => crate::Cents::ZERO,
            Some(Value::Number(n)) if n.as_u64() == Some(0) => crate::Cents::ZERO,
            Some(value) => amount(value)?,
        };
        let receipt = app
            .bank
            .open_account(&account, &owner, body.owner_name, body.email, initial)
            .await?;
        Ok((
            StatusCode::CREATED,
            serde_json::to_value(receipt).unwrap_or_default(),
        ))
    }
    .await;
    reply(result, "open", started)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AmountBody {
    amount: Value,
}

async fn deposit(
    State(app): State<App>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Response {
    money(app, id, headers, raw, true).await
}

async fn withdraw(
    State(app): State<App>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Response {
    money(app, id, headers, raw, false).await
}

async fn money(
    app: App,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
    deposit: bool,
) -> Response {
    let started = Instant::now();
    let result = async {
        let body: AmountBody = body(raw)?;
        let account = AccountId::new(path_id(id)?)?;
        let amount = amount(&body.amount)?;
        let key = idempotency_key(&headers)?;
        let receipt = if deposit {
            app.bank.deposit(&account, amount, key).await?
        } else {
            app.bank.withdraw(&account, amount, key).await?
        };
        let status = if receipt.deduplicated {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        };
        Ok((status, serde_json::to_value(receipt).unwrap_or_default()))
    }
    .await;
    reply(
        result,
        if deposit { "deposit" } else { "withdraw" },
        started,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TransferBody {
    from: String,
    to: String,
    amount: Value,
}

async fn transfer(
    State(app): State<App>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let result = async {
        let body: TransferBody = body(raw)?;
        let from = AccountId::new(body.from)?;
        let to = AccountId::new(body.to)?;
        let amount = amount(&body.amount)?;
        let key = idempotency_key(&headers)?;
        let outcome = app.bank.transfer(&from, &to, amount, key).await?;
        let status = if outcome.status != "completed" {
            StatusCode::ACCEPTED
        } else if outcome.deduplicated {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        };
        Ok((status, serde_json::to_value(outcome).unwrap_or_default()))
    }
    .await;
    reply(result, "transfer", started)
}

async fn account(State(app): State<App>, id: Result<Path<String>, PathRejection>) -> Response {
    let started = Instant::now();
    let result = async {
        let account = AccountId::new(path_id(id)?)?;
        let view = app.bank.balance(&account).await?;
        Ok((
            StatusCode::OK,
            serde_json::to_value(view).unwrap_or_default(),
        ))
    }
    .await;
    reply(result, "account", started)
}

async fn history(State(app): State<App>, id: Result<Path<String>, PathRejection>) -> Response {
    let started = Instant::now();
    let result = async {
        let account = AccountId::new(path_id(id)?)?;
        let events = app.bank.history(&account).await?;
        Ok((
            StatusCode::OK,
            json!({ "account": account.as_str(), "events": events }),
        ))
    }
    .await;
    reply(result, "history", started)
}

#[derive(Deserialize)]
struct SearchQuery {
    q: Option<String>,
}

async fn search(
    State(app): State<App>,
    query: Result<Query<SearchQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let started = Instant::now();
    let result = async {
        let Ok(Query(query)) = query else {
            return Err(Error::InvalidInput(
                "the query string cannot be read".into(),
            ));
        };
        let q = query
            .q
            .ok_or_else(|| Error::InvalidInput("the `q` parameter is missing".into()))?;
        let results = app.bank.search(&q).await?;
        Ok((
            StatusCode::OK,
            serde_json::to_value(results).unwrap_or_default(),
        ))
    }
    .await;
    reply(result, "search", started)
}

async fn forget(State(app): State<App>, id: Result<Path<String>, PathRejection>) -> Response {
    let started = Instant::now();
    let result = async {
        let owner = OwnerId::new(path_id(id)?)?;
        let (forgotten, seen) = app.bank.forget(&owner, false).await?;
        Ok((
            StatusCode::OK,
            json!({
                "owner_id": owner.as_str(),
                "forgotten": true,
                "already_forgotten": !forgotten,
                "visible": seen.visible(),
                "lagging": seen.lagging,
            }),
        ))
    }
    .await;
    reply(result, "forget", started)
}

async fn render_metrics(State(app): State<App>) -> Response {
    let text = app
        .metrics
        .as_ref()
        .map(PrometheusHandle::render)
        .unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// 200 `{"status": "ok"}` when the store answers and no read model is
/// halted; 200 `{"status": "degraded", "halted": […]}` naming each halted
/// read model with its poison event (writes still work: taking the server
/// out would not help); 503 when the store does not answer.
async fn health(State(app): State<App>) -> Response {
    if let Err(error) =
        es_core::EventStore::read_all(app.bank.store(), es_core::Checkpoint::START, 1).await
    {
        return failure(&Error::from(error));
    }
    match app.bank.halted().await {
        Ok(halted) if halted.is_empty() => {
            (StatusCode::OK, axum::Json(json!({ "status": "ok" }))).into_response()
        }
        Ok(halted) => {
            let halted: Vec<Value> = halted
                .into_iter()
                .map(|(projection, halt)| json!({ "projection": projection, "halt": halt }))
                .collect();
            (
                StatusCode::OK,
                axum::Json(json!({ "status": "degraded", "halted": halted })),
            )
                .into_response()
        }
        Err(error) => failure(&error),
    }
}
