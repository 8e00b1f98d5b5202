//! Group commit: appends to different streams made concurrently through one
//! store run as one statement in one transaction, one round trip and one
//! commit for the group, each append keeping its own expected-version check,
//! idempotency and result.
//!
//! An append that finds nothing on its way is sent at once, from its own
//! task, as a group of one. Otherwise it joins the queue; while fewer than
//! [`GroupCommit::in_flight`] groups are on their way, it starts a flusher
//! task (as does an inline append that ends with appends queued), which takes the queue
//! (at most one append per stream, at most [`GroupCommit::max_appends`]
//! appends and about [`GroupCommit::max_events`] events), sends it as one call
//! of `es_append_group` (migration `20261204000009`), answers each append
//! with its own row, and goes on until the queue is empty. In a group of more than one each append
//! runs in a subtransaction, so a unique violation (a concurrent first use of
//! its key) undoes that append alone; a version conflict or a lost order race
//! is a `refused` row for that append alone. A group the server fails as a
//! whole for a reason of one member's making is sent again one append at a
//! time, so that only that member fails.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use es_core::{AppendRequest, AppendResult, Error, ExpectedVersion, StreamVersion};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};
use tokio::sync::oneshot;

use crate::appender::{MARK_NAMESPACE, MARK_OBJECT};
use crate::error::{corrupt, sqlx_unavailable, store_error};
use crate::event_store::{stored_result, to_i64};

/// How concurrent appends are grouped into one statement and one commit.
///
/// ```
/// use es_store_postgres::{GroupCommit, PgStoreOptions};
///
/// let options = PgStoreOptions {
///     group_commit: GroupCommit { in_flight: 4, ..GroupCommit::default() },
///     ..PgStoreOptions::default()
/// };
/// assert_eq!(GroupCommit::off().max_appends, 1);
/// # let _ = options;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupCommit {
    /// How many group statements may be on their way at once (each holds one
    /// connection). Appends that arrive while all are busy wait and go in the
    /// next group together. At least 1.
    pub in_flight: usize,
    /// The most appends in one group. 1 turns grouping off.
    pub max_appends: usize,
    /// A group takes no further append once it holds this many events (its
    /// first append is taken whatever its size).
    pub max_events: usize,
}

impl Default for GroupCommit {
    fn default() -> Self {
        Self {
            in_flight: 2,
            max_appends: 32,
            max_events: 2_000,
        }
    }
}

impl GroupCommit {
    /// Every append its own statement and commit, as many at once as the
    /// pool has connections: the behaviour without group commit.
    pub fn off() -> Self {
        Self {
            in_flight: usize::MAX,
            max_appends: 1,
            max_events: usize::MAX,
        }
    }
}

/// One append, with what the group statement needs beside the request.
#[derive(Debug)]
pub(crate) struct Member {
    pub(crate) request: AppendRequest,
    kind: i16,
    expected: Option<i64>,
    count: i32,
    schema_versions: Vec<i32>,
    headers: Vec<String>,
}

impl Member {
    pub(crate) fn of(request: AppendRequest) -> Result<Self, Error> {
        let (kind, expected) = match request.expected {
            ExpectedVersion::Any => (0, None),
            ExpectedVersion::NoStream => (1, None),
            ExpectedVersion::Exact(v) if v == StreamVersion::INITIAL => (1, None),
            ExpectedVersion::Exact(v) => (2, Some(to_i64(v.get(), "version")?)),
            ExpectedVersion::StreamExists => (3, None),
        };
        let count = i32::try_from(request.events.len())
            .map_err(|_| corrupt("appending", "too many events in one append"))?;
        let schema_versions = request
            .events
            .iter()
            .map(|e| {
                i32::try_from(e.schema_version)
                    .map_err(|_| corrupt("appending", "schema version too large"))
            })
            .collect::<Result<_, _>>()?;
        let headers = request
            .events
            .iter()
            .map(|e| {
                serde_json::to_string(&e.metadata.headers)
                    .map_err(|e| corrupt("encoding headers", e))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            request,
            kind,
            expected,
            count,
            schema_versions,
            headers,
        })
    }

