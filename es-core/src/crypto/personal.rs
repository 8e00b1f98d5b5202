//! [`Personal<T>`]: a value that is personal data of a subject.

use std::fmt;

use serde::de::{DeserializeOwned, Error as _};
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

use super::cipher::{self, Envelope};
use super::scope::{self, Mode, ScopeKey};
use crate::{Error, SubjectId};

/// Personal data of a data subject: the value, or `Shredded` once the subject's
/// key is gone.
///
/// There is no default and no silent fallback: code that reads a personal value
/// decides what to show when it is shredded. `Debug` prints a redaction, and
/// serializing one outside the framework's encryption scope is an error, so the
/// plaintext cannot reach a log, an error message or a payload by accident.
///
/// ```
/// use es_core::{Personal, SubjectId};
///
/// let owner = SubjectId::new("owner-7").unwrap();
/// let name = Personal::new(owner.clone(), "Grace Hopper".to_owned());
/// assert_eq!(name.value().map(String::as_str), Some("Grace Hopper"));
/// assert_eq!(format!("{name:?}"), "Personal(<redacted>)");
/// assert_eq!(name.display_or("<shredded>"), "Grace Hopper");
/// assert!(serde_json::to_string(&name).is_err(), "no plaintext outside a scope");
///
/// let gone: Personal<String> = Personal::shredded(owner);
/// assert!(gone.is_shredded());
/// assert_eq!(gone.display_or("<shredded>"), "<shredded>");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Personal<T> {
    subject: SubjectId,
    value: Option<T>,
}

impl<T> Personal<T> {
    /// A personal value of `subject`.
    pub fn new(subject: SubjectId, value: T) -> Self {
        Self {
            subject,
            value: Some(value),
        }
    }

    /// A value of `subject` whose key is gone.
    pub fn shredded(subject: SubjectId) -> Self {
        Self {
            subject,
            value: None,
        }
    }

    /// The subject this value belongs to.
    pub fn subject(&self) -> &SubjectId {
        &self.subject
    }

    /// The value, or `None` when shredded.
    pub fn value(&self) -> Option<&T> {
        self.value.as_ref()
    }

    /// The value, or `None` when shredded.
    pub fn into_value(self) -> Option<T> {
        self.value
    }

    /// Whether the subject was forgotten and the value is gone.
    pub fn is_shredded(&self) -> bool {
        self.value.is_none()
    }

    /// A personal value of the same subject, transformed.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Personal<U> {
        Personal {
            subject: self.subject,
            value: self.value.map(f),
        }
    }
}

impl<T: fmt::Display> Personal<T> {
    /// The value as text, or `shredded` when it is gone.
    pub fn display_or(&self, shredded: &str) -> String {
        self.value
            .as_ref()
            .map_or_else(|| shredded.to_owned(), ToString::to_string)
    }
}

impl<T> fmt::Debug for Personal<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.value.is_some() {
            f.write_str("Personal(<redacted>)")
        } else {
            f.write_str("Personal(<shredded>)")
        }
    }
}

const NO_SCOPE: &str = "personal data can only be serialized by the framework's encryption scope \
                        (configure a Crypto on the repository or runner)";

impl<T: Serialize> Serialize for Personal<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let envelope = scope::with_scope(|scope| {
            let Some(scope) = scope else {
                return Err(NO_SCOPE);
            };
            scope.subjects.insert(self.subject.clone());
            let (Mode::Keys(keyring), Some(value)) = (&scope.mode, &self.value) else {
                // Collecting subjects, or a value already shredded.
                return Ok(Envelope::Shredded {
                    subject: self.subject.clone(),
                });
            };
            let Some(ScopeKey::Active { key, version }) = keyring.keys.get(&self.subject) else {
                scope.failure = Some(Error::SubjectForgotten {
                    subject: self.subject.clone(),
                });
                return Err("personal data for a subject without a key");
            };
            let plaintext = Zeroizing::new(
                serde_json::to_vec(value).map_err(|_| "a personal value could not be encoded")?,
            );
            let ad = cipher::associated_data(&scope.record, scope.path, &self.subject, *version);
            let (nonce, ciphertext) = cipher::seal(key, &ad, &plaintext);
            Ok(Envelope::Sealed {
                subject: self.subject.clone(),
                key_version: *version,
                nonce,
                ciphertext,
            })
        })
        .map_err(S::Error::custom)?;
        envelope.serialize(serializer)
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Personal<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let envelope = Envelope::deserialize(deserializer)?;
        scope::with_scope(|scope| {
            let Some(scope) = scope else {
                return Err(NO_SCOPE);
            };
            let (subject, key_version, nonce, ciphertext) = match envelope {
                Envelope::Shredded { subject } => return Ok(Self::shredded(subject)),
                Envelope::Sealed {
                    subject,
                    key_version,
                    nonce,
                    ciphertext,
                } => (subject, key_version, nonce, ciphertext),
            };
            scope.subjects.insert(subject.clone());
            let Mode::Keys(keyring) = &scope.mode else {
                return Ok(Self::shredded(subject));
            };
            let key = match keyring.keys.get(&subject) {
                Some(ScopeKey::Active { key, version }) if *version == key_version => key,
                // Forgotten, never stored, or a key version destroyed before the
                // subject was re-admitted: the value is gone.
                _ => return Ok(Self::shredded(subject)),
            };
            let ad = cipher::associated_data(&scope.record, scope.path, &subject, key_version);
            let Some(plaintext) = cipher::open(key, &ad, &nonce, &ciphertext) else {
                scope.failure = Some(Error::Tampered {
                    path: scope.path.to_owned(),
                });
                return Err("a personal value failed authentication");
            };
            let value = serde_json::from_slice(&plaintext)
                .map_err(|_| "a decrypted personal value could not be decoded")?;
            Ok(Self::new(subject, value))
        })
        .map_err(D::Error::custom)
    }
}
