//! bits-tls: keep a mail server's forced-TLS configuration in step with the Bits master list
//! (<https://bits.no/tls>).
//!
//! The pipeline is `source → page → csv → list → plan → render → write`; each stage is a module here and
//! the `bits-tls` binary is a thin adapter over them (`cli` is the command line as data, `settings`
//! merges it with defaults, `commands` holds one adapter per subcommand).

pub mod cli;
pub mod commands;
pub mod config;
pub mod domain;
pub mod engine;
pub mod errors;
pub mod exit;
pub mod list;
pub mod notify;
pub mod org_number;
pub mod plan;
pub mod printer;
pub mod render;
pub mod report;
pub mod sanitize;
pub mod settings;
pub mod source;
pub mod state;
pub mod write;