    fn events(&self) -> usize {
        self.request.events.len()
    }

    fn stream(&self) -> &str {
        self.request.stream.as_str()
    }
}

/// What the group statement said of one append.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Its events are written, in the group's transaction.
    Appended(AppendResult),
    /// Its key was used before: that first result, and its fingerprint.
    Deduplicated {
        result: AppendResult,
        fingerprint: Option<Vec<u8>>,
    },
    /// The expectation failed, or the stream's last writer drew a younger
    /// transaction id (the caller tells the two apart).
    Refused,
    /// A unique violation on the named constraint.
    Taken(String),
}

const GROUP: &str = "-- es-store-postgres: append\n\
    SELECT ord, outcome, last_version, positions, xid, fingerprint, detail \
    FROM es_append_group($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)";

/// The statement of a group (its members sorted by stream), with its
/// parameters bound: borrowed, so that a member can be sent again.
pub(crate) fn query<'q>(
    members: &[&'q Member],
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    let n = members.len();
    let events: usize = members.iter().map(|m| m.events()).sum();
    let mut streams = Vec::with_capacity(n);
    let mut counts = Vec::with_capacity(n);
    let mut kinds = Vec::with_capacity(n);
    let mut expected = Vec::with_capacity(n);
    let mut keys = Vec::with_capacity(n);
    let mut fingerprints = Vec::with_capacity(n);
    let mut event_ids = Vec::with_capacity(events);
    let mut event_types = Vec::with_capacity(events);
    let mut schema_versions = Vec::with_capacity(events);
    let mut payloads = Vec::with_capacity(events);
    let mut recorded_at = Vec::with_capacity(events);
    let mut correlation_ids = Vec::with_capacity(events);
    let mut causation_ids = Vec::with_capacity(events);
    let mut idempotency_keys = Vec::with_capacity(events);
    let mut headers = Vec::with_capacity(events);
    for member in members {
        let request = &member.request;
        streams.push(request.stream.as_str());
        counts.push(member.count);
        kinds.push(member.kind);
        expected.push(member.expected);
        keys.push(request.idempotency.as_ref().map(|i| i.key.as_str()));
        fingerprints.push(request.idempotency.as_ref().map(|i| &i.fingerprint[..]));
        for event in &request.events {
            event_ids.push(*event.event_id.as_uuid());
            event_types.push(event.event_type.as_str());
            payloads.push(&event.payload[..]);
            recorded_at.push(event.metadata.recorded_at);
            correlation_ids.push(event.metadata.correlation_id);
            causation_ids.push(event.metadata.causation_id);
            idempotency_keys.push(event.metadata.idempotency_key.as_ref().map(|k| k.as_str()));
        }
        schema_versions.extend_from_slice(&member.schema_versions);
        headers.extend(member.headers.iter().map(String::as_str));
    }
    sqlx::query(GROUP)
        .bind(streams)
        .bind(counts)
        .bind(kinds)
        .bind(expected)
        .bind(keys)
        .bind(fingerprints)
        .bind(event_ids)
        .bind(event_types)
        .bind(schema_versions)
        .bind(payloads)
        .bind(recorded_at)
        .bind(correlation_ids)
        .bind(causation_ids)
        .bind(idempotency_keys)
        .bind(headers)
        .bind(MARK_NAMESPACE)
        .bind(MARK_OBJECT)
}

