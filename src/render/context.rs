//! The data templates see. Everything here is safe to print: domains are validated A-labels, and free
//! text (names, addresses) has passed `sanitize::comment`. The README documents every field.

use super::exchange::{ExchangeDerived, ExchangeOnlineDerived};
use super::options::RenderOptions;
use super::postfix::PostfixDerived;
use super::RenderInput;
use crate::sanitize::comment;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Context<'a> {
    pub tool: Tool,
    /// Local adjustments in force (exclusions, additions, overrides, own domains), comment-safe.
    pub local: Vec<LocalEntry>,
    pub source: Source,
    pub counts: Counts,
    /// Every domain, sorted, with the participant it belongs to.
    pub domains: Vec<DomainEntry>,
    /// Participants sorted by name, each with its domains.
    pub participants: Vec<ParticipantEntry>,
    pub options: &'a RenderOptions,
    pub postfix: PostfixDerived,
    pub exchange: ExchangeDerived,
    pub exchange_online: ExchangeOnlineDerived,
}

#[derive(Debug, Serialize)]
pub struct LocalEntry {
    /// `excluded`, `added`, `override`, `own domain`.
    pub kind: &'static str,
    pub domain: String,
    pub reason: String,
    pub until: Option<String>,
    pub detail: Option<String>,
    /// The whole entry in one comment-safe line.
    pub line: String,
}

#[derive(Debug, Serialize)]
pub struct Tool {
    pub name: &'static str,
    pub version: &'static str,
}

#[derive(Debug, Serialize)]
pub struct Source {
    pub page: Option<String>,
    pub csv: Option<String>,
    pub sha256: String,
    pub page_updated: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Counts {
    pub participants: usize,
    pub domains: usize,
}

#[derive(Debug, Serialize)]
pub struct DomainEntry {
    /// The A-label form, as servers compare it.
    pub name: String,
    /// The Unicode form when it differs (comment-safe).
    pub unicode: Option<String>,
    pub organization: String,
    pub org_number: Option<String>,
    pub enforces_inbound_tls: Option<bool>,
}

#[derive(Debug, Serialize)]
pub struct ParticipantEntry {
    pub organization: String,
    pub org_number: Option<String>,
    pub domains: Vec<String>,
    pub enrolled: Option<String>,
    pub enforces_inbound_tls: Option<bool>,
}

impl<'a> Context<'a> {
    pub fn new(input: RenderInput, opts: &'a RenderOptions) -> Context<'a> {
        let p = input.provenance;
        let participants: Vec<ParticipantEntry> = input
            .list
            .participants
            .iter()
            .map(|p| ParticipantEntry {
                organization: comment(&p.organization),
                org_number: p.org_number.as_deref().map(comment),
                domains: p.domains.iter().map(|d| d.to_string()).collect(),
                enrolled: p.enrolled.map(|d| d.to_string()),
                enforces_inbound_tls: p.enforces_inbound_tls,
            })
            .collect();
        // Domains are unique across participants (the list builder guarantees it), so sorting pairs is enough.
        let mut by_domain: Vec<(&crate::domain::Domain, &crate::list::Participant)> = input
            .list
            .participants
            .iter()
            .flat_map(|p| p.domains.iter().map(move |d| (d, p)))
            .collect();
        by_domain.sort_unstable_by(|a, b| a.0.cmp(b.0));
        by_domain.dedup_by(|a, b| a.0 == b.0);
        let domains: Vec<DomainEntry> = by_domain
            .iter()
            .map(|(d, p)| DomainEntry {
                name: d.to_string(),
                unicode: d.unicode().map(|u| comment(&u)),
                organization: comment(&p.organization),
                org_number: p.org_number.as_deref().map(comment),
                enforces_inbound_tls: p.enforces_inbound_tls,
            })
            .collect();
        let names: Vec<String> = domains.iter().map(|d| d.name.clone()).collect();
        Context {
            local: input
                .local
                .iter()
                .map(|a| LocalEntry {
                    kind: a.kind.as_str(),
                    domain: a.domain.to_string(),
                    reason: comment(&a.reason),
                    until: a.until.map(|d| d.to_string()),
                    detail: a.detail.as_deref().map(comment),
                    line: comment(&a.to_string()),
                })
                .collect(),
            tool: Tool {
                name: "bits-tls",
                version: env!("CARGO_PKG_VERSION"),
            },
            source: Source {
                page: p.page.as_deref().map(comment),
                csv: p.csv.as_deref().map(comment),
                sha256: comment(&p.sha256),
                page_updated: p.page_updated.map(|d| d.to_string()),
            },
            counts: Counts {
                participants: participants.len(),
                domains: domains.len(),
            },
            postfix: PostfixDerived::new(opts, by_domain.iter().map(|(d, _)| *d)),
            exchange: ExchangeDerived {
                address_spaces: super::exchange::address_spaces(&names, opts.subdomains),
                topology: opts.exchange.topology.as_str(),
            },
            exchange_online: super::exchange::online_connectors(&names, opts),
            domains,
            participants,
            options: opts,
        }
    }
}
