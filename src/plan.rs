//! The plan: what a sync would change. The effective list (the fetched list less own domains and
//! exclusions, plus local additions), what changed since the state, what every output file would
//! become (respecting managed blocks in files bits-tls does not own), and whether a safety guard trips.

use crate::config::DomainEntry;
use crate::domain::{Domain, DomainRules};
use crate::list::{Participant, ParticipantList, Warning};
use chrono::NaiveDate;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;

/// Local changes to the list from the configuration.
#[derive(Debug, Clone, Default)]
pub struct Adjustments {
    pub own_domains: Vec<Domain>,
    pub extra: Vec<DomainEntry>,
    pub exclude: Vec<DomainEntry>,
}

/// The list the outputs are rendered from: own domains and active exclusions removed, active additions
/// added (as one participant per reason). Expired entries and vanished own domains are warnings.
pub fn effective(
    list: &ParticipantList,
    adj: &Adjustments,
    today: NaiveDate,
) -> (ParticipantList, Vec<Warning>) {
    let mut warnings = Vec::new();
    let listed: HashSet<&Domain> = list.participants.iter().flat_map(|p| &p.domains).collect();
    for own in &adj.own_domains {
        if !listed.contains(own) {
            warnings.push(Warning::general(format!(
                "own domain `{own}` is not on the list (has the registration with Bits lapsed?)"
            )));
        }
    }
    let rules = DomainRules::default();
    let mut removed: HashSet<Domain> = adj.own_domains.iter().cloned().collect();
    for e in &adj.exclude {
        let Ok(d) = Domain::parse(&e.domain, rules) else {
            continue;
        };
        if e.active(today) {
            if !listed.contains(&d) {
                warnings.push(Warning::general(format!(
                    "exclusion of `{d}` is not needed: it is not on the list"
                )));
            }
            removed.insert(d);
        } else {
            warnings.push(Warning::general(format!(
                "exclusion of `{d}` expired on {}; it no longer applies (reason was: {})",
                e.expires.map(|x| x.to_string()).unwrap_or_default(),
                crate::sanitize::one_line(&e.reason)
            )));
        }
    }
    let mut participants: Vec<Participant> = list
        .participants
        .iter()
        .filter_map(|p| {
            let domains: Vec<Domain> = p
                .domains
                .iter()
                .filter(|d| !removed.contains(*d))
                .cloned()
                .collect();
            (!domains.is_empty()).then(|| Participant {
                domains,
                ..p.clone()
            })
        })
        .collect();
    let mut extras: BTreeMap<String, Vec<Domain>> = BTreeMap::new();
    for e in &adj.extra {
        let Ok(d) = Domain::parse(&e.domain, rules) else {
            continue;
        };
        if !e.active(today) {
            warnings.push(Warning::general(format!(
                "extra domain `{d}` expired on {}; it is no longer added",
                e.expires.map(|x| x.to_string()).unwrap_or_default()
            )));
        } else if listed.contains(&d) {
            warnings.push(Warning::general(format!(
                "extra domain `{d}` is on the list now; the entry can go"
            )));
        } else if !removed.contains(&d) {
            extras
                .entry(crate::sanitize::one_line(&e.reason))
                .or_default()
                .push(d);
        }
    }
    for (reason, mut domains) in extras {
        domains.sort();
        domains.dedup();
        participants.push(Participant {
            organization: format!("Local addition: {reason}"),
            org_number: None,
            domains,
            enrolled: None,
            enforces_inbound_tls: None,
        });
    }
    (
        ParticipantList {
            participants,
            warnings: list.warnings.clone(),
        },
        warnings,
    )
}

/// How the list changed between the state and now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ListChanges {
    pub joined: Vec<Participant>,
    pub left: Vec<Participant>,
    pub changed: Vec<ParticipantChange>,
    pub domains_added: Vec<Domain>,
    pub domains_removed: Vec<Domain>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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

pub const BEGIN: &str = "# BEGIN bits-tls (managed block: edits inside are overwritten)";
pub const END: &str = "# END bits-tls";

