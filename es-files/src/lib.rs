#![doc = include_str!("../README.md")]

use std::fs::OpenOptions;
use std::path::Path;

/// Options that create a file readable and writable by its owner only (mode
/// 0600 on Unix, whatever the umask); add `write`, `create`… as needed.
///
/// ```
/// # fn main() -> std::io::Result<()> {
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("key");
/// es_files::private_file_options().write(true).create_new(true).open(&path)?;
/// # #[cfg(unix)] {
/// use std::os::unix::fs::PermissionsExt as _;
/// assert_eq!(std::fs::metadata(&path)?.permissions().mode() & 0o777, 0o600);
/// # }
/// # Ok(()) }
/// ```
pub fn private_file_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

/// Creates `dir` and its missing parents with mode 0700 (on Unix), and gives
/// `dir` itself 0700 whatever the umask; an existing directory is left as it
/// is ([`restrict_to_owner`] tightens one).
///
/// # Errors
///
/// When the directory cannot be created or its mode set.
///
/// ```
/// # fn main() -> std::io::Result<()> {
/// let dir = tempfile::tempdir()?;
/// let data = dir.path().join("a/b");
/// es_files::create_private_dir(&data)?;
/// # #[cfg(unix)] {
/// use std::os::unix::fs::PermissionsExt as _;
/// assert_eq!(std::fs::metadata(&data)?.permissions().mode() & 0o777, 0o700);
/// # }
/// # Ok(()) }
/// ```
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    set_mode(dir, 0o700)
}

/// Sets the permission bits of `path` (Unix; nothing elsewhere).
///
/// # Errors
///
/// When the mode cannot be changed (another user's file, a read-only file
/// system).
pub fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
    }
    #[cfg(not(unix))]
    {
        let _ = (path, mode);
        Ok(())
    }
}

/// Removes the group's and others' permissions from `path` (`what` names it
/// in the warning) if it has any, saying so: a file or directory that an
/// older version, or a hand, left open. A missing path is fine. Failing to
/// change them (a file of another user, a read-only file system) is a
/// warning, not an error: what worked before still works (Unix; nothing
/// elsewhere).
///
/// ```
/// # fn main() -> std::io::Result<()> {
/// let dir = tempfile::tempdir()?;
/// es_files::set_mode(dir.path(), 0o755)?;
/// es_files::restrict_to_owner(dir.path(), "the data directory");
/// # #[cfg(unix)] {
/// use std::os::unix::fs::PermissionsExt as _;
/// assert_eq!(std::fs::metadata(dir.path())?.permissions().mode() & 0o777, 0o700);
/// # }
/// # Ok(()) }
/// ```
pub fn restrict_to_owner(path: &Path, what: &str) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let Ok(metadata) = std::fs::metadata(path) else {
            // Missing, or unreadable: opening it reports what is wrong.
            return;
        };
        let mode = metadata.permissions().mode() & 0o7777;
        if mode & 0o077 == 0 {
            return;
        }
        let private = mode & !0o077;
        match set_mode(path, private) {
            Ok(()) => tracing::warn!(
                path = %path.display(),
                was = %format_args!("{mode:04o}"),
                now = %format_args!("{private:04o}"),
                "{what} was open to the group or others; restricted it to its owner"
            ),
            Err(error) => tracing::warn!(
                path = %path.display(),
                mode = %format_args!("{mode:04o}"),
                %error,
                "{what} is open to the group or others and cannot be restricted to its owner"
            ),
        }
    }
    #[cfg(not(unix))]
    let _ = (path, what);
}
