//! The HTTP server around the [`router`](crate::http::router): the limits
//! that keep one client from holding the service, and the bearer tokens that
//! say who may call what ([`Tokens`]).
//!
//! - **Header read**: a connection must send a request's headers within
//!   [`Limits::header_read`] (also the idle time allowed between two requests
//!   on a kept-alive connection), or it is closed: half-sent requests are not
//!   held.
//! - **Request budget**: a request (its body read, its handling, the store
//!   statements it runs) gets [`Limits::request`]; past it the answer is 503
//!   `timeout` with `Retry-After`. The server's PostgreSQL statements are
//!   bounded by the same budget (`statement_timeout`), so no statement
//!   outlives its request.
//! - **Connections and requests in flight**: at most
//!   [`Limits::max_connections`] open connections (more are closed at once)
//!   and [`Limits::max_in_flight`] requests being handled (more are answered
//!   503 `overloaded` with `Retry-After`, without touching the store).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::sync::Semaphore;

pub use crate::tokens::{Role, Tokens};

/// The server's limits ([module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The time to send a request's headers, and the idle time between two
    /// requests on one connection.
    pub header_read: Duration,
    /// The budget of one request, body and store included.
    pub request: Duration,
    /// Open connections at most.
    pub max_connections: usize,
    /// Requests in flight at most.
    pub max_in_flight: usize,
}

impl Default for Limits {
    /// 10 s to send headers, 10 s per request, 1,024 connections, 256
    /// requests in flight.
    fn default() -> Self {
        Self {
            header_read: Duration::from_secs(10),
            request: Duration::from_secs(10),
            max_connections: 1024,
            max_in_flight: 256,
        }
    }
}

/// An error answer of the server itself, in the API's JSON form.
fn refuse(status: StatusCode, kind: &str, message: &str) -> Response {
    let mut response = (
        status,
        axum::Json(serde_json::json!({ "error": kind, "message": message })),
    )
        .into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

/// Wraps `router` in the request budget and the in-flight cap.
pub fn limited(router: Router, limits: Limits) -> Router {
    let in_flight = Arc::new(Semaphore::new(limits.max_in_flight));
    router.layer(axum::middleware::from_fn(
        move |request: Request, next: Next| {
            let in_flight = Arc::clone(&in_flight);
            async move {
                let Ok(_permit) = in_flight.try_acquire_owned() else {
                    metrics::counter!("bank_http_refused_total", "why" => "overloaded")
                        .increment(1);
                    return refuse(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "overloaded",
                        "too many requests in flight; try again",
                    );
                };
                match tokio::time::timeout(limits.request, next.run(request)).await {
                    Ok(response) => response,
                    Err(_) => {
                        metrics::counter!("bank_http_refused_total", "why" => "timeout")
                            .increment(1);
                        refuse(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "timeout",
                            "the request took longer than its budget; retry it (with the same \
                         Idempotency-Key for a write)",
                        )
                    }
                }
            }
        },
    ))
}

/// Serves `router` on `listener` with `limits` until `shutdown` resolves,
/// then lets the requests in progress finish.
///
/// # Errors
///
/// Never once listening: a failed accept is logged and the loop goes on.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let mut open = tokio::task::JoinSet::new();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer): (tokio::net::TcpStream, SocketAddr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = Arc::clone(&connections).try_acquire_owned() else {
            metrics::counter!("bank_http_refused_total", "why" => "connections").increment(1);
            drop(stream);
            continue;
        };
        let service = TowerToHyperService::new(router.clone());
        let mut stopped = stopped.clone();
        open.spawn(async move {
            let _permit = permit;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read)
                .keep_alive(true);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                served = connection.as_mut() => {
                    if let Err(error) = served {
                        tracing::debug!(%error, %peer, "connection closed");
                    }
                }
                () = async { let _ = stopped.wait_for(|s| *s).await; } => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
        // Reap finished connections as we go.
        while open.try_join_next().is_some() {}
    }
    let _ = stop.send(true);
    while open.join_next().await.is_some() {}
    Ok(())
}
