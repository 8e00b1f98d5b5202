//! AES-256-GCM sealing with associated data, and the envelope stored in place of
//! a personal value.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::SubjectId;

/// A data key or a master key: 32 bytes, wiped from memory on drop.
pub(crate) type KeyBytes = Zeroizing<[u8; 32]>;

/// What a personal value is stored as.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Envelope {
    /// The value, encrypted.
    Sealed {
        subject: SubjectId,
        key_version: u32,
        nonce: [u8; 12],
        ciphertext: Vec<u8>,
    },
    /// A value that was already shredded when it was written (a snapshot taken
    /// after its subject was forgotten).
    Shredded { subject: SubjectId },
}

/// The associated data of a sealed value: what it is bound to.
pub(crate) fn associated_data(
    record: &[u8],
    path: &str,
    subject: &SubjectId,
    key_version: u32,
) -> Vec<u8> {
    let mut ad = Vec::with_capacity(32 + record.len() + path.len() + subject.as_str().len());
    ad.extend_from_slice(b"es.personal.v1\0");
    for part in [record, path.as_bytes(), subject.as_str().as_bytes()] {
        ad.extend_from_slice(&(part.len() as u64).to_le_bytes());
        ad.extend_from_slice(part);
    }
    ad.extend_from_slice(&key_version.to_le_bytes());
    ad
}

/// Encrypts `plaintext` under `key` with a fresh random nonce.
pub(crate) fn seal(key: &KeyBytes, ad: &[u8], plaintext: &[u8]) -> ([u8; 12], Vec<u8>) {
    let cipher = Aes256Gcm::new(key.as_ref().into());
    let mut nonce = [0u8; 12];
    rand::rng().fill_bytes(&mut nonce);
    let ciphertext = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: ad,
            },
        )
        // AES-GCM encryption fails only for messages beyond 64 GiB.
        .unwrap_or_default();
    (nonce, ciphertext)
}

/// Decrypts and authenticates; `None` when the tag does not verify (wrong key,
/// tampered ciphertext, or associated data of another record, field or subject).
pub(crate) fn open(
    key: &KeyBytes,
    ad: &[u8],
    nonce: &[u8; 12],
    ciphertext: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    let cipher = Aes256Gcm::new(key.as_ref().into());
    cipher
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad: ad,
            },
        )
        .ok()
        .map(Zeroizing::new)
}

/// A fresh random key.
pub(crate) fn random_key() -> KeyBytes {
    let mut key = Zeroizing::new([0u8; 32]);
    rand::rng().fill_bytes(key.as_mut());
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealing_round_trips_and_binds_the_associated_data() {
        let key = random_key();
        let subject = SubjectId::new("s").unwrap();
        let ad = associated_data(b"event-1", "Opened.name", &subject, 1);
        let (nonce, ct) = seal(&key, &ad, b"Ada");
        assert_eq!(open(&key, &ad, &nonce, &ct).unwrap().as_slice(), b"Ada");
        let other_field = associated_data(b"event-1", "Opened.email", &subject, 1);
        assert!(open(&key, &other_field, &nonce, &ct).is_none());
        let other_event = associated_data(b"event-2", "Opened.name", &subject, 1);
        assert!(open(&key, &other_event, &nonce, &ct).is_none());
        let other_version = associated_data(b"event-1", "Opened.name", &subject, 2);
        assert!(open(&key, &other_version, &nonce, &ct).is_none());
        assert!(open(&random_key(), &ad, &nonce, &ct).is_none());
        let (nonce2, ct2) = seal(&key, &ad, b"Ada");
        assert_ne!(nonce, nonce2, "a fresh nonce per seal");
        assert_ne!(ct, ct2);
    }

    #[test]
    fn associated_data_is_unambiguous() {
        let s = SubjectId::new("b").unwrap();
        let t = SubjectId::new("ab").unwrap();
        // "a" + "b…" must not collide with "" + "ab…".
        assert_ne!(
            associated_data(b"x", "a", &s, 1),
            associated_data(b"x", "", &t, 1)
        );
    }
}
