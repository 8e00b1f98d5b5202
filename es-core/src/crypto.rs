//! Crypto-shredding: personal data encrypted per data subject, so that deleting
//! the subject's key makes every copy unreadable.
//!
//! - [`Personal<T>`] marks a value as personal data of a subject. It can only be
//!   serialized inside an encryption scope set up by the framework (the
//!   repository, the projection runners), never by accident in clear.
//! - Each subject has one data key (AES-256), created on first use and stored
//!   wrapped under a [`MasterKey`] that comes from configuration, never from the
//!   database ([`KeyStore`] holds only wrapped keys).
//! - Each personal value is sealed with AES-256-GCM under a fresh random 96-bit
//!   nonce; the associated data binds the ciphertext to its record (event id or
//!   snapshot), field path, subject and key version, so a ciphertext moved
//!   elsewhere fails to open with [`Error::Tampered`](crate::Error::Tampered).
//! - [`Crypto::forget`] destroys the subject's key (keeping a tombstone) and
//!   appends a [`SystemEvent::SubjectForgotten`] in the same transaction; from
//!   then on every copy decodes as [`Personal::Shredded`](Personal::is_shredded).
//!
//! ```
//! use es_core::{Crypto, MasterKey, MasterKeyring, MemoryStore, Personal, SubjectId};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let master = MasterKey::generate("k1").unwrap();
//! let crypto = Crypto::new(MasterKeyring::new(master));
//! let store = MemoryStore::new();
//! let ada = SubjectId::new("user-1").unwrap();
//!
//! let name = Personal::new(ada.clone(), "Ada Lovelace".to_owned());
//! let sealed = crypto.seal_value(&store, b"record-1", &name).await.unwrap();
//! assert!(!sealed.windows(3).any(|w| w == b"Ada"), "no plaintext");
//! let opened: Personal<String> = crypto.open_value(&store, b"record-1", &sealed).await.unwrap();
//! assert_eq!(opened.value().map(String::as_str), Some("Ada Lovelace"));
//!
//! crypto.forget(&store, &ada).await.unwrap();
//! let after: Personal<String> = crypto.open_value(&store, b"record-1", &sealed).await.unwrap();
//! assert!(after.is_shredded());
//! # });
//! ```

mod cipher;
mod key_store;
mod keys;
mod personal;
mod scope;
mod shredder;

pub use key_store::{ForgetOutcome, KeyState, KeyStore, StoredKey};
pub use keys::{MasterKey, MasterKeyring};
pub use personal::Personal;
pub use shredder::{Crypto, ForgottenSubjects, SystemEvent, decode_events, encode_events};

pub use scope::with_path;
pub(crate) use shredder::{open_all, seal_all};
