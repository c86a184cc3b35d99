//! The effective list: the fetched list less own domains and active exclusions, plus active local
//! additions. Expired entries and own domains that vanished from the list are warnings.

use crate::domain::Domain;
use crate::list::{Participant, ParticipantList, Warning};
use chrono::NaiveDate;
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};

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
    /// In force on `today` (an entry expires at the start of its `expires` day).
    pub fn active(&self, today: NaiveDate) -> bool {
        self.expires.is_none_or(|e| today < e)
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
    let mut removed: HashSet<Domain> = adj.own_domains.iter().cloned().collect();
    for e in &adj.exclude {
        let d = e.domain.clone();
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
        let d = e.domain.clone();
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
