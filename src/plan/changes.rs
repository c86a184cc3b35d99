//! What changed between the list in the state and the list now, and the guards that refuse a change too
//! large to apply unseen.

use crate::domain::Domain;
use crate::list::{Participant, ParticipantList};
use foldhash::{HashMap, HashSet};

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
#[derive(PartialEq, Eq, Hash)]
enum Identity<'a> {
    OrgNumber(&'a str),
    Name(String),
}

fn identity(p: &Participant) -> Identity<'_> {
    match &p.org_number {
        Some(n) => Identity::OrgNumber(n),
        None => Identity::Name(p.organization.to_lowercase()),
    }
}

pub fn list_changes(before: &[Participant], after: &[Participant]) -> ListChanges {
    // Hash maps and sets: the lists can hold 100,000 participants, and only the (small) results need an
    // order. The maps borrow from the lists; a later row with the same identity is the one that counts.
    fn by_id(ps: &[Participant]) -> HashMap<Identity<'_>, &Participant> {
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
    // Each key is computed once, not on every comparison (a first sync sorts the whole list).
    let by_name = |p: &Participant| (p.organization.to_lowercase(), p.domains.first().cloned());
    ch.joined.sort_by_cached_key(by_name);
    ch.left.sort_by_cached_key(by_name);
    ch.changed.sort_by_cached_key(|c| by_name(&c.after));
    fn domains(ps: &[Participant]) -> HashSet<&Domain> {
        ps.iter().flat_map(|p| &p.domains).collect()
    }
    let (db, da) = (domains(before), domains(after));
    ch.domains_added = da.difference(&db).map(|d| (*d).clone()).collect();
    ch.domains_removed = db.difference(&da).map(|d| (*d).clone()).collect();
    ch.domains_added.sort_unstable();
    ch.domains_removed.sort_unstable();
    ch
}

/// Safety thresholds.
#[derive(Debug, Clone, Copy)]
pub struct Guard {
    pub max_removed_percent: u32,
    pub min_domains: usize,
    /// Refuse a list that adds more than this share of the previous list's domains.
    pub max_added_percent: u32,
    /// How long the baseline of the shrink guard holds (see [`guard_baseline`]).
    pub baseline_days: u32,
}

/// Why a sync must not go ahead without `--force`, if it must not.
pub fn guard(before: Option<&[Participant]>, after: &ParticipantList, g: Guard) -> Option<String> {
    if after.participants.iter().all(|p| p.domains.is_empty()) {
        return Some(
            "the list holds no domains; applying it would remove forced TLS for everyone".into(),
        );
    }
    let before = before?;
    let new: HashSet<&Domain> = after.participants.iter().flat_map(|p| &p.domains).collect();
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
    // A list that suddenly grows is as suspect as one that shrinks: a broken export, or a hostile one.
    let added = new.iter().filter(|d| !old.contains(**d)).count();
    if old.len() >= g.min_domains && added * 100 > g.max_added_percent as usize * old.len() {
        return Some(format!(
            "the new list adds {added} domains to the {} listed ({:.0} %), more than the {} % allowed",
            old.len(),
            added as f64 * 100.0 / old.len() as f64,
            g.max_added_percent
        ));
    }
    None
}

/// The list the shrink guard also measures against: the domains as they were at the last forced sync,
/// or when the baseline was last renewed, at most `safety.baseline_days` ago. Without it, many small
/// cuts (each under the threshold) could empty the list unseen.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    #[serde(with = "crate::source::seconds_utc")]
    pub since: chrono::DateTime<chrono::Utc>,
    pub domains: Vec<Domain>,
}

impl Baseline {
    fn current(&self, today: chrono::NaiveDate, days: u32) -> bool {
        (today - self.since.date_naive()).num_days() < days as i64
    }
}

/// Why the new list must not be applied without `--force` measured against the baseline, if it must
/// not: it removes more than `max_removed_percent` of the baseline's domains.
pub fn guard_baseline(
    baseline: Option<&Baseline>,
    after: &ParticipantList,
    g: Guard,
    today: chrono::NaiveDate,
) -> Option<String> {
    let b = baseline.filter(|b| b.current(today, g.baseline_days))?;
    let new: HashSet<&Domain> = after.participants.iter().flat_map(|p| &p.domains).collect();
    let removed = b.domains.iter().filter(|d| !new.contains(d)).count();
    let total = b.domains.len();
    (total >= g.min_domains && removed * 100 > g.max_removed_percent as usize * total).then(|| {
        format!(
            "the new list removes {removed} of the {total} domains listed on {} ({:.0} %), more than the {} % allowed within {} days (safety.baseline_days)",
            b.since.format("%Y-%m-%d"),
            removed as f64 * 100.0 / total as f64,
            g.max_removed_percent,
            g.baseline_days
        )
    })
}

/// The baseline to record with a new state: renewed to the new list on a forced sync or when it is
/// older than `days` (or missing), else kept.
pub fn next_baseline(
    previous: Option<&Baseline>,
    after: &ParticipantList,
    forced: bool,
    now: chrono::DateTime<chrono::Utc>,
    days: u32,
) -> Baseline {
    match previous {
        Some(b) if !forced && b.current(now.date_naive(), days) => b.clone(),
        _ => {
            let mut domains: Vec<Domain> = after
                .participants
                .iter()
                .flat_map(|p| p.domains.iter().cloned())
                .collect();
            domains.sort();
            domains.dedup();
            Baseline {
                since: now,
                domains,
            }
        }
    }
}
