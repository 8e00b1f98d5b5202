//! Master keys: they wrap the subjects' data keys and never live in the database.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::cipher::{self, KeyBytes};
use crate::{Error, SubjectId};

/// A master key: 32 bytes with an id, from configuration (`ES_MASTER_KEY` or
/// `ES_MASTER_KEY_FILE`), never stored in the database.
///
/// The text form is `<id>:<base64 of 32 bytes>`, or just the base64, in which
/// case the id is derived from the key (`k` + the first 8 hex digits of its
/// SHA-256), so the same key always has the same id.
///
/// ```
/// use es_core::MasterKey;
///
/// let key = MasterKey::parse("prod-2026:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").unwrap();
/// assert_eq!(key.id(), "prod-2026");
/// assert!(MasterKey::parse("not base64!").is_err());
/// assert!(MasterKey::parse("c2hvcnQ=").is_err(), "16 bytes is too short");
/// ```
#[derive(Clone)]
pub struct MasterKey {
    id: String,
    key: KeyBytes,
}

impl MasterKey {
    /// Parses `<id>:<base64>` or `<base64>`. The error never echoes the key.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let text = text.trim();
        let (id, encoded) = match text.rsplit_once(':') {
            Some((id, encoded)) => (Some(id), encoded),
            None => (None, text),
        };
        let bytes =
            Zeroizing::new(
                STANDARD
                    .decode(encoded)
                    .map_err(|_| Error::InvalidMasterKey {
                        reason: "it is not base64",
                    })?,
            );
        let key: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| Error::InvalidMasterKey {
                reason: "it is not 32 bytes (generate one with `openssl rand -base64 32`)",
            })?;
        let key = Zeroizing::new(key);
        let id = match id {
            Some(id) if !id.is_empty() && !id.chars().any(char::is_control) => id.to_owned(),
            Some(_) => {
                return Err(Error::InvalidMasterKey {
                    reason: "its id is empty or has control characters",
                });
            }
            None => derived_id(&key),
        };
        Ok(Self { id, key })
    }

    /// A new random master key (for development and tests).
    pub fn generate(id: &str) -> Result<Self, Error> {
        if id.is_empty() || id.contains(':') || id.chars().any(char::is_control) {
            return Err(Error::InvalidMasterKey {
                reason: "its id is empty or has `:` or control characters",
            });
        }
        Ok(Self {
            id: id.to_owned(),
            key: cipher::random_key(),
        })
    }

    /// The text form, `<id>:<base64>`, for writing a key file.
    pub fn to_text(&self) -> Zeroizing<String> {
        Zeroizing::new(format!(
            "{}:{}",
            self.id,
            STANDARD.encode(self.key.as_ref())
        ))
    }

    /// The key's id, stored beside every data key it wraps.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn wrap_ad(&self, subject: &SubjectId, key_version: u32) -> Vec<u8> {
        let mut ad = b"es.datakey.v1\0".to_vec();
        for part in [self.id.as_bytes(), subject.as_str().as_bytes()] {
            ad.extend_from_slice(&(part.len() as u64).to_le_bytes());
            ad.extend_from_slice(part);
        }
        ad.extend_from_slice(&key_version.to_le_bytes());
        ad
    }

    /// Wraps a data key: `nonce || AES-256-GCM(data key)`, bound to the subject,
    /// key version and this master key's id.
    pub(crate) fn wrap(
        &self,
        data_key: &KeyBytes,
        subject: &SubjectId,
        key_version: u32,
    ) -> Vec<u8> {
        let (nonce, ciphertext) = cipher::seal(
            &self.key,
            &self.wrap_ad(subject, key_version),
            data_key.as_ref(),
        );
        let mut wrapped = nonce.to_vec();
        wrapped.extend_from_slice(&ciphertext);
        wrapped
    }

    /// Unwraps a data key wrapped by [`wrap`](Self::wrap).
    pub(crate) fn unwrap_key(
        &self,
        wrapped: &[u8],
        subject: &SubjectId,
        key_version: u32,
    ) -> Result<KeyBytes, Error> {
        let mismatch = || Error::MasterKeyMismatch {
            master_key_id: self.id.clone(),
        };
        let (nonce, ciphertext) = wrapped.split_at_checked(12).ok_or_else(mismatch)?;
        let nonce: &[u8; 12] = nonce.try_into().map_err(|_| mismatch())?;
        let plain = cipher::open(
            &self.key,
            &self.wrap_ad(subject, key_version),
            nonce,
            ciphertext,
        )
        .ok_or_else(mismatch)?;
        let key: [u8; 32] = plain.as_slice().try_into().map_err(|_| mismatch())?;
        Ok(Zeroizing::new(key))
    }
}