/// What the file should contain: `rendered` alone if the file is new or wholly ours; otherwise the
/// rendered text between BEGIN/END markers with every other byte of the file kept.
pub fn merge_managed(existing: Option<&str>, rendered: &str, use_blocks: bool) -> String {
    let Some(old) = existing.filter(|e| !e.trim().is_empty()) else {
        return rendered.to_string();
    };
    if !use_blocks {
        return rendered.to_string();
    }
    let block = format!("{BEGIN}\n{rendered}{END}\n");
    let begin = old.lines().position(|l| l == BEGIN);
    let end = old.lines().position(|l| l == END);
    if let (Some(b), Some(e)) = (begin, end) {
        if b < e {
            let lines: Vec<&str> = old.split_inclusive('\n').collect();
            let mut out: String = lines[..b].concat();
            out.push_str(&block);
            out.push_str(&lines[e + 1..].concat());
            return out;
        }
    }
    if is_ours(old) {
        return rendered.to_string();
    }
    let mut out = old.to_string();
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&block);
    out
}

/// A file bits-tls wrote whole: its header says so in the first lines.
fn is_ours(text: &str) -> bool {
    text.lines()
        .take(3)
        .any(|l| l.starts_with("# Generated by bits-tls "))
}

/// One output file's change.
#[derive(Debug, Clone, Serialize)]
pub struct FileChange {
    pub target: String,
    pub path: PathBuf,
    /// The file's current content (`None`: it does not exist).
    #[serde(skip)]
    pub before: Option<String>,
    #[serde(skip)]
    pub after: String,
    pub status: FileStatus,
    /// Unified diff, empty when unchanged.
    pub diff: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileStatus {
    Create,
    Update,
    Unchanged,
}

impl FileChange {
    pub fn new(target: String, path: PathBuf, before: Option<String>, after: String) -> FileChange {
        let status = match &before {
            None => FileStatus::Create,
            Some(b) if *b == after => FileStatus::Unchanged,
            Some(_) => FileStatus::Update,
        };
        let diff = if status == FileStatus::Unchanged {
            String::new()
        } else {
            let shown = path.display().to_string();
            similar::TextDiff::from_lines(before.as_deref().unwrap_or(""), &after)
                .unified_diff()
                .context_radius(2)
                .header(
                    if before.is_some() {
                        &shown
                    } else {
                        "/dev/null"
                    },
                    &shown,
                )
                .to_string()
        };
        FileChange {
            target,
            path,
            before,
            after,
            status,
            diff,
        }
    }

    pub fn changed(&self) -> bool {
        self.status != FileStatus::Unchanged
    }

