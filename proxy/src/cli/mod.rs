//! One module per subcommand. They print to stdout/stderr and return an exit code; errors
//! that stop a command come back as `anyhow` errors and are printed by `main`.

pub mod check;
pub mod explain;
pub mod report;
pub mod squid_helper;

use std::io::Write;

/// Writes a line to stderr, ignoring a closed stream.
pub fn eprint(text: &str) {
    let _ = writeln!(std::io::stderr(), "{text}");
}

/// Writes text to stdout, ignoring a closed stream.
pub fn print(text: &str) {
    let _ = std::io::stdout().write_all(text.as_bytes());
}
