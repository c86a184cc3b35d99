//! What `sync` did, for the cron mail: printed only when something changed.

use super::plan::change_counts;
use super::{list_size, short_digest};
use crate::apply::Outcome;
use crate::plan::Plan;
use crate::sanitize::for_terminal;
use std::io::{self, Write};

/// Past this many, domains are counted, not listed: a first sync of the whole list (or a large change)
/// is one short cron mail; `bits-tls diff` has every name, and so has the history up to
/// [`crate::state::HISTORY_LIST_AT_MOST`].
pub const LIST_AT_MOST: usize = 20;

fn listed(out: &mut impl Write, sign: char, domains: &[crate::domain::Domain]) -> io::Result<()> {
    for d in domains.iter().take(LIST_AT_MOST) {
        writeln!(out, "  {sign} {d}")?;
    }
    if domains.len() > LIST_AT_MOST {
        // The history line keeps the first names of a long list and their count.
        let kept = if domains.len() <= crate::state::HISTORY_LIST_AT_MOST {
            "the history has every one".to_string()
        } else {
            format!(
                "the history names the first {}; the state has the whole list",
                crate::state::HISTORY_LIST_AT_MOST
            )
        };
        writeln!(
            out,
            "  {sign} … and {} more ({kept})",
            domains.len() - LIST_AT_MOST
        )?;
    }
    Ok(())
}

pub fn applied(out: &mut impl Write, p: &Plan, outcome: &Outcome) -> io::Result<()> {
    let ch = &p.changes;
    if p.provenance_only() {
        return writeln!(
            out,
            "bits-tls: recorded the list's new source ({}; sha256 {}): the same participants, so no file was written and no hook run",
            list_size(p.list.participants.len(), p.list.domains().len()),
            short_digest(&p.provenance.sha256)
        );
    }
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
    for a in &p.local {
        writeln!(out, "  local: {}", for_terminal(&a.to_string()))?;
    }
    if !ch.is_empty() {
        writeln!(out, "  {}", change_counts(ch))?;
        listed(out, '+', &ch.domains_added)?;
        listed(out, '-', &ch.domains_removed)?;
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
