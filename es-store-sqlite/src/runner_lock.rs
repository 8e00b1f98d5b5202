//! One active runner per projection across the processes of one machine: an
//! exclusive advisory lock on a file beside the database.

use std::fmt::Write as _;
use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};
use std::time::Duration;

use es_core::Error;

use crate::SqliteStore;

/// The directory, beside the database file, that holds the lock files.
pub const LOCK_DIR: &str = "locks";

/// Longest file-name stem kept before the name is shortened with a hash (file
/// systems allow 255 bytes).
const MAX_STEM: usize = 200;

/// The right to run a projection, held while this value lives.
///
/// An exclusive advisory lock ([`File::try_lock`]: `flock` on Unix,
/// `LockFileEx` on Windows) on `<directory of the database file>/locks/<name>.lock`
/// (see [`lock_file_name`]; on Unix the directory is 0700 and the file 0600). Dropping the value closes the file and releases
/// the lock; so does the death of the process, however it dies, so another
/// runner can take over. The lock files stay: deleting one while another
/// process waits on it would let two processes hold "the" lock.
///
/// The lock only covers processes that see the same file system (one
/// machine). The sinks' checkpoint compare-and-set still fences a runner that
/// kept running without its lock.
#[derive(Debug)]
pub struct ProjectionLock {
    /// Holding the open file is holding the lock.
    file: File,
    path: PathBuf,
    projection: String,
}

impl ProjectionLock {
    /// The projection it is held for.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), es_core::Error> {
    /// let store = es_store_sqlite::testing::fresh_store().await;
    /// let lock = store.try_lock_projection("balances").await?.expect("free");
    /// assert_eq!(lock.projection(), "balances");
    /// # Ok(()) }
    /// ```
    pub fn projection(&self) -> &str {
        &self.projection
    }

    /// The lock file.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), es_core::Error> {
    /// let store = es_store_sqlite::testing::fresh_store().await;
    /// let lock = store.try_lock_projection("balances").await?.expect("free");
    /// assert!(lock.path().ends_with("locks/balances.lock"));
    /// # Ok(()) }
    /// ```
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Releases the lock now (dropping the value does the same, ignoring
    /// errors).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), es_core::Error> {
    /// let store = es_store_sqlite::testing::fresh_store().await;
    /// let lock = store.try_lock_projection("balances").await?.expect("free");
    /// lock.release()?;
    /// assert!(store.try_lock_projection("balances").await?.is_some());
    /// # Ok(()) }
    /// ```
    pub fn release(self) -> Result<(), Error> {
        self.file
            .unlock()
            .map_err(|e| Error::unavailable("releasing a runner lock", e))
    }
}

/// The lock file's name for `projection`: lowercase ASCII letters, digits and
/// `-` are kept; every other byte of the UTF-8 name (uppercase letters
/// included, so that names differing in case do not share a lock on a
/// case-insensitive file system) becomes `_` and two lowercase hex digits. The
/// encoding is one-to-one, never produces `.`, `..`, a separator or a hidden
/// file, and the empty name is `_`. A name whose encoding passes 200 bytes
/// keeps its first 200 bytes followed by `~` and a 64-bit FNV-1a hash of the
/// whole name in hex. The extension is `.lock`.
///
/// ```
/// use es_store_sqlite::lock_file_name;
///
/// assert_eq!(lock_file_name("balances-v2"), "balances-v2.lock");
/// assert_eq!(lock_file_name("Search/index"), "_53earch_2findex.lock");
/// assert_eq!(lock_file_name(".."), "_2e_2e.lock");
/// assert_eq!(lock_file_name(""), "_.lock");
/// assert!(lock_file_name(&"x".repeat(1_000)).len() < 255);
/// ```
pub fn lock_file_name(projection: &str) -> String {
    let mut stem = String::with_capacity(projection.len());
    for byte in projection.bytes() {
        if byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-' {
            stem.push(char::from(byte));
        } else {
            let _ = write!(stem, "_{byte:02x}");
        }
    }
    if stem.is_empty() {
        stem.push('_');
    }
    if stem.len() > MAX_STEM {
        // The stem is ASCII: any byte index is a character boundary.
        stem.truncate(MAX_STEM);
        let _ = write!(stem, "~{:016x}", fnv1a(projection.as_bytes()));
    }
    stem.push_str(".lock");
    stem
}

