//! Newtypes for the identifiers and counters that cross the API.
//!
//! No bare integer or string crosses a public signature: a stream version cannot
//! be passed where a global position is expected, and a stream id is validated
//! once, where it is built.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Error;

/// The longest stream id accepted, in bytes.
///
/// Long enough for `<aggregate type>-<uuid>` with room to spare, short enough to
/// index cheaply in every backend.
pub const MAX_STREAM_ID_LEN: usize = 255;

/// The identity of one event stream, usually `<aggregate type>-<aggregate id>`.
///
/// A stream id is 1 to [`MAX_STREAM_ID_LEN`] bytes of UTF-8 without control
/// characters. Anything else is rejected with [`Error::InvalidId`], so that a
/// malformed id never reaches a store.
///
/// ```
/// use es_core::StreamId;
///
/// let id = StreamId::new("account-42").unwrap();
/// assert_eq!(id.as_str(), "account-42");
/// assert!(StreamId::new("").is_err());
/// assert!(StreamId::new("bad\nid").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct StreamId(String);

impl StreamId {
    /// Validates and wraps a stream id.
    pub fn new(id: impl Into<String>) -> Result<Self, Error> {
        let id = id.into();
        validate_id("stream id", &id, MAX_STREAM_ID_LEN)?;
        Ok(Self(id))
    }

    /// The stream of one aggregate instance: `<type name>-<id>`.
    ///
    /// ```
    /// use es_core::StreamId;
    ///
    /// let id = StreamId::for_aggregate("account", "42").unwrap();
    /// assert_eq!(id.as_str(), "account-42");
    /// ```
    pub fn for_aggregate(type_name: &str, id: &str) -> Result<Self, Error> {
        validate_id("aggregate id", id, MAX_STREAM_ID_LEN)?;
        Self::new(format!("{type_name}-{id}"))
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Unwraps the id.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl<'de> Deserialize<'de> for StreamId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::new(raw).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StreamId({:?})", self.0)
    }
}

impl FromStr for StreamId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::new(s)
    }
}

impl AsRef<str> for StreamId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Checks an identifier: non-empty, at most `max` bytes, no control characters.
pub(crate) fn validate_id(kind: &'static str, id: &str, max: usize) -> Result<(), Error> {
    let reason = if id.is_empty() {
        "is empty"
    } else if id.len() > max {
        "is too long"
    } else if id.chars().any(char::is_control) {
        "contains a control character"
    } else {
        return Ok(());
    };
    Err(Error::InvalidId {
        kind,
        reason,
        len: id.len(),
    })
}

/// The version of a stream: the number of events in it.
///
/// Versions are 1-based and gap-free: the first event of a stream has version 1,
/// and [`StreamVersion::INITIAL`] (0) means "no events yet".
///
/// ```
/// use es_core::StreamVersion;
///
/// let v = StreamVersion::INITIAL.next();
/// assert_eq!(v, StreamVersion::new(1));
/// assert_eq!(v.get(), 1);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StreamVersion(u64);

impl StreamVersion {
    /// The version of a stream with no events.
    pub const INITIAL: Self = Self(0);

    /// Wraps a version number.
    pub const fn new(version: u64) -> Self {
        Self(version)
    }

    /// The version number.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The version after this one.
    #[must_use]
    pub const fn next(self) -> Self {
        Self(self.0 + 1)
    }

    /// This version advanced by `n` events.
    #[must_use]
    pub const fn advance(self, n: u64) -> Self {
        Self(self.0 + n)
    }
}

impl fmt::Display for StreamVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for StreamVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

/// The position of an event in the global log, assigned by the store at append.
///
/// Positions are unique and increase with each append, but they are *not* the
/// order in which a subscriber must read: a store whose transactions may commit out
/// of position order (PostgreSQL) orders the log by [`Checkpoint`] instead.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Position(u64);

impl Position {
    /// Before the first event.
    pub const START: Self = Self(0);

    /// Wraps a position.
    pub const fn new(position: u64) -> Self {
        Self(position)
    }

    /// The position number.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// The commit that wrote an event, as ordered by the store.
///
/// On PostgreSQL this is the writing transaction's id (`pg_current_xact_id()`);
/// on stores with one writer at a time it increases with every append. Together
/// with the [`Position`] it orders the global log: see [`Checkpoint`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CommitId(u64);

impl CommitId {
    /// Wraps a commit id.
    pub const fn new(id: u64) -> Self {
        Self(id)
    }

    /// The commit id number.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Debug for CommitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tx{}", self.0)
    }
}