fn derived_id(key: &KeyBytes) -> String {
    let digest = Sha256::digest(key.as_ref());
    let hex: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    format!("k{hex}")
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey({}, <redacted>)", self.id)
    }
}

/// The current master key, which wraps new data keys, and earlier ones that
/// still unwrap keys not yet re-wrapped by a rotation.
///
/// ```
/// use es_core::{MasterKey, MasterKeyring};
///
/// let ring = MasterKeyring::parse("new:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=, \
///                                  old:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=").unwrap();
/// assert_eq!(ring.current().id(), "new");
/// assert!(ring.get("old").is_some());
/// ```
#[derive(Clone, Debug)]
pub struct MasterKeyring {
    current: MasterKey,
    previous: Vec<MasterKey>,
}

impl MasterKeyring {
    /// A keyring with one key.
    pub fn new(current: MasterKey) -> Self {
        Self {
            current,
            previous: Vec::new(),
        }
    }

    /// Adds an earlier key, still used to unwrap.
    #[must_use]
    pub fn with_previous(mut self, key: MasterKey) -> Self {
        self.previous.push(key);
        self
    }

    /// Parses a comma-separated list of keys, current first (the form of
    /// `ES_MASTER_KEY` during a rotation).
    pub fn parse(text: &str) -> Result<Self, Error> {
        let mut keys = text
            .split(',')
            .filter(|part| !part.trim().is_empty())
            .map(MasterKey::parse);
        let current = keys.next().ok_or(Error::InvalidMasterKey {
            reason: "it is empty",
        })??;
        let previous = keys.collect::<Result<Vec<_>, _>>()?;
        Ok(Self { current, previous })
    }

    /// Reads the configuration: `ES_MASTER_KEY` (keys, current first), else the
    /// file named by `ES_MASTER_KEY_FILE`. `Ok(None)` when neither is set.
    ///
    /// The environment and the file system are passed in, so that es-core does
    /// no IO itself; an application calls it with `std::env::var` and
    /// `std::fs::read_to_string`:
    ///
    /// ```
    /// use es_core::MasterKeyring;
    ///
    /// let ring = MasterKeyring::from_sources(
    ///     |name| std::env::var(name).ok(),
    ///     |path| std::fs::read_to_string(path),
    /// );
    /// # let _ = ring;
    ///
    /// // What a test (or an application with its own configuration) passes:
    /// let ring = MasterKeyring::from_sources(
    ///     |name| (name == "ES_MASTER_KEY").then(|| "k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".to_owned()),
    ///     |_| unreachable!(),
    /// )
    /// .unwrap()
    /// .unwrap();
    /// assert_eq!(ring.current().id(), "k1");
    /// ```
    pub fn from_sources(
        env: impl Fn(&str) -> Option<String>,
        read_file: impl Fn(&std::path::Path) -> std::io::Result<String>,
    ) -> Result<Option<Self>, Error> {
        if let Some(text) = env("ES_MASTER_KEY").filter(|t| !t.trim().is_empty()) {
            return Self::parse(&text).map(Some);
        }
        let Some(path) = env("ES_MASTER_KEY_FILE").filter(|p| !p.trim().is_empty()) else {
            return Ok(None);
        };
        let text = Zeroizing::new(read_file(std::path::Path::new(&path)).map_err(|source| {
            Error::MasterKeyFile {
                path: path.clone(),
                source,
            }
        })?);
        Self::parse(&text).map(Some)
    }

    /// The key that wraps new data keys.
    pub fn current(&self) -> &MasterKey {
        &self.current
    }

    /// The key with this id.
    pub fn get(&self, id: &str) -> Option<&MasterKey> {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == id)
    }
}