/// Reads the outcome rows of a group of `members` appends, in member order.
pub(crate) fn outcomes(rows: &[PgRow], members: usize) -> Result<Vec<Outcome>, Error> {
    if rows.len() != members {
        return Err(corrupt(
            "appending",
            "the group answered for a different count",
        ));
    }
    let get = |e| store_error("reading an append result", e);
    let mut outcomes = Vec::with_capacity(members);
    for (i, row) in rows.iter().enumerate() {
        let ord: i32 = row.try_get("ord").map_err(get)?;
        if usize::try_from(ord).ok() != Some(i + 1) {
            return Err(corrupt("appending", "the group answered out of order"));
        }
        let outcome: String = row.try_get("outcome").map_err(get)?;
        let result = |deduplicated| stored_result(row, "reading an append result", deduplicated);
        outcomes.push(match outcome.as_str() {
            "appended" => Outcome::Appended(result(false)?),
            "deduplicated" => Outcome::Deduplicated {
                result: result(true)?,
                fingerprint: row.try_get("fingerprint").map_err(get)?,
            },
            "refused" => Outcome::Refused,
            "taken" => Outcome::Taken(
                row.try_get::<Option<String>, _>("detail")
                    .map_err(get)?
                    .unwrap_or_default(),
            ),
            other => {
                return Err(corrupt(
                    "appending",
                    format_args!("unknown outcome {other}"),
                ));
            }
        });
    }
    Ok(outcomes)
}

/// Runs a group of one on `executor`: a unique violation, which a group of
/// one raises, is its `Taken` outcome.
pub(crate) async fn run_one<'c, E>(executor: E, member: &Member) -> Result<Outcome, Error>
where
    E: sqlx::PgExecutor<'c>,
{
    let rows = query(&[member]).fetch_all(executor).await;
    match rows {
        Ok(rows) => Ok(outcomes(&rows, 1)?.remove(0)),
        Err(sqlx::Error::Database(db)) if db.is_unique_violation() => Ok(Outcome::Taken(
            db.constraint().unwrap_or_default().to_owned(),
        )),
        Err(error) => Err(store_error("appending events", error)),
    }
}

/// A member's outcome, with the member handed back.
pub(crate) type Answer = (Member, Result<Outcome, Error>);

type Reply = oneshot::Sender<Answer>;

struct Waiter {
    member: Member,
    reply: Reply,
}

#[derive(Default)]
struct Queue {
    waiting: VecDeque<Waiter>,
    /// Flusher tasks running.
    flushing: usize,
}

/// The group commit of one pool (shared by a store's clones).
pub(crate) struct Groups {
    queue: Mutex<Queue>,
    limits: GroupCommit,
}

impl std::fmt::Debug for Groups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Groups")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Groups {
    pub(crate) fn new(limits: GroupCommit) -> Arc<Self> {
        Arc::new(Self {
            queue: Mutex::new(Queue::default()),
            limits: GroupCommit {
                in_flight: limits.in_flight.max(1),
                max_appends: limits.max_appends.max(1),
                max_events: limits.max_events.max(1),
            },
        })
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // The queue holds no invariant a panic could break halfway.
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Appends `member` in the next group; its outcome, and the member back
    /// (`None` if the flusher ended without an answer, which it does not).
    pub(crate) async fn append(
        self: &Arc<Self>,
        pool: &PgPool,
        member: Member,
    ) -> Result<Answer, Error> {
        // Nobody else on the way: a group of one, sent from here (no task,
        // no channel); appends arriving meanwhile queue for a flusher.
        let inline = {
            let mut queue = self.lock();
            let free = queue.flushing < self.limits.in_flight && queue.waiting.is_empty();
            if free {
                queue.flushing += 1;
            }
            free
        };
        if inline {
            let place = Inline {
                groups: Arc::clone(self),
                pool: pool.clone(),
            };
            let outcome = run_one(pool, &member).await;
            drop(place);
            return Ok((member, outcome));
        }
        let (reply, answer) = oneshot::channel();
        let start = {
            let mut queue = self.lock();
            queue.waiting.push_back(Waiter { member, reply });
            let start = queue.flushing < self.limits.in_flight;
            if start {
                queue.flushing += 1;
            }
            start
        };
        if start {
            tokio::spawn(flush(Arc::clone(self), pool.clone()));
        }
        answer.await.map_err(|_| {
            Error::unavailable(
                "appending events",
                "the group commit task ended without an answer",
            )
        })
    }

    /// The next group: from the front of the queue, one append per stream,
    /// within the limits; the rest keep their places.
    fn take(&self, queue: &mut Queue) -> Vec<Waiter> {
        let mut group: Vec<Waiter> = Vec::new();
        let mut streams = HashSet::new();
        let mut events = 0;
        let mut rest = VecDeque::new();
        while let Some(waiter) = queue.waiting.pop_front() {
            let fits = group.is_empty()
                || (group.len() < self.limits.max_appends
                    && events + waiter.member.events() <= self.limits.max_events);
            if fits && streams.insert(waiter.member.stream().to_owned()) {
                events += waiter.member.events();
                group.push(waiter);
            } else {
                rest.push_back(waiter);
            }
            if group.len() == self.limits.max_appends {
                break;
            }
        }
        rest.append(&mut queue.waiting);
        queue.waiting = rest;
        group
    }
}

