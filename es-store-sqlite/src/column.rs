//! Conversions between the API's values and SQLite's column values: integers are
//! `i64`, times are microseconds since the Unix epoch.

use chrono::{DateTime, Utc};
use es_core::Error;

use crate::error::corrupt;

/// A counter as an SQLite integer.
pub(crate) fn to_i64(value: u64, what: &'static str) -> Result<i64, Error> {
    i64::try_from(value).map_err(|_| corrupt(what, "does not fit a 64-bit signed integer"))
}

/// An SQLite integer as a counter.
pub(crate) fn to_u64(value: i64, what: &'static str) -> Result<u64, Error> {
    u64::try_from(value).map_err(|_| corrupt(what, "is negative"))
}

/// A time as stored: microseconds since the Unix epoch, truncating any finer
/// part (every backend keeps microseconds).
pub(crate) fn to_micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

/// A stored time.
pub(crate) fn from_micros(micros: i64, what: &'static str) -> Result<DateTime<Utc>, Error> {
    DateTime::from_timestamp_micros(micros).ok_or_else(|| corrupt(what, "is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_keep_microseconds_and_drop_nanoseconds() {
        let at = DateTime::from_timestamp(1_800_000_000, 123_456_789).expect("valid time");
        let stored = to_micros(at);
        assert_eq!(stored, 1_800_000_000_123_456);
        let read = from_micros(stored, "time").expect("in range");
        assert_eq!(
            read,
            DateTime::from_timestamp(1_800_000_000, 123_456_000).expect("valid time")
        );
    }

    #[test]
    fn times_before_the_epoch_round_trip() {
        let at = DateTime::from_timestamp_micros(-1_234_567).expect("valid time");
        assert_eq!(from_micros(to_micros(at), "time").expect("in range"), at);
    }

    #[test]
    fn counters_refuse_what_does_not_fit() {
        assert_eq!(to_i64(7, "n").expect("fits"), 7);
        assert!(to_i64(u64::MAX, "n").is_err());
        assert!(to_u64(-1, "n").is_err());
    }
}