/// A place in the global log: everything up to and including this event has been
/// read.
///
/// The global log is ordered by `(commit, position)`. Subscribers store a
/// checkpoint and resume with [`EventStore::read_all`](crate::EventStore::read_all)
/// after it. A checkpoint is opaque to applications: compare it, store it with
/// its `Display` form and parse it back with [`str::parse`], but do not
/// build one from a position alone.
///
/// ```
/// use es_core::Checkpoint;
///
/// let start = Checkpoint::START;
/// let text = start.to_string();
/// assert_eq!(text.parse::<Checkpoint>().unwrap(), start);
/// assert!("garbage".parse::<Checkpoint>().is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The commit that wrote the event; compared first.
    pub commit: CommitId,
    /// The event's global position; orders events within one commit.
    pub position: Position,
}

impl Checkpoint {
    /// Before the first event of the log.
    pub const START: Self = Self {
        commit: CommitId(0),
        position: Position(0),
    };

    /// A checkpoint at the given commit and position.
    pub const fn new(commit: CommitId, position: Position) -> Self {
        Self { commit, position }
    }
}

impl fmt::Display for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.commit.0, self.position.0)
    }
}

impl fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Checkpoint({}:{})", self.commit.0, self.position.0)
    }
}

impl FromStr for Checkpoint {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let invalid = || Error::InvalidCheckpoint { len: s.len() };
        let (commit, position) = s.split_once(':').ok_or_else(invalid)?;
        let commit = commit.parse::<u64>().map_err(|_| invalid())?;
        let position = position.parse::<u64>().map_err(|_| invalid())?;
        Ok(Self::new(CommitId(commit), Position(position)))
    }
}

/// The unique id of one event: a UUID v7, so ids sort by creation time.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(Uuid);

impl EventId {
    /// A fresh UUID v7 id.
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    /// Wraps an existing UUID (read back from a store).
    pub const fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    /// The UUID.
    pub const fn as_uuid(&self) -> &Uuid {
        &self.0
    }
}

impl Default for EventId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventId({})", self.0)
    }
}

/// The data subject that personal data belongs to (a customer, an account owner).
///
/// Crypto-shredding keys personal data per subject: forgetting a subject makes
/// every field encrypted under its key unreadable.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct SubjectId(String);

impl SubjectId {
    /// Validates and wraps a subject id (same rules as [`StreamId`]).
    pub fn new(id: impl Into<String>) -> Result<Self, Error> {
        let id = id.into();
        validate_id("subject id", &id, MAX_STREAM_ID_LEN)?;
        Ok(Self(id))
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for SubjectId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl FromStr for SubjectId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::new(s)
    }
}

impl<'de> Deserialize<'de> for SubjectId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::new(raw).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for SubjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SubjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SubjectId({:?})", self.0)
    }
}

/// An idempotency key: one per user intent, reused by every retry of it.
///
/// Keys are scoped to a stream and must carry no personal data (they are stored
/// in clear). Same rules as [`StreamId`].
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Validates and wraps a key.
    pub fn new(key: impl Into<String>) -> Result<Self, Error> {
        let key = key.into();
        validate_id("idempotency key", &key, MAX_STREAM_ID_LEN)?;
        Ok(Self(key))
    }

    /// The key as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for IdempotencyKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::new(raw).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdempotencyKey({:?})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_id_rejects_bad_input_with_a_reason() {
        let err = StreamId::new("x".repeat(MAX_STREAM_ID_LEN + 1)).unwrap_err();
        assert!(err.to_string().contains("too long"), "{err}");
        let err = StreamId::new("a\u{0}b").unwrap_err();
        assert!(err.to_string().contains("control"), "{err}");
        assert!(StreamId::new("konto-ünïcødé-'; DROP TABLE events;--").is_ok());
    }

    #[test]
    fn stream_id_deserialization_validates() {
        let err = serde_json::from_str::<StreamId>("\"\"").unwrap_err();
        assert!(err.to_string().contains("empty"), "{err}");
    }

    #[test]
    fn checkpoints_order_by_commit_then_position() {
        let a = Checkpoint::new(CommitId::new(5), Position::new(9));
        let b = Checkpoint::new(CommitId::new(6), Position::new(2));
        assert!(a < b);
        assert_eq!("5:9".parse::<Checkpoint>().unwrap(), a);
        assert!("5:".parse::<Checkpoint>().is_err());
        assert!("-1:3".parse::<Checkpoint>().is_err());
    }
}
