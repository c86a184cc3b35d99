//! What `sync` did, for the cron mail: printed only when something changed.

use super::plan::change_counts;
use super::{list_size, short_digest};
use crate::apply::Outcome;
use crate::plan::Plan;
use crate::sanitize::for_terminal;
use std::io::{self, Write};

pub fn applied(out: &mut impl Write, p: &Plan, outcome: &Outcome) -> io::Result<()> {
    let ch = &p.changes;
    // Exchange scripts are written, not applied: nothing changes until someone runs them.
    let only_scripts = p.files.iter().all(|f| f.output.target.is_script());
    writeln!(
        out,
        "bits-tls: {} the Bits list ({}; sha256 {})",
        if only_scripts {
            "wrote the scripts for"
        } else {
            "applied"
        },
        list_size(p.list.participants.len(), p.list.domains().len()),
        short_digest(&p.provenance.sha256)
    )?;
    if !ch.is_empty() {
        writeln!(out, "  {}", change_counts(ch))?;
        for d in &ch.domains_added {
            writeln!(out, "  + {d}")?;
        }
        for d in &ch.domains_removed {
            writeln!(out, "  - {d}")?;
        }
    }
    for f in p.files.iter().filter(|f| f.changed()) {
        let (a, r) = f.counts();
        writeln!(
            out,
            "  wrote {} (+{a} -{r} lines){}",
            for_terminal(&f.path().display().to_string()),
            if f.output.target.is_script() {
                "; a script: nothing is applied until it runs on the Exchange server or tenant"
            } else {
                ""
            }
        )?;
    }
    for h in &outcome.hooks_run {
        writeln!(out, "  ran {}", for_terminal(h))?;
    }
    Ok(())
}
