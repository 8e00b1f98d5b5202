//! Codecs turn events and snapshots into payload bytes and back.
//!
//! [`Bincode`] (bincode 2 in serde mode, standard configuration) is the compact
//! default; [`Json`] is readable and tolerant of added optional fields. bincode 2
//! is frozen upstream and pinned exactly in the workspace; nothing outside this
//! module names it, so replacing it is a change to one file.
//!
//! bincode is not self-describing: it cannot decode `#[serde(flatten)]`,
//! untagged enums, `skip_serializing_if` or `serde_json::Value`. Events that need
//! those should use [`Json`].

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::CodecError;

/// Turns serde values into bytes and back.
///
/// ```
/// use es_core::{Bincode, Codec, Json};
///
/// let bytes = Bincode.encode(&(7u32, "seven")).unwrap();
/// let back: (u32, String) = Bincode.decode(&bytes).unwrap();
/// assert_eq!(back, (7, "seven".to_owned()));
///
/// let json = Json.encode(&(7u32, "seven")).unwrap();
/// assert_eq!(json, br#"[7,"seven"]"#);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a codec",
    note = "use `es_core::Bincode` (the default) or `es_core::Json`"
)]
pub trait Codec: Clone + Send + Sync + 'static {
    /// A short stable name, used in error messages.
    const NAME: &'static str;

    /// Encodes a value.
    fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>, CodecError>;

    /// Decodes a value; trailing bytes are an error.
    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, CodecError>;
}

/// The largest payload the bincode codec decodes: a corrupt length prefix must not
/// make it allocate gigabytes.
pub const MAX_DECODE_BYTES: usize = 64 * 1024 * 1024;

/// bincode 2, serde mode, standard configuration (varint integers, little endian).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bincode;

impl Codec for Bincode {
    const NAME: &'static str = "bincode";

    fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>, CodecError> {
        bincode::serde::encode_to_vec(value, bincode::config::standard()).map_err(CodecError::new)
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, CodecError> {
        let config = bincode::config::standard().with_limit::<MAX_DECODE_BYTES>();
        let (value, read) =
            bincode::serde::decode_from_slice(bytes, config).map_err(CodecError::new)?;
        if read != bytes.len() {
            return Err(CodecError::new(format_args!(
                "{} trailing bytes after the value",
                bytes.len() - read
            )));
        }
        Ok(value)
    }
}

/// JSON through `serde_json`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Json;

impl Codec for Json {
    const NAME: &'static str = "json";

    fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>, CodecError> {
        serde_json::to_vec(value).map_err(CodecError::new)
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, CodecError> {
        serde_json::from_slice(bytes).map_err(CodecError::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bincode_rejects_trailing_bytes_and_truncation() {
        let mut bytes = Bincode.encode(&("abc", 5u64)).unwrap();
        bytes.push(0);
        let err = Bincode.decode::<(String, u64)>(&bytes).unwrap_err();
        assert!(err.to_string().contains("trailing"), "{err}");
        bytes.truncate(2);
        assert!(Bincode.decode::<(String, u64)>(&bytes).is_err());
    }

    #[test]
    fn bincode_refuses_huge_length_prefixes() {
        // A varint length prefix claiming ~2^62 bytes must fail, not allocate.
        let bytes = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x3F];
        assert!(Bincode.decode::<Vec<u8>>(&bytes).is_err());
    }
}
