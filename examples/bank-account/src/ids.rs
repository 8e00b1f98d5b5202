//! Ids of accounts, owners and transfers: what the example accepts from users.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The longest id the example accepts.
pub const MAX_ID_LEN: usize = 64;

/// Why an id was refused. The message gives the rule, never the id itself
/// (ids can hold anything a user typed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// Empty.
    #[error("the {kind} id is empty")]
    Empty {
        /// Which id.
        kind: &'static str,
    },
    /// Longer than [`MAX_ID_LEN`].
    #[error("the {kind} id is {len} bytes long; the maximum is {MAX_ID_LEN}")]
    TooLong {
        /// Which id.
        kind: &'static str,
        /// Its length.
        len: usize,
    },
    /// A character outside `A-Z a-z 0-9 - _ .`.
    #[error("the {kind} id may hold only ASCII letters, digits, '-', '_' and '.'")]
    Character {
        /// Which id.
        kind: &'static str,
    },
}

fn validate(kind: &'static str, id: &str) -> Result<(), IdError> {
    if id.is_empty() {
        return Err(IdError::Empty { kind });
    }
    if id.len() > MAX_ID_LEN {
        return Err(IdError::TooLong {
            kind,
            len: id.len(),
        });
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(IdError::Character { kind });
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// `id`, if it is 1 to [`MAX_ID_LEN`] bytes of `A-Z a-z 0-9 - _ .`.
            pub fn new(id: impl Into<String>) -> Result<Self, IdError> {
                let id = id.into();
                validate($kind, &id)?;
                Ok(Self(id))
            }

            /// The id.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;

            fn try_from(id: String) -> Result<Self, IdError> {
                Self::new(id)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;

            fn from_str(id: &str) -> Result<Self, IdError> {
                Self::new(id)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// An account's id.
    ///
    /// ```
    /// use bank_account::AccountId;
    ///
    /// assert!(AccountId::new("acc-1").is_ok());
    /// assert!(AccountId::new("acc 1; DROP TABLE").is_err());
    /// assert!(AccountId::new("").is_err());
    /// ```
    AccountId,
    "account"
);

id_type!(
    /// An owner's id: the data subject of the owner's personal data.
    ///
    /// ```
    /// use bank_account::OwnerId;
    ///
    /// assert!(OwnerId::new("owner-7").is_ok());
    /// assert!(OwnerId::new("ünïcode").is_err());
    /// ```
    OwnerId,
    "owner"
);

id_type!(
    /// A transfer's id.
    ///
    /// ```
    /// use bank_account::TransferId;
    ///
    /// assert!(TransferId::new("t-01").is_ok());
    /// assert!(TransferId::new("x".repeat(65)).is_err());
    /// ```
    TransferId,
    "transfer"
);

impl OwnerId {
    /// The owner as a data subject.
    pub fn subject(&self) -> es_core::SubjectId {
        es_core::SubjectId::new(self.0.clone())
            .unwrap_or_else(|_| unreachable!("a valid owner id is a valid subject id"))
    }
}
