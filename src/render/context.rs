//! The data templates see. Everything here is safe to print: domains are validated A-labels, and free
//! text (names, addresses) has passed `sanitize::comment`. The README documents every field.

use super::exchange::{ExchangeDerived, ExchangeOnlineDerived};
use super::options::RenderOptions;
use super::postfix::PostfixDerived;
use super::RenderInput;
use crate::domain::Domain;
use crate::sanitize::comment;
use minijinja::value::{Enumerator, Object, ObjectRepr, Value};
use serde::Serialize;
use std::sync::Arc;

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

/// A struct-like template value: its fields by name, in order. What `Value::from_serialize` makes of a
/// struct (minijinja's own static-key map), built directly: no serde pass and no owned `String` per
/// field in between. The rows of `participants` and `domains` (100,000 at scale) are made this way.
#[derive(Debug)]
struct Row<const N: usize>([(&'static str, Value); N]);

impl<const N: usize> Object for Row<N> {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.get_value_by_str(key.as_str()?)
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        self.0
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.clone())
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.0.iter().map(|(k, _)| Value::from(*k)).collect())
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(N)
    }
}

/// Free text as a comment-safe template string.
fn comment_value(text: &str) -> Value {
    Value::from(crate::sanitize::comment_cow(text))
}

/// A date as `NaiveDate`'s `Display` writes it (`2017-02-01`), without a `String` for the years a list
/// has.
fn date_value(date: chrono::NaiveDate) -> Value {
    use chrono::Datelike;
    let (y, m, d) = (date.year(), date.month(), date.day());
    if !(0..=9999).contains(&y) {
        return Value::from(date.to_string());
    }
    let mut buf = [b'-'; 10];
    let put = |digits: &mut [u8], mut n: u32| {
        for b in digits.iter_mut().rev() {
            *b = b'0' + (n % 10) as u8;
            n /= 10;
        }
    };
    put(&mut buf[0..4], y as u32);
    put(&mut buf[5..7], m);
    put(&mut buf[8..10], d);
    Value::from(std::str::from_utf8(&buf).expect("ASCII digits"))
}

/// What the rows of `participants` and `domains` show, held compactly and shared by both lists. A row
/// is made when a template reads it: 100,000 participants' rows held as template values take ~45 MB.
#[derive(Debug)]
struct Shared {
    owners: Vec<Owner>,
    /// Every participant's domains (A-labels), in list order: a participant's are
    /// `names[first..first + count]`.
    names: Vec<Value>,
    /// Indices into `names`, in domain order (the `domains` list).
    sorted: Vec<u32>,
    /// For each of `names`, its participant (index into `owners`).
    owner_of: Vec<u32>,
    /// The Unicode form (comment-safe) of those of `names` that have one.
    unicode: foldhash::HashMap<u32, Value>,
}

/// One participant's fields as template values (comment-safe) and where its domains are.
#[derive(Debug)]
struct Owner {
    organization: Value,
    org_number: Value,
    enrolled: Value,
    enforces_inbound_tls: Value,
    first: u32,
    count: u32,
}

/// `participants`: each with `organization`, `org_number`, `domains`, `enrolled`,
/// `enforces_inbound_tls`.
#[derive(Debug)]
struct ParticipantRows(Arc<Shared>);

impl Object for ParticipantRows {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let o = self.0.owners.get(key.as_usize()?)?;
        let domains = &self.0.names[o.first as usize..(o.first + o.count) as usize];
        Some(Value::from_object(Row([
            ("organization", o.organization.clone()),
            ("org_number", o.org_number.clone()),
            ("domains", Value::from_object(domains.to_vec())),
            ("enrolled", o.enrolled.clone()),
            ("enforces_inbound_tls", o.enforces_inbound_tls.clone()),
        ])))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Seq(self.0.owners.len())
    }
}

/// `domains`, sorted: each with `name` (the A-label), `unicode` (when it differs), and its
/// participant's `organization`, `org_number`, `enforces_inbound_tls`.
#[derive(Debug)]
struct DomainRows(Arc<Shared>);

