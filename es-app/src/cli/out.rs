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
        Err(error) => usage_error(&error),
    }
}

/// Ends the process for a command line that does not parse (or asked for
/// help): clap's own output, or the JSON document under `--json`.
fn usage_error(error: &clap::Error) -> ! {
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

/// A table as the CLI prints it: a header in capitals, columns aligned and
/// two spaces apart, no borders, nothing wrapped (a pipe gets whole lines),
/// numbers right-aligned in the `right` columns. Widths count characters as
/// a terminal shows them.
///
/// ```
/// let text = es_app::cli::out::table(
///     &["stream", "version"],
///     &[1],
///     vec![vec!["account-1".into(), "12".into()], vec!["a-2".into(), "3".into()]],
/// );
/// assert_eq!(text, "STREAM     VERSION\naccount-1       12\na-2              3\n");
/// ```
pub fn table(header: &[&str], right: &[usize], rows: Vec<Vec<String>>) -> String {
    use comfy_table::{CellAlignment, ContentArrangement, Table, presets};
    let mut table = Table::new();
    table
        .load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.iter().map(|h| h.to_uppercase()));
    for row in rows {
        table.add_row(row);
    }
    let last = header.len().saturating_sub(1);
    for (i, column) in table.column_iter_mut().enumerate() {
        column.set_padding((0, if i == last { 0 } else { 2 }));
        if right.contains(&i) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    let mut text = String::new();
    for line in table.lines() {
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

/// [`parse`], with the top-level commands listed in groups under headings of
/// their own (after the options, as cargo does) instead of one `Commands:`
/// list. Every visible command must be in exactly one group, clap's `help`
/// included.
///
/// ```no_run
/// #[derive(clap::Parser)]
/// struct App {
///     #[command(subcommand)]
///     command: Command,
/// }
/// #[derive(clap::Subcommand)]
/// enum Command {
///     /// Open an account.
///     Open,
///     /// Apply the migrations.
///     Migrate,
/// }
/// let app: App = es_app::cli::out::parse_grouped(&[
///     ("Accounts", &["open"]),
///     ("Operations", &["migrate", "help"]),
/// ]);
/// # let _ = app.command;
/// ```
pub fn parse_grouped<P: clap::Parser>(groups: &[(&str, &[&str])]) -> P {
    let command = grouped(P::command(), groups);
    let parsed = command
        .try_get_matches()
        .and_then(|mut matches| P::from_arg_matches_mut(&mut matches));
    match parsed {
        Ok(parsed) => parsed,
        Err(error) => usage_error(&error),
    }
}

/// `command` with its subcommands listed by `groups` (see [`parse_grouped`]).
///
/// # Panics
///
/// If a visible subcommand is in no group or in two, or a group names a
/// command that does not exist: a mistake of the program, caught by its
/// first test of `--help`.
pub fn grouped(mut command: clap::Command, groups: &[(&str, &[&str])]) -> clap::Command {
    // Built, so that clap's own `help` command is there to be grouped too.
    command.build();
    let visible: Vec<String> = command
        .get_subcommands()
        .filter(|c| !c.is_hide_set())
        .map(|c| c.get_name().to_owned())
        .collect();
    for name in &visible {
        let times = groups
            .iter()
            .filter(|(_, names)| names.contains(&name.as_str()))
            .count();
        assert_eq!(times, 1, "the command `{name}` is in {times} help groups");
    }
    let width = visible.iter().map(String::len).max().unwrap_or(0);
    let mut list = String::new();
    for (heading, names) in groups {
        list.push_str(&format!("{heading}:\n"));
        for name in *names {
            let sub = command
                .find_subcommand(name)
                .unwrap_or_else(|| panic!("the help group `{heading}` names no command `{name}`"));
            let about = sub.get_about().map(ToString::to_string).unwrap_or_default();
            list.push_str(&format!("  {name:width$}  {about}\n"));
        }
        list.push('\n');
    }
    for name in &visible {
        command = command.mut_subcommand(name, |c| c.hide(true));
    }
    let tail = command
        .get_after_help()
        .map(|a| format!("\n{a}"))
        .unwrap_or_default();
    let usage = format!("{} [OPTIONS] <COMMAND>", command.get_name());
    command
        .override_usage(usage)
        .after_help(format!("{}{tail}", list.trim_end()))
}
