//! The command line, as data only (clap derive). `settings` turns it into checked options; nothing
//! outside `commands` and `settings` sees these types.

use crate::list::columns::ColumnOverride;
use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Keep a mail server's forced-TLS configuration in step with the Bits master list.
///
/// Bits (bits.no/tls) publishes the Norwegian banks, insurers and public bodies that promise to send
/// each other mail only over verified TLS. bits-tls fetches that list, validates every domain, and turns
/// it into Postfix, Exim and Exchange configuration.
#[derive(Debug, Parser)]
#[command(
    name = "bits-tls",
    version,
    propagate_version = true,
    disable_help_subcommand = true
)]
#[command(after_long_help = crate::exit::HELP)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Print only errors (no warnings or notes)
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Print what is being done (requests, choices made)
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,
    /// When to colour diagnostics; NO_COLOR is honoured with `auto`
    #[arg(long, global = true, value_enum, default_value_t = ColorWhen::Auto, value_name = "WHEN")]
    pub color: ColorWhen,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorWhen {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Fetch and parse the master list and print it
    ///
    /// The source may be the Bits page (the CSV link or an inline table is found on it) or the CSV
    /// itself, as a URL or a file; which one is decided by the content. Rows that cannot be used are
    /// reported as warnings with their line number and left out.
    Fetch(FetchArgs),
    /// Print a shell completion script
    Completions {
        /// The shell to complete for
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff)
    Man,
}

#[derive(Debug, Args)]
pub struct FetchArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Output format
    #[arg(long, value_enum, default_value_t = ListFormat::Text)]
    pub format: ListFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    /// A table and a summary line, for people
    Text,
    /// The contract's JSON: source, participants, warnings
    Json,
    /// One row per domain, with the list's English headers (re-readable by --source)
    Csv,
}

/// Where the list comes from and how it is downloaded.
#[derive(Debug, Args, Clone, Default)]
pub struct SourceArgs {
    /// The Bits page or the CSV, as an https:// URL or a file [default: https://bits.no/tls]
    #[arg(long, env = "BITS_TLS_SOURCE", value_name = "URL|PATH")]
    pub source: Option<String>,
    /// Allow plain http:// for the page, the CSV link and redirects
    #[arg(long)]
    pub allow_http: bool,
    /// Also trust the CA certificates in this PEM file (e.g. a TLS-inspecting proxy)
    #[arg(long, value_name = "PATH")]
    pub ca_file: Option<PathBuf>,
    /// Give up on one request after this many seconds [default: 30]
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout: Option<u64>,
    /// Refuse a download larger than this many bytes [default: 8388608]
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_size: Option<u64>,
    /// Say which column holds what, when the headers are not recognised: FIELD=COLUMN,… where COLUMN is a
    /// number (from 1) or the header's text; fields: organization, org_number, domain, enrolled,
    /// enforces_inbound_tls
    #[arg(long, value_name = "FIELD=COLUMN,…")]
    pub columns: Option<ColumnOverride>,
}
