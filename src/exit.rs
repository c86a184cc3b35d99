//! Exit codes: the contract scripts and CI pipelines rely on (see `bits-tls --help` and the README).

use std::process::ExitCode;

/// How a command ended. An error (exit 1) is an `Err` from `run`, never a variant here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: success, nothing to do.
    Success,
    /// 2: changes pending (`diff`, `check`), gaps found (`verify`) or applied (`sync --detailed-exitcode`);
    /// `probe`: a domain is not deliverable at its level.
    Changes,
    /// 3: refused by a safety guard (`--force` overrides).
    Refused,
    /// 4: `check`: the state is older than `--max-age`.
    Stale,
}

/// Exit 1: an error; nothing was written.
pub const ERROR: u8 = 1;

impl ExitStatus {
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Changes => 2,
            ExitStatus::Refused => 3,
            ExitStatus::Stale => 4,
        }
    }
}

impl From<ExitStatus> for ExitCode {
    fn from(s: ExitStatus) -> ExitCode {
        ExitCode::from(s.code())
    }
}

/// The exit-code table shown at the end of `--help`.
pub const HELP: &str = "\
Exit codes:
  0  success, nothing to do
  1  error; no output file or state was changed
  2  changes pending (diff, check), gaps found (verify), not deliverable (probe), or applied (sync --detailed-exitcode)
  3  refused by a safety guard (override with --force)
  4  check: the state is older than --max-age";
