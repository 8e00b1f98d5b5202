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

/// Parses the command line like [`clap::Parser::parse`], except that under
/// `--json` a command line that does not parse is a JSON document on stdout
/// too (`{"error":"usage","message":…}`, exit 2), like every other failure.
/// Its message names what is wrong, not what was typed; help and version
/// print as usual.
///
/// ```no_run
/// #[derive(clap::Parser)]
/// struct App {
///     #[arg(long, global = true)]
///     json: bool,
/// }
/// let app: App = es_app::cli::out::parse();
/// # let _ = app.json;
/// ```
pub fn parse<P: clap::Parser>() -> P {
    match P::try_parse() {
        Ok(parsed) => parsed,
        Err(error) => {
            let json = std::env::args_os().any(|a| a == "--json");
            if !json || !error.use_stderr() {
                error.exit();
            }
            let document = serde_json::json!({
                "error": "usage",
                "message": usage_message(error.kind()),
            });
            line(format_args!("{document}"));
            std::process::exit(2)
        }
    }
}

/// What is wrong with a command line, without echoing it.
fn usage_message(kind: clap::error::ErrorKind) -> String {
    use clap::error::ErrorKind as K;
    let what = match kind {
        K::UnknownArgument => "an argument this command does not take",
        K::InvalidSubcommand => "no such command",
        K::InvalidValue | K::ValueValidation | K::InvalidUtf8 => {
            "a value this option does not take"
        }
        K::MissingRequiredArgument => "a required argument is missing",
        K::MissingSubcommand | K::DisplayHelpOnMissingArgumentOrSubcommand => {
            "a command is missing"
        }
        K::NoEquals => "an option that needs `=` before its value",
        K::TooManyValues | K::TooFewValues | K::WrongNumberOfValues => {
            "the wrong number of values for an option"
        }
        K::ArgumentConflict => "options that cannot be used together",
        _ => "a command line that does not parse",
    };
    format!("{what} (see --help)")
}

/// How every command prints a time, in text and JSON alike: RFC 3339 in UTC
/// with `Z`, as serde writes the stored times (`2026-12-04T20:51:55.618141Z`).
///
/// ```
/// use chrono::TimeZone;
/// let t = chrono::Utc.with_ymd_and_hms(2026, 12, 4, 20, 51, 55).unwrap();
/// assert_eq!(es_app::cli::out::timestamp(&t), "2026-12-04T20:51:55Z");
/// ```
pub fn timestamp(at: &chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}
