//! bits-tls: keep a mail server's forced-TLS configuration in step with the Bits master list
//! (<https://bits.no/tls>).
//!
//! The pipeline is `source → page → csv → list → plan → render → write`, one home each:
//!
//! | stage | home |
//! |---|---|
//! | source: a URL or file, fetched conditionally | `source/mod.rs` (steps), `source/http.rs` |
//! | page: find the CSV link or table | `source/page.rs` |
//! | csv: decode, sniff, split | `source/csv.rs` |
//! | list: rows → validated participants | `list/` (`columns.rs`, `fields.rs`), `domain.rs` |
//! | plan: effective list, changes and guards, file changes | `plan/` (`effective.rs`, `changes.rs`, `files.rs`) |
//! | render: built-in targets declared once, templates, checks | `render/target.rs`, `render/mod.rs`, one file per mail system |
//! | write: apply the plan as a transaction; atomic files, hooks, lock; state and history | `apply.rs` (`journal.rs`), `write.rs` (`hook.rs`, `signals.rs`), `state.rs` |
//! | verify: the live MTA against the list (read-only) | `verify/` (`postfix.rs`, `exim.rs`, `evidence.rs`) |
//!
//! Around it: `report/` shows every command's result (text, JSON, Markdown), `cli.rs` is the command
//! line as data, `config.rs` reads `bits-tls.toml`, `settings.rs` merges defaults < file < flags (the
//! layers of `layer.rs`), and `commands/` holds one small adapter per subcommand for the thin binary.

pub mod apply;
pub mod cli;
pub mod commands;
pub mod config;
pub mod domain;
pub mod errors;
pub mod exit;
pub mod fault;
pub mod hook;
pub mod journal;
pub mod layer;
pub mod list;
pub mod notify;
pub mod org_number;
pub mod plan;
pub mod printer;
pub mod probe;
pub mod render;
pub mod report;
pub mod sanitize;
pub mod settings;
pub mod signals;
pub mod source;
pub mod state;
pub mod terminal;
pub mod verify;
pub mod write;