impl Object for DomainRows {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let n = *self.0.sorted.get(key.as_usize()?)? as usize;
        let name = &self.0.names[n];
        let o = &self.0.owners[self.0.owner_of[n] as usize];
        let unicode = self.0.unicode.get(&(n as u32)).cloned();
        Some(Value::from_object(Row([
            ("name", name.clone()),
            ("unicode", Value::from(unicode)),
            ("organization", o.organization.clone()),
            ("org_number", o.org_number.clone()),
            ("enforces_inbound_tls", o.enforces_inbound_tls.clone()),
        ])))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Seq(self.0.sorted.len())
    }
}

/// The parts of the context, each built only when a template asks for it: `render exim-config`
/// shows 52 lines and needs no participant, so it converts none.
struct Parts<'i, 'a> {
    input: RenderInput<'i>,
    opts: &'a RenderOptions,
    /// Every domain with the index of its participant, sorted by domain.
    by_domain: Option<Vec<(&'i Domain, usize)>>,
    names: Option<Vec<String>>,
    shared: Option<Arc<Shared>>,
}

impl<'i, 'a> Parts<'i, 'a> {
    fn new(input: RenderInput<'i>, opts: &'a RenderOptions) -> Parts<'i, 'a> {
        Parts {
            input,
            opts,
            by_domain: None,
            names: None,
            shared: None,
        }
    }

