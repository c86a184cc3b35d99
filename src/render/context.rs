//! The data templates see. Everything here is safe to print: domains are validated A-labels, and free
//! text (names, addresses) has passed `sanitize::comment`. The README documents every field.

use super::exchange::{ExchangeDerived, ExchangeOnlineDerived};
use super::options::RenderOptions;
use super::postfix::PostfixDerived;
use super::RenderInput;
use crate::domain::Domain;
use crate::list::Participant;
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

/// The context's top-level fields, as templates name them.
pub const FIELDS: [&str; 10] = [
    "tool",
    "local",
    "source",
    "counts",
    "domains",
    "participants",
    "options",
    "postfix",
    "exchange",
    "exchange_online",
];

/// The parts of the context, each built only when a template asks for it: `render exim-config`
/// shows 52 lines and needs no participant, so it converts none.
struct Parts<'i, 'a> {
    input: RenderInput<'i>,
    opts: &'a RenderOptions,
    by_domain: Option<Vec<(&'i Domain, &'i Participant)>>,
    names: Option<Vec<String>>,
}

impl<'i, 'a> Parts<'i, 'a> {
    /// Every domain with its participant, sorted. Domains are unique across participants (the list
    /// builder guarantees it), so sorting pairs is enough.
    fn by_domain(&mut self) -> &[(&'i Domain, &'i Participant)] {
        let list = self.input.list;
        self.by_domain.get_or_insert_with(|| {
            let mut v: Vec<(&Domain, &Participant)> = list
                .participants
                .iter()
                .flat_map(|p| p.domains.iter().map(move |d| (d, p)))
                .collect();
            v.sort_unstable_by(|a, b| a.0.cmp(b.0));
            v.dedup_by(|a, b| a.0 == b.0);
            v
        })
    }

    fn names(&mut self) -> &[String] {
        if self.names.is_none() {
            let names = self
                .by_domain()
                .iter()
                .map(|(d, _)| d.to_string())
                .collect();
            self.names = Some(names);
        }
        self.names.as_deref().unwrap_or_default()
    }

    fn participants(&self) -> Vec<ParticipantEntry> {
        self.input
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
            .collect()
    }

    fn domains(&mut self) -> Vec<DomainEntry> {
        self.by_domain()
            .iter()
            .map(|(d, p)| DomainEntry {
                name: d.to_string(),
                unicode: d.unicode().map(|u| comment(&u)),
                organization: comment(&p.organization),
                org_number: p.org_number.as_deref().map(comment),
                enforces_inbound_tls: p.enforces_inbound_tls,
            })
            .collect()
    }

    fn counts(&mut self) -> Counts {
        Counts {
            participants: self.input.list.participants.len(),
            domains: self.by_domain().len(),
        }
    }

    fn local(&self) -> Vec<LocalEntry> {
        self.input
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
            .collect()
    }

    fn source(&self) -> Source {
        let p = self.input.provenance;
        Source {
            page: p.page.as_deref().map(comment),
            csv: p.csv.as_deref().map(comment),
            sha256: comment(&p.sha256),
            page_updated: p.page_updated.map(|d| d.to_string()),
        }
    }

    fn tool() -> Tool {
        Tool {
            name: "bits-tls",
            version: env!("CARGO_PKG_VERSION"),
        }
    }

    fn postfix(&mut self) -> PostfixDerived {
        let opts = self.opts;
        PostfixDerived::new(opts, self.by_domain().iter().map(|(d, _)| *d))
    }

    fn exchange(&mut self) -> ExchangeDerived {
        let opts = self.opts;
        ExchangeDerived {
            address_spaces: super::exchange::address_spaces(self.names(), opts.subdomains),
            topology: opts.exchange.topology.as_str(),
        }
    }

    fn exchange_online(&mut self) -> ExchangeOnlineDerived {
        let opts = self.opts;
        super::exchange::online_connectors(self.names(), opts)
    }

    /// One field as a template value.
    fn value(&mut self, field: &str) -> Option<minijinja::Value> {
        use minijinja::Value;
        Some(match field {
            "tool" => Value::from_serialize(Parts::tool()),
            "local" => Value::from_serialize(self.local()),
            "source" => Value::from_serialize(self.source()),
            "counts" => Value::from_serialize(self.counts()),
            "domains" => Value::from_serialize(self.domains()),
            "participants" => Value::from_serialize(self.participants()),
            "options" => Value::from_serialize(self.opts),
            "postfix" => Value::from_serialize(self.postfix()),
            "exchange" => Value::from_serialize(self.exchange()),
            "exchange_online" => Value::from_serialize(self.exchange_online()),
            _ => return None,
        })
    }
}

/// The template context with only the `fields` named (of [`FIELDS`]; other names are left out, and a
/// template that uses a field left out fails as for any undefined variable).
pub fn partial<'f>(
    input: RenderInput,
    opts: &RenderOptions,
    fields: impl IntoIterator<Item = &'f str>,
) -> minijinja::Value {
    let mut parts = Parts {
        input,
        opts,
        by_domain: None,
        names: None,
    };
    let map: std::collections::BTreeMap<&str, minijinja::Value> = fields
        .into_iter()
        .filter_map(|f| parts.value(f).map(|v| (f, v)))
        .collect();
    minijinja::Value::from_iter(map)
}

impl<'a> Context<'a> {
    pub fn new(input: RenderInput, opts: &'a RenderOptions) -> Context<'a> {
        let mut parts = Parts {
            input,
            opts,
            by_domain: None,
            names: None,
        };
        Context {
            local: parts.local(),
            tool: Parts::tool(),
            source: parts.source(),
            counts: parts.counts(),
            postfix: parts.postfix(),
            exchange: parts.exchange(),
            exchange_online: parts.exchange_online(),
            domains: parts.domains(),
            participants: parts.participants(),
            options: opts,
        }
    }
}
