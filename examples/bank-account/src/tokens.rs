//! Bearer tokens for the HTTP API, from a file of hashed tokens (never the
//! database): who may call what.
//!
//! The file (`--tokens-file` or `BANK_TOKENS_FILE`) has one token per line:
//! its roles (comma-separated: `teller`, `operator`), the SHA-256 of the token
//! in hex, and an optional label; `#` starts a comment.
//!
//! ```text
//! # roles           sha256 of the token                                               label
//! teller            4f0e…                                                             front desk
//! operator,teller   9a1c…                                                             on-call
//! ```
//!
//! `bank-account tokens new --role teller` makes a token and prints its line.
//! Tokens are 256-bit random strings, so a plain SHA-256 is safe to store;
//! a presented token is hashed and compared in constant time with each line.

use std::path::Path;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::Error;

/// What a token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Accounts: open, deposit, withdraw, transfer, read, history, search.
    Teller,
    /// Operations: forget an owner, the metrics.
    Operator,
}

impl Role {
    /// Its name in the file and in answers.
    pub fn name(self) -> &'static str {
        match self {
            Self::Teller => "teller",
            Self::Operator => "operator",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "teller" => Some(Self::Teller),
            "operator" => Some(Self::Operator),
            _ => None,
        }
    }
}

/// One configured token: its hash and roles.
#[derive(Clone)]
struct Entry {
    hash: [u8; 32],
    roles: Vec<Role>,
}

/// The configured tokens. Empty: no authentication (then the server listens
/// on loopback only).
///
/// ```
/// use bank_account::server::{Role, Tokens};
///
/// let token = Tokens::generate();
/// let tokens = Tokens::parse(&Tokens::line(&token, &[Role::Teller], "desk")).unwrap();
/// assert_eq!(tokens.roles(&token), Some(vec![Role::Teller]));
/// assert_eq!(tokens.roles("another token"), None);
/// ```
#[derive(Clone, Default)]
pub struct Tokens {
    entries: Vec<Entry>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("count", &self.entries.len())
            .finish()
    }
}

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Tokens {
    /// No tokens: authentication off.
    pub fn none() -> Self {
        Self::default()
    }

    /// Whether any token is configured.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Reads the tokens file at `path`. A file that group or others may read
    /// or write is refused (it says who may do what), as ssh refuses such a
    /// key.
    ///
    /// # Errors
    ///
    /// `config`: the file cannot be read, is too open, or has a bad line (its
    /// number is given, never its text).
    pub fn load(path: &Path) -> Result<Self, Error> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(path)
                .map_err(|e| Error::Config(format!("cannot read the tokens file: {}", e.kind())))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                return Err(Error::Config(format!(
                    "the tokens file is accessible to others (mode {:o}); chmod 600 it",
                    mode & 0o777
                )));
            }
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("cannot read the tokens file: {}", e.kind())))?;
        let tokens = Self::parse(&text)?;
        if tokens.is_empty() {
            return Err(Error::Config("the tokens file holds no token".into()));
        }
        Ok(tokens)
    }

    /// Parses the file's text.
    ///
    /// # Errors
    ///
    /// `config`, naming the first bad line's number.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let mut entries = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or_default().trim();
            if line.is_empty() {
                continue;
            }
            let bad = |why: &str| Error::Config(format!("tokens file, line {}: {why}", n + 1));
            let mut words = line.split_whitespace();
            let roles = words.next().unwrap_or_default();
            let roles: Option<Vec<Role>> = roles.split(',').map(Role::parse).collect();
            let roles = roles.ok_or_else(|| bad("the roles are `teller`, `operator` or both"))?;
            let digest = words
                .next()
                .ok_or_else(|| bad("the token's SHA-256 (64 hex digits) is missing"))?;
            let mut hash = [0u8; 32];
            if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad("the token's SHA-256 is not 64 hex digits"));
            }
            for (i, byte) in hash.iter_mut().enumerate() {
                *byte = u8::from_str_radix(&digest[2 * i..2 * i + 2], 16)
                    .map_err(|_| bad("the token's SHA-256 is not 64 hex digits"))?;
            }
            entries.push(Entry { hash, roles });
        }
        Ok(Self { entries })
    }

    /// The roles of `token`, or `None` when it is not configured. Every entry
    /// is compared, in constant time.
    pub fn roles(&self, token: &str) -> Option<Vec<Role>> {
        let presented = hash(token);
        let mut found: Option<Vec<Role>> = None;
        for entry in &self.entries {
            if bool::from(entry.hash.ct_eq(&presented)) {
                found = Some(entry.roles.clone());
            }
        }
        found
    }

    /// A new random token (256 bits, URL-safe text).
    pub fn generate() -> String {
        let bytes: [u8; 32] = rand::random();
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The tokens-file line for `token` with `roles` and `label`.
    pub fn line(token: &str, roles: &[Role], label: &str) -> String {
        let roles: Vec<&str> = roles.iter().map(|r| r.name()).collect();
        let digest: String = hash(token).iter().map(|b| format!("{b:02x}")).collect();
        format!("{} {digest} {label}", roles.join(","))
            .trim_end()
            .to_owned()
    }
}