/// A stable 64-bit hash (FNV-1a).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

impl SqliteStore {
    /// The directory of the lock files: [`LOCK_DIR`] beside the database file.
    fn lock_dir(&self) -> Result<PathBuf, Error> {
        let database = self.database.as_deref().ok_or_else(|| Error::Backend {
            message: "runner locks need a database file, not an in-memory database".to_owned(),
            source: None,
        })?;
        let dir = match database.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        Ok(dir.join(LOCK_DIR))
    }

    /// Takes the runner lock of `projection` if no runner (of this or another
    /// process on this machine) holds it; `None` when one does. See
    /// [`ProjectionLock`] for the file and [`lock_file_name`] for its name.
    ///
    /// A failure to create the directory or open the file is
    /// [`Error::Unavailable`]; an in-memory database has no directory for
    /// lock files ([`Error::Backend`]).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), es_core::Error> {
    /// let store = es_store_sqlite::testing::fresh_store().await;
    /// let lock = store.try_lock_projection("balances").await?;
    /// assert!(lock.is_some());
    /// // Held: a second runner does not get it.
    /// assert!(store.try_lock_projection("balances").await?.is_none());
    /// drop(lock);
    /// assert!(store.try_lock_projection("balances").await?.is_some());
    /// # Ok(()) }
    /// ```
    pub async fn try_lock_projection(
        &self,
        projection: &str,
    ) -> Result<Option<ProjectionLock>, Error> {
        // Creating a directory and opening a small file: short enough to run on
        // the caller's thread; taking the lock itself never blocks.
        // Private like the database (0700 and 0600): a lock file's name is a
        // projection's name, which is nobody else's business either.
        let dir = self.lock_dir()?;
        es_files::create_private_dir(&dir)
            .map_err(|e| Error::unavailable("creating the runner lock directory", e))?;
        es_files::restrict_to_owner(&dir, "the runner lock directory");
        let path = dir.join(lock_file_name(projection));
        let file = es_files::private_file_options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::unavailable("opening a runner lock file", e))?;
        es_files::restrict_to_owner(&path, "a runner lock file");
        match file.try_lock() {
            Ok(()) => Ok(Some(ProjectionLock {
                file,
                path,
                projection: projection.to_owned(),
            })),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(e)) => Err(Error::unavailable("taking a runner lock", e)),
        }
    }

    /// Waits until the runner lock of `projection` is free and takes it,
    /// trying every `retry`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), es_core::Error> {
    /// use std::time::Duration;
    ///
    /// let store = es_store_sqlite::testing::fresh_store().await;
    /// let lock = store
    ///     .lock_projection("balances", Duration::from_millis(100))
    ///     .await?;
    /// assert_eq!(lock.projection(), "balances");
    /// # Ok(()) }
    /// ```
    pub async fn lock_projection(
        &self,
        projection: &str,
        retry: Duration,
    ) -> Result<ProjectionLock, Error> {
        loop {
            if let Some(lock) = self.try_lock_projection(projection).await? {
                return Ok(lock);
            }
            tokio::time::sleep(retry).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::lock_file_name;

    #[test]
    fn names_are_one_to_one() {
        let names = ["a_b", "a.b", "A", "a", "_61", "", "_", "é"];
        let files: std::collections::BTreeSet<_> =
            names.iter().map(|n| lock_file_name(n)).collect();
        assert_eq!(files.len(), names.len());
    }

    #[test]
    fn long_names_are_shortened_and_still_distinct() {
        let a = lock_file_name(&format!("{}a", "x".repeat(300)));
        let b = lock_file_name(&format!("{}b", "x".repeat(300)));
        assert_ne!(a, b);
        assert!(a.len() <= 255);
    }

    #[test]
    fn names_hold_only_safe_characters() {
        let file = lock_file_name("../etc/passwd\0 ☃");
        assert!(
            file.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.~".contains(&b))
        );
        assert!(!file.starts_with('.'));
    }
}
