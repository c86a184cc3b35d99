//! What an output is rendered from, as one SHA-256: the list, the local adjustments, the source named
//! in its header, the options, the templates and this bits-tls's version. The state records it per
//! output with the digest of the file written (`state::Rendered`); a run whose inputs and file are
//! both unchanged does not render that output again.

use super::options::RenderOptions;
use super::RenderInput;
use sha2::{Digest, Sha256};

/// Bump when the context or the output checks change in a way the templates and the version do not
/// show, so every output is rendered again once.
const CONTEXT_VERSION: u32 = 1;

/// A SHA-256 being fed through `std::io::Write` (for serde_json).
pub(crate) struct HashWriter(pub Sha256);

impl std::io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The digest of everything a target's output depends on but the template: computed once per run.
pub fn inputs(input: RenderInput, opts: &RenderOptions) -> [u8; 32] {
    // serde_json writes a token at a time: the hash is fed in blocks.
    let mut w = std::io::BufWriter::with_capacity(1 << 16, HashWriter(Sha256::new()));
    let p = input.provenance;
    // The source as the header names it (not when it was fetched, which no output shows).
    let head = serde_json::json!({
        "bits-tls": env!("CARGO_PKG_VERSION"),
        "context": CONTEXT_VERSION,
        "page": p.page,
        "csv": p.csv,
        "sha256": p.sha256,
        "page_updated": p.page_updated,
        "options": opts,
        "local": input.local,
    });
    serde_json::to_writer(&mut w, &head).expect("hashing cannot fail");
    serde_json::to_writer(&mut w, &input.list.participants).expect("hashing cannot fail");
    let w = w
        .into_inner()
        .map_err(|e| e.into_error())
        .expect("hashing cannot fail");
    w.0.finalize().into()
}
