//! What changed between the list in the state and the list now, and the guards that refuse a change too
//! large to apply unseen.

use crate::domain::Domain;
use crate::list::{Participant, ParticipantList};
use std::collections::{HashMap, HashSet};

/// How the list changed between the state and now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListChanges {
    pub joined: Vec<Participant>,
    pub left: Vec<Participant>,
    pub changed: Vec<ParticipantChange>,
    pub domains_added: Vec<Domain>,
    pub domains_removed: Vec<Domain>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParticipantChange {
    pub before: Participant,
    pub after: Participant,
}

impl ListChanges {
    pub fn is_empty(&self) -> bool {
        self.joined.is_empty() && self.left.is_empty() && self.changed.is_empty()
    }
}

/// A participant is the same organisation if its organisation number matches, or, without one, its name.
fn identity(p: &Participant) -> String {
    match &p.org_number {
        Some(n) => format!("#{n}"),
        None => format!("@{}", p.organization.to_lowercase()),
    }
}

pub fn list_changes(before: &[Participant], after: &[Participant]) -> ListChanges {
    // Hash maps and sets: the lists can hold 100,000 participants, and only the (small) results need an
    // order.
    fn by_id(ps: &[Participant]) -> HashMap<String, &Participant> {
        ps.iter().map(|p| (identity(p), p)).collect()
    }
    let (b, a) = (by_id(before), by_id(after));
    let mut ch = ListChanges::default();
    for (id, p) in &a {
        match b.get(id) {
            None => ch.joined.push((*p).clone()),
            Some(old) if old != p => ch.changed.push(ParticipantChange {
                before: (*old).clone(),
                after: (*p).clone(),
            }),
            Some(_) => {}
        }
    }
    ch.left = b
        .iter()
        .filter(|(id, _)| !a.contains_key(*id))
        .map(|(_, p)| (*p).clone())
        .collect();
    let by_name = |p: &Participant| (p.organization.to_lowercase(), p.domains.first().cloned());
    ch.joined.sort_by_key(by_name);
    ch.left.sort_by_key(by_name);
    ch.changed.sort_by_key(|c| by_name(&c.after));
    fn domains(ps: &[Participant]) -> HashSet<&Domain> {
        ps.iter().flat_map(|p| &p.domains).collect()
    }
    let (db, da) = (domains(before), domains(after));
    ch.domains_added = da.difference(&db).map(|d| (*d).clone()).collect();
    ch.domains_removed = db.difference(&da).map(|d| (*d).clone()).collect();
    ch.domains_added.sort();
    ch.domains_removed.sort();
    ch
}

/// Safety thresholds.
#[derive(Debug, Clone, Copy)]
pub struct Guard {
    pub max_removed_percent: u32,
    pub min_domains: usize,
}

/// Why a sync must not go ahead without `--force`, if it must not.
pub fn guard(before: Option<&[Participant]>, after: &ParticipantList, g: Guard) -> Option<String> {
    let new: HashSet<&Domain> = after.participants.iter().flat_map(|p| &p.domains).collect();
    if new.is_empty() {
        return Some(
            "the list holds no domains; applying it would remove forced TLS for everyone".into(),
        );
    }
    let before = before?;
    let old: HashSet<&Domain> = before.iter().flat_map(|p| &p.domains).collect();
    let removed = old.iter().filter(|d| !new.contains(**d)).count();
    if old.len() >= g.min_domains && removed * 100 > g.max_removed_percent as usize * old.len() {
        return Some(format!(
            "the new list removes {removed} of {} domains ({:.0} %), more than the {} % allowed",
            old.len(),
            removed as f64 * 100.0 / old.len() as f64,
            g.max_removed_percent
        ));
    }
    None
}
