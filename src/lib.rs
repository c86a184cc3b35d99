//! bits-tls: keep a mail server's forced-TLS configuration in step with the Bits master list
//! (<https://bits.no/tls>).
//!
//! The pipeline is `source → page → csv → list → plan → render → write`; each stage is a module here and
//! the `bits-tls` binary is a thin adapter over them.

pub mod domain;
pub mod list;
pub mod org_number;
pub mod sanitize;
