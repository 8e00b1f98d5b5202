//! Read-horizon diagnostics: what keeps subscribers from seeing committed events.

use es_core::Error;
use sqlx::Row;

use crate::PgStore;
use crate::appender::{MARK_NAMESPACE, MARK_OBJECT};
use crate::error::store_error;
use crate::event_store::HORIZON;

/// The state of the global read horizon.
///
/// Subscribers read only events of transactions older than the oldest open
/// transaction that appends events (one that holds the appender mark, see
/// [`mark_appender`](crate::mark_appender)); other open transactions, writing
/// other tables or only reading, hold nobody back. A long-open appender (an
/// idle `BEGIN` in a console that appended by hand, a stuck batch job)
/// therefore holds every projection back; this names it.
#[derive(Debug, Clone, PartialEq)]
pub struct Horizon {
    /// Committed events that no subscriber can read yet.
    pub waiting_events: u64,
    /// Open appending transactions, oldest first: the first holds the horizon.
    pub holders: Vec<HorizonHolder>,
}

impl Horizon {
    /// Whether committed events are waiting behind an open appending transaction.
    pub fn is_held(&self) -> bool {
        self.waiting_events > 0
    }
}

/// An open appending transaction that holds (or, behind an older one, will
/// hold) the read horizon.
#[derive(Debug, Clone, PartialEq)]
pub struct HorizonHolder {
    /// The backend's process id: `SELECT pg_terminate_backend(pid)` ends it.
    pub pid: i32,
    /// `active`, `idle in transaction`, …
    pub state: Option<String>,
    /// How long its transaction has been open, in seconds.
    pub transaction_age_secs: f64,
    /// Its current or last query (first 500 characters).
    pub query: Option<String>,
    /// Its `application_name`.
    pub application_name: Option<String>,
}

impl PgStore {
    /// Reports whether the read horizon is held back, and by whom.
    pub async fn horizon(&self) -> Result<Horizon, Error> {
        let rows = sqlx::query(HORIZON)
            .bind(MARK_NAMESPACE)
            .bind(MARK_OBJECT)
            .fetch_all(self.pool())
            .await
            .map_err(|e| store_error("reading the read horizon", e))?;
        let get = |e| store_error("reading the read horizon", e);
        let mut horizon = Horizon {
            waiting_events: 0,
            holders: Vec::new(),
        };
        for row in rows {
            let waiting: i64 = row.try_get("waiting_events").map_err(get)?;
            horizon.waiting_events = u64::try_from(waiting).unwrap_or(0);
            let pid: Option<i32> = row.try_get("pid").map_err(get)?;
            let Some(pid) = pid else { continue };
            horizon.holders.push(HorizonHolder {
                pid,
                state: row.try_get("state").map_err(get)?,
                transaction_age_secs: row
                    .try_get::<Option<f64>, _>("transaction_age_secs")
                    .map_err(get)?
                    .unwrap_or(0.0),
                query: row.try_get("query").map_err(get)?,
                application_name: row.try_get("application_name").map_err(get)?,
            });
        }
        Ok(horizon)
    }
}