    /// (lines added, lines removed).
    pub fn counts(&self) -> (usize, usize) {
        let mut added = 0;
        let mut removed = 0;
        for l in self.diff.lines() {
            if l.starts_with('+') && !l.starts_with("+++") {
                added += 1;
            } else if l.starts_with('-') && !l.starts_with("---") {
                removed += 1;
            }
        }
        (added, removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(name: &str, nr: Option<&str>, domains: &[&str]) -> Participant {
        Participant {
            organization: name.into(),
            org_number: nr.map(String::from),
            domains: domains
                .iter()
                .map(|d| Domain::parse(d, DomainRules::default()).unwrap())
                .collect(),
            enrolled: None,
            enforces_inbound_tls: None,
        }
    }

    fn list(ps: Vec<Participant>) -> ParticipantList {
        ParticipantList {
            participants: ps,
            warnings: vec![],
        }
    }

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn entry(d: &str, expires: Option<&str>) -> DomainEntry {
        DomainEntry {
            domain: d.into(),
            reason: "because".into(),
            expires: expires.map(day),
        }
    }

    #[test]
    fn effective_list() {
        let l = list(vec![
            p("A", None, &["a.no", "own.no"]),
            p("B", None, &["b.no"]),
            p("C", None, &["c.no"]),
        ]);
        let adj = Adjustments {
            own_domains: vec![
                Domain::parse("own.no", DomainRules::default()).unwrap(),
                Domain::parse("gone.no", DomainRules::default()).unwrap(),
            ],
            exclude: vec![
                entry("b.no", Some("2030-01-01")),
                entry("c.no", Some("2020-01-01")),
            ],
            extra: vec![
                entry("x.no", None),
                entry("old.no", Some("2020-01-01")),
                entry("a.no", None),
            ],
        };
        let (eff, warnings) = effective(&l, &adj, day("2026-11-23"));
        let doms: Vec<String> = eff.domains().iter().map(|d| d.to_string()).collect();
        assert_eq!(doms, ["a.no", "c.no", "x.no"]);
        assert_eq!(
            eff.participants.last().unwrap().organization,
            "Local addition: because"
        );
        let w: Vec<&str> = warnings.iter().map(|w| w.message.as_str()).collect();
        assert_eq!(w.len(), 4, "{w:#?}");
        assert!(w[0].contains("`gone.no` is not on the list"));
        assert!(w[1].contains("exclusion of `c.no` expired on 2020-01-01"));
        assert!(w[2].contains("`old.no` expired"));
        assert!(w[3].contains("`a.no` is on the list now"));
    }

    #[test]
    fn changes_by_identity() {
        let before = vec![
            p("A", Some("916960190"), &["a.no"]),
            p("B", None, &["b.no"]),
            p("Gone", None, &["g.no"]),
        ];
        let after = vec![
            p("A renamed", Some("916960190"), &["a.no", "a2.no"]),
            p("b", None, &["b.no"]),
            p("New", None, &["n.no"]),
        ];
        let ch = list_changes(&before, &after);
        assert_eq!(ch.joined.len(), 1);
        assert_eq!(ch.left[0].organization, "Gone");
        assert_eq!(ch.changed.len(), 2, "renamed A and re-cased b");
        let added: Vec<String> = ch.domains_added.iter().map(|d| d.to_string()).collect();
        assert_eq!(added, ["a2.no", "n.no"]);
        assert_eq!(ch.domains_removed.len(), 1);
        assert!(list_changes(&before, &before).is_empty());
    }

    #[test]
    fn guard_trips_on_empty_and_large_removals() {
        let g = Guard {
            max_removed_percent: 10,
            min_domains: 10,
        };
        let many: Vec<Participant> = (0..20)
            .map(|i| p(&format!("P{i}"), None, &[&format!("d{i}.no")]))
            .collect();
        assert!(guard(None, &list(vec![]), g)
            .unwrap()
            .contains("no domains"));
        assert_eq!(guard(None, &list(many.clone()), g), None);
        assert_eq!(
            guard(Some(&many), &list(many[2..].to_vec()), g),
            None,
            "2 of 20 is 10 %"
        );
        assert!(guard(Some(&many), &list(many[3..].to_vec()), g)
            .unwrap()
            .contains("removes 3 of 20 domains (15 %)"));
        let few = many[..5].to_vec();
        assert_eq!(
            guard(Some(&few), &list(few[..1].to_vec()), g),
            None,
            "under 10 domains the share is not checked"
        );
    }

    #[test]
    fn managed_blocks_keep_foreign_bytes() {
        let rendered = "# Generated by bits-tls 0.1.0\nbits.no verify\n";
        assert_eq!(merge_managed(None, rendered, true), rendered);
        assert_eq!(
            merge_managed(
                Some("# Generated by bits-tls 0.0.9\nold.no verify\n"),
                rendered,
                true
            ),
            rendered
        );
        let foreign = "# my own entries\nlocal.example verify\r\nno-newline-at-end";
        let merged = merge_managed(Some(foreign), rendered, true);
        assert!(merged.starts_with(
            "# my own entries\nlocal.example verify\r\nno-newline-at-end\n# BEGIN bits-tls"
        ));
        let again = merge_managed(
            Some(&merged),
            "# Generated by bits-tls 0.1.0\nfno.no verify\n",
            true,
        );
        assert!(again.starts_with(foreign));
        assert!(
            again.contains("fno.no verify\n# END bits-tls\n") && !again.contains("bits.no verify")
        );
        let with_tail = format!("{merged}# trailing own line\n");
        let again = merge_managed(Some(&with_tail), rendered, true);
        assert!(again.ends_with("# END bits-tls\n# trailing own line\n"));
        assert_eq!(
            merge_managed(Some(foreign), rendered, false),
            rendered,
            "templates replace whole files"
        );
    }
}