/// Gives the flusher's place back if it ends by a panic.
struct Flushing(Arc<Groups>, bool);

impl Drop for Flushing {
    fn drop(&mut self) {
        if !self.1 {
            self.0.lock().flushing -= 1;
        }
    }
}

/// The place of an append sent inline: given back when it ends (or its
/// caller gives up on it), or handed to a flusher if appends queued meanwhile.
struct Inline {
    groups: Arc<Groups>,
    pool: PgPool,
}

impl Drop for Inline {
    fn drop(&mut self) {
        let mut queue = self.groups.lock();
        if !queue.waiting.is_empty()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            drop(queue);
            runtime.spawn(flush(Arc::clone(&self.groups), self.pool.clone()));
            return;
        }
        queue.flushing -= 1;
    }
}

/// A flusher: sends groups until the queue is empty.
async fn flush(groups: Arc<Groups>, pool: PgPool) {
    let mut place = Flushing(Arc::clone(&groups), false);
    loop {
        let group = {
            let mut queue = groups.lock();
            let group = groups.take(&mut queue);
            if group.is_empty() {
                queue.flushing -= 1;
                place.1 = true;
                return;
            }
            group
        };
        send(&pool, group).await;
    }
}

/// A driver error shared by every member of a failed group.
#[derive(Debug)]
struct Shared(Arc<sqlx::Error>);

impl std::fmt::Display for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for Shared {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// Sends one group and answers its members.
async fn send(pool: &PgPool, mut group: Vec<Waiter>) {
    if group.len() == 1 {
        let Some(Waiter { member, reply }) = group.pop() else {
            return;
        };
        let outcome = run_one(pool, &member).await;
        let _ = reply.send((member, outcome));
        return;
    }
    group.sort_by(|a, b| a.member.stream().cmp(b.member.stream()));
    let rows = {
        let members: Vec<&Member> = group.iter().map(|w| &w.member).collect();
        query(&members).fetch_all(pool).await
    };
    match rows {
        Ok(rows) => match outcomes(&rows, group.len()) {
            Ok(outcomes) => {
                for (Waiter { member, reply }, outcome) in group.into_iter().zip(outcomes) {
                    let _ = reply.send((member, Ok(outcome)));
                }
            }
            Err(error) => {
                let message = error.to_string();
                for Waiter { member, reply } in group {
                    let _ = reply.send((member, Err(corrupt("appending", &message))));
                }
            }
        },
        // Refused by the server for a reason that may be one member's (a
        // value out of range, say): the transaction rolled back, nothing is
        // written; each member alone tells which.
        Err(error) if error.as_database_error().is_some() && !sqlx_unavailable(&error) => {
            for Waiter { member, reply } in group {
                let outcome = run_one(pool, &member).await;
                let _ = reply.send((member, outcome));
            }
        }
        Err(error) => {
            // Unreachable, or the outcome unknown (the connection failed
            // around the commit): every member gets the error, as an append
            // of its own would.
            let unavailable = sqlx_unavailable(&error);
            let shared = Arc::new(error);
            for Waiter { member, reply } in group {
                let source = Shared(Arc::clone(&shared));
                let error = if unavailable {
                    Error::unavailable("appending events", source)
                } else {
                    Error::backend("appending events", source)
                };
                let _ = reply.send((member, Err(error)));
            }
        }
    }
}
