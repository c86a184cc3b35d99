//! Whether standard output and standard error take colour (`--color`, `NO_COLOR`, a terminal), asked
//! once per run and remembered: a list with 8,900 warnings costs one terminal check, not 8,900.
//!
//! The answer depends on `--color`, which `commands::run` sets before anything is printed.

use std::sync::OnceLock;

static STDOUT: OnceLock<bool> = OnceLock::new();
static STDERR: OnceLock<bool> = OnceLock::new();

/// Whether data on standard output is coloured (a diff's `+`/`-` lines).
pub fn stdout_colour() -> bool {
    *STDOUT.get_or_init(|| takes_colour(&std::io::stdout()))
}

/// Whether diagnostics on standard error are coloured.
pub fn stderr_colour() -> bool {
    *STDERR.get_or_init(|| takes_colour(&std::io::stderr()))
}

fn takes_colour<S: anstream::stream::RawStream>(stream: &S) -> bool {
    !matches!(
        anstream::AutoStream::choice(stream),
        anstream::ColorChoice::Never
    )
}
