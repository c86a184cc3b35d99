//! The effective list: the fetched list less own domains and active exclusions, plus active local
//! additions. Expired entries and own domains that vanished from the list are warnings.

use crate::domain::Domain;
use crate::list::{Participant, ParticipantList, Warning};
use chrono::NaiveDate;
use foldhash::HashSet;
use serde::Deserialize;
use std::collections::BTreeMap;

/// A local addition or exclusion: why, and until when.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DomainEntry {
    #[serde(deserialize_with = "crate::domain::from_config")]
    pub domain: Domain,
    pub reason: String,
    #[serde(default, deserialize_with = "de_date")]
    pub expires: Option<NaiveDate>,
}

/// A TOML date (`2027-06-30`) or the same as a string.
fn de_date<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<NaiveDate>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Toml(toml::value::Datetime),
        Text(String),
    }
    let text = match Raw::deserialize(d)? {
        Raw::Toml(dt) => dt.to_string(),
        Raw::Text(s) => s,
    };
    NaiveDate::parse_from_str(&text, "%Y-%m-%d")
        .map(Some)
        .map_err(|_| serde::de::Error::custom(format!("`{text}` is not a date like 2027-06-30")))
}

impl DomainEntry {
    /// In force on `today`: an entry applies through its `expires` day and stops the day after.
    pub fn active(&self, today: NaiveDate) -> bool {
        self.expires.is_none_or(|e| today <= e)
    }
}

/// A local adjustment in force, to be shown wherever the list is: in the plan, the files' headers,
/// the history and `check`. An exclusion is a participant no longer forced, so it must never be
/// invisible.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Adjustment {
    pub kind: AdjustmentKind,
    pub domain: Domain,
    /// One line, as written in the configuration.
    pub reason: String,
    /// The last day it applies.
    pub until: Option<NaiveDate>,
    /// What an override sets (`dane-only`, `match=…`).
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AdjustmentKind {
    /// On the list, but not forced here (`[[exclude]]`).
    Excluded,
    /// Forced here though not on the list (`[[extra_domains]]`).
    Added,
    /// Forced with other settings (`[[override]]`).
    Override,
    /// One of this server's own domains (`own_domains`).
    Own,
}

impl AdjustmentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AdjustmentKind::Excluded => "excluded",
            AdjustmentKind::Added => "added",
            AdjustmentKind::Override => "override",
            AdjustmentKind::Own => "own domain",
        }
    }
}

impl std::fmt::Display for Adjustment {
    /// `excluded bank.no: their MX certificate expired (until 2026-12-31)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.kind.as_str(), self.domain)?;
        if let Some(d) = &self.detail {
            write!(f, " ({d})")?;
        }
        if !self.reason.is_empty() {
            write!(f, ": {}", self.reason)?;
        }
        if let Some(u) = self.until {
            write!(f, " (until {u})")?;
        }
        Ok(())
    }
}

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
) -> (ParticipantList, Vec<Warning>, Vec<Adjustment>) {
    let (adjusted, warnings, local) = adjusted(list, adj, today);
    (adjusted.unwrap_or_else(|| list.clone()), warnings, local)
}

/// [`effective`], with `None` for a list the adjustments leave as it is (no domain taken out, none
/// added): the list itself is the effective list, and is not copied.
pub fn adjusted(
    list: &ParticipantList,
    adj: &Adjustments,
    today: NaiveDate,
) -> (Option<ParticipantList>, Vec<Warning>, Vec<Adjustment>) {
    if adj.own_domains.is_empty() && adj.exclude.is_empty() && adj.extra.is_empty() {
        return (None, Vec::new(), Vec::new());
    }
    let mut warnings = Vec::new();
    let mut local = Vec::new();
    let entry = |kind, e: &DomainEntry| Adjustment {
        kind,
        domain: e.domain.clone(),
        reason: crate::sanitize::one_line(&e.reason),
        until: e.expires,
        detail: None,
    };
    let listed: HashSet<&Domain> = list.participants.iter().flat_map(|p| &p.domains).collect();
    for own in &adj.own_domains {
        if listed.contains(own) {
            local.push(Adjustment {
                kind: AdjustmentKind::Own,
                domain: own.clone(),
                reason: String::new(),
                until: None,
                detail: None,
            });
        } else {
            warnings.push(Warning::general(format!(
                "own domain `{own}` is not on the list (has the registration with Bits lapsed?)"
            )));
        }
    }
    let mut removed: HashSet<Domain> = adj.own_domains.iter().cloned().collect();
    for e in &adj.exclude {
        let d = e.domain.clone();
        if e.active(today) {
            if listed.contains(&d) {
                local.push(entry(AdjustmentKind::Excluded, e));
            } else {
                warnings.push(Warning::general(format!(
                    "exclusion of `{d}` is not needed: it is not on the list"
                )));
            }
            removed.insert(d);
        } else {
            warnings.push(Warning::general(format!(
                "exclusion of `{d}` expired after {}; it no longer applies (reason was: {})",
                e.expires.map(|x| x.to_string()).unwrap_or_default(),
                crate::sanitize::one_line(&e.reason)
            )));
        }
    }
    // Only a domain taken out or one added makes a list other than the one given.
    let drops = removed.iter().any(|d| listed.contains(d));
    let mut extras: BTreeMap<String, Vec<Domain>> = BTreeMap::new();
    for e in &adj.extra {
        let d = e.domain.clone();
        if !e.active(today) {
            warnings.push(Warning::general(format!(
                "extra domain `{d}` expired after {}; it is no longer added",
                e.expires.map(|x| x.to_string()).unwrap_or_default()
            )));
        } else if listed.contains(&d) {
            warnings.push(Warning::general(format!(
                "extra domain `{d}` is on the list now; the entry can go"
            )));
        } else if !removed.contains(&d) {
            local.push(entry(AdjustmentKind::Added, e));
            extras
                .entry(crate::sanitize::one_line(&e.reason))
                .or_default()
                .push(d);
        }
    }
    if !drops && extras.is_empty() {
        local.sort_by(|a, b| (a.kind, &a.domain).cmp(&(b.kind, &b.domain)));
        return (None, warnings, local);
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
    local.sort_by(|a, b| (a.kind, &a.domain).cmp(&(b.kind, &b.domain)));
    (
        Some(ParticipantList {
            participants,
            warnings: list.warnings.clone(),
        }),
        warnings,
        local,
    )
}

/// The `[[override]]` entries as adjustments, and a warning for each that names a domain not in the
/// effective list (it would silently do nothing).
pub fn overrides(
    opts: &crate::render::options::RenderOptions,
    effective: &ParticipantList,
) -> (Vec<Adjustment>, Vec<Warning>) {
    let listed: HashSet<&Domain> = effective
        .participants
        .iter()
        .flat_map(|p| &p.domains)
        .collect();
    let mut warnings = Vec::new();
    let local = opts
        .overrides
        .iter()
        .filter(|o| {
            let here = listed.contains(&o.domain);
            if !here {
                warnings.push(Warning::general(format!(
                    "the override for `{}` does nothing: the domain is not in the list this server forces",
                    o.domain
                )));
            }
            here
        })
        .map(|o| Adjustment {
            kind: AdjustmentKind::Override,
            domain: o.domain.clone(),
            reason: crate::sanitize::one_line(&o.reason),
            until: None,
            detail: Some(crate::render::postfix::policy_value(&o.postfix(&opts.postfix))),
        })
        .collect();
    (local, warnings)
}
