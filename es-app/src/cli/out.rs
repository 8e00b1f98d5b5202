//! Standard output that never panics: a reader that went away (`| head`)
//! ends the process quietly with the status a `SIGPIPE` would give (141), any
//! other failure to write (a full disk, `/dev/full`) with one `error:` line
//! on stderr and status 74 (`EX_IOERR`).

use std::io::{self, Write as _};

/// Writes one line to standard output, or ends the process as the module
/// says. What [`outln!`](crate::outln) calls.
pub fn line(args: std::fmt::Arguments<'_>) {
    let mut out = io::stdout().lock();
    let written = out
        .write_fmt(args)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
    if let Err(error) = written {
        drop(out);
        gone(&error);
    }
}

/// Ends the process for a standard output that cannot be written.
pub fn gone(error: &io::Error) -> ! {
    if error.kind() == io::ErrorKind::BrokenPipe {
        std::process::exit(141);
    }
    let _ = writeln!(
        io::stderr(),
        "error: cannot write to standard output: {error}"
    );
    std::process::exit(74)
}

/// `println!` for command-line tools: see [`out`](crate::cli::out).
///
/// ```
/// es_app::outln!("{} event(s)", 3);
/// ```
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::out::line(format_args!($($arg)*))
    };
}