    /// Every domain with its participant, sorted. Domains are unique across participants (the list
    /// builder guarantees it), so sorting pairs is enough.
    fn by_domain(&mut self) -> &[(&'i Domain, usize)] {
        let list = self.input.list;
        self.by_domain.get_or_insert_with(|| {
            let mut v: Vec<(&Domain, usize)> = list
                .participants
                .iter()
                .enumerate()
                .flat_map(|(i, p)| p.domains.iter().map(move |d| (d, i)))
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

    fn shared(&mut self) -> Arc<Shared> {
        let list = self.input.list;
        if let Some(shared) = &self.shared {
            return shared.clone();
        }
        let mut names = Vec::new();
        let mut owner_of = Vec::new();
        // Where each listed domain is in `names`, to give the sorted order as indices.
        let mut at: foldhash::HashMap<&Domain, u32> = foldhash::HashMap::default();
        let mut unicode = foldhash::HashMap::default();
        let mut owners = Vec::with_capacity(list.participants.len());
        for (i, p) in list.participants.iter().enumerate() {
            let first = names.len() as u32;
            for d in &p.domains {
                at.entry(d).or_insert(names.len() as u32);
                if let Some(u) = d.unicode() {
                    unicode.insert(names.len() as u32, comment_value(&u));
                }
                names.push(Value::from(d.as_str()));
                owner_of.push(i as u32);
            }
            owners.push(Owner {
                organization: comment_value(&p.organization),
                org_number: Value::from(p.org_number.as_deref().map(comment_value)),
                enrolled: Value::from(p.enrolled.map(date_value)),
                enforces_inbound_tls: Value::from(p.enforces_inbound_tls),
                first,
                count: p.domains.len() as u32,
            });
        }
        let sorted = self.by_domain().iter().map(|(d, _)| at[d]).collect();
        let shared = Arc::new(Shared {
            owners,
            names,
            sorted,
            owner_of,
            unicode,
        });
        self.shared = Some(shared.clone());
        shared
    }

    fn participants(&mut self) -> Value {
        Value::from_object(ParticipantRows(self.shared()))
    }

    fn domains(&mut self) -> Value {
        Value::from_object(DomainRows(self.shared()))
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
    fn value(&mut self, field: &str) -> Option<Value> {
        Some(match field {
            "tool" => Value::from_serialize(Parts::tool()),
            "local" => Value::from_serialize(self.local()),
            "source" => Value::from_serialize(self.source()),
            "counts" => Value::from_serialize(self.counts()),
            "domains" => self.domains(),
            "participants" => self.participants(),
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
    let mut parts = Parts::new(input, opts);
    let map: std::collections::BTreeMap<&str, minijinja::Value> = fields
        .into_iter()
        .filter_map(|f| parts.value(f).map(|v| (f, v)))
        .collect();
    minijinja::Value::from_iter(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_read_as_naive_date_writes_them() {
        for (y, m, d) in [
            (2017, 2, 1),
            (1, 1, 1),
            (999, 12, 31),
            (9999, 12, 31),
            (10000, 1, 1),
            (-1, 6, 30),
        ] {
            let date = chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap();
            assert_eq!(date_value(date).to_string(), date.to_string());
        }
    }
    use crate::domain::DomainRules;
    use crate::list::{Participant, ParticipantList};
    use crate::source::Provenance;

    /// The rows as the context used to make them: structs through `Value::from_serialize`.
    #[derive(Serialize)]
    struct ParticipantEntry {
        organization: String,
        org_number: Option<String>,
        domains: Vec<String>,
        enrolled: Option<String>,
        enforces_inbound_tls: Option<bool>,
    }

    #[derive(Serialize)]
    struct DomainEntry {
        name: String,
        unicode: Option<String>,
        organization: String,
        org_number: Option<String>,
        enforces_inbound_tls: Option<bool>,
    }

    fn list() -> ParticipantList {
        let d = |s: &str| Domain::parse(s, DomainRules::default()).unwrap();
        let p = |name: &str, nr: Option<&str>, domains: Vec<Domain>, flag| Participant {
            organization: name.into(),
            org_number: nr.map(Into::into),
            domains,
            enrolled: chrono::NaiveDate::from_ymd_opt(2017, 2, 1).filter(|_| nr.is_some()),
            enforces_inbound_tls: flag,
        };
        ParticipantList {
            participants: vec![
                p(
                    "Blåbær Bank ASA (a very long name that goes on and on and on)",
                    Some("916960190"),
                    vec![d("blåbær.no"), d("bits.no")],
                    Some(true),
                ),
                p("Fno", None, vec![d("fno.no")], None),
                p("Nei AS", Some("123"), vec![d("nei.no")], Some(false)),
            ],
            warnings: vec![],
        }
    }

    /// The directly built rows are what serde made of the structs: the same text for every way a
    /// template can show them (the whole value, each field, iteration, length).
    #[test]
    fn rows_render_as_the_serialised_structs_did() {
        let list = list();
        let provenance = Provenance {
            page: None,
            csv: Some("x.csv".into()),
            sha256: "00".into(),
            page_updated: None,
            fetched_at: chrono::DateTime::UNIX_EPOCH,
        };
        let input = RenderInput {
            provenance: &provenance,
            list: &list,
            local: &[],
        };
        let opts = RenderOptions::default();
        let ctx = partial(input, &opts, ["participants", "domains"]);
        let participants: Vec<ParticipantEntry> = list
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
        let mut domains: Vec<DomainEntry> = list
            .participants
            .iter()
            .flat_map(|p| {
                p.domains.iter().map(|d| DomainEntry {
                    name: d.to_string(),
                    unicode: d.unicode().map(|u| comment(&u)),
                    organization: comment(&p.organization),
                    org_number: p.org_number.as_deref().map(comment),
                    enforces_inbound_tls: p.enforces_inbound_tls,
                })
            })
            .collect();
        domains.sort_by(|a, b| a.name.cmp(&b.name));
        #[derive(Serialize)]
        struct Old {
            participants: Vec<ParticipantEntry>,
            domains: Vec<DomainEntry>,
        }
        let old = Value::from_serialize(Old {
            participants,
            domains,
        });
        let env = minijinja::Environment::new();
        for tpl in [
            "{{ participants }}|{{ domains }}",
            "{% for p in participants %}{{ p.organization }}/{{ p.org_number }}/{{ p.domains }}/{{ p.enrolled }}/{{ p.enforces_inbound_tls }}/{{ p|length }}/{{ p|dictsort }}/{% for k in p %}{{ k }},{% endfor %}/{{ p.domains|length }};{% endfor %}",
            "{% for d in domains %}{{ d.name }}/{{ d.unicode }}/{{ d.organization }}/{{ d.org_number }}/{{ d.enforces_inbound_tls }}/{{ d.unicode is none }}/{{ d.org_number is none }};{% endfor %}",
            "{{ participants|length }} {{ domains|length }} {{ participants[0] }} {{ domains[-1] }}",
        ] {
            let new_text = env.render_str(tpl, &ctx).unwrap();
            let old_text = env.render_str(tpl, &old).unwrap();
            assert_eq!(new_text, old_text, "{tpl}");
        }
    }
}
