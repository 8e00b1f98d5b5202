//! The scenarios, each measuring the framework beside its reference.

pub(crate) mod append;
pub(crate) mod commands;
pub(crate) mod embedded;
pub(crate) mod headline;
pub(crate) mod load;
pub(crate) mod personal;
pub(crate) mod projections;

use std::time::Duration;

/// How big the run is.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// Repetitions of every figure (at least 3 for the report).
    pub(crate) repetitions: usize,
    /// Append: (batch size, events per measurement).
    pub(crate) appends: Vec<(usize, usize)>,
    /// Writers for the append scenario.
    pub(crate) writers: Vec<usize>,
    /// How long one command measurement runs.
    pub(crate) command_time: Duration,
    /// Load: (stream length, loads timed).
    pub(crate) loads: Vec<(usize, usize)>,
    /// Events in the projection scenario.
    pub(crate) projection_events: usize,
    /// Personal data: events per measurement.
    pub(crate) personal_events: usize,
}

impl Plan {
    /// The report's plan.
    pub(crate) fn full() -> Self {
        Self {
            repetitions: 3,
            appends: vec![(1, 2_000), (10, 10_000), (100, 40_000)],
            writers: vec![1, 8],
            command_time: Duration::from_secs(3),
            loads: vec![(10, 200), (1_000, 50), (10_000, 15), (100_000, 5)],
            projection_events: 1_000_000,
            personal_events: 10_000,
        }
    }

    /// A smoke run: every path once, small.
    pub(crate) fn quick() -> Self {
        Self {
            repetitions: 1,
            appends: vec![(1, 50), (10, 200), (100, 1_000)],
            writers: vec![1, 2],
            command_time: Duration::from_millis(300),
            loads: vec![(10, 5), (1_000, 3)],
            projection_events: 5_000,
            personal_events: 200,
        }
    }
}

/// Logs progress on stderr.
pub(crate) fn progress(what: impl std::fmt::Display) {
    eprintln!("[{}] {what}", chrono::Utc::now().format("%H:%M:%S"));
}
