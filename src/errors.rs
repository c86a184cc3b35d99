//! Turning an error chain into advice: the first layer that knows how to fix it supplies the hint.

use crate::render::RenderError;
use crate::source::http::HttpError;
use crate::source::FetchError;

/// The hint for the first error in the chain that has one.
pub fn hint(err: &anyhow::Error) -> Option<String> {
    err.chain().find_map(|e| {
        if let Some(e) = e.downcast_ref::<FetchError>() {
            e.hint()
        } else if let Some(e) = e.downcast_ref::<HttpError>() {
            e.hint()
        } else if let Some(e) = e.downcast_ref::<RenderError>() {
            e.hint()
        } else if let Some(e) = e.downcast_ref::<crate::config::ConfigError>() {
            e.hint()
        } else if let Some(e) = e.downcast_ref::<crate::state::StateError>() {
            e.hint()
        } else if let Some(e) = e.downcast_ref::<crate::write::WriteError>() {
            e.hint()
        } else if let Some(e) = e.downcast_ref::<crate::journal::JournalError>() {
            e.hint()
        } else if let Some(e) = e.downcast_ref::<crate::verify::VerifyError>() {
            e.hint()
        } else {
            None
        }
    })
}

/// Was this error caused by stdout being closed early (`bits-tls fetch | head`)? Then we exit quietly.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
