//! A second opinion on DNSSEC, by local validation from `--trust-anchor FILE`: the records are fetched
//! with CD (so the resolver passes them on even when it would refuse them), and each RRSIG is checked
//! with the zone's DNSKEYs, which are checked against the anchor or, one zone at a time, against the
//! DS records of the parent. It only judges answers (not proofs of absence): enough to tell a resolver
//! that does not validate (it says insecure, the signatures say secure) from one that does, and to flag
//! a resolver's "secure" that local validation calls bogus ("check manually": RRSIGs are checked here
//! against the clock, keys and digests only as far as this code goes).

use super::dns::Resolver;
use hickory_proto::dnssec::rdata::{DNSSECRData, DNSKEY, DS, RRSIG};
use hickory_proto::dnssec::{Algorithm, DigestType, PublicKey, Verifier};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Mutex;

/// What local validation says about an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Opinion {
    /// Signed, and the signatures chain up to the trust anchor.
    Secure,
    /// Not signed, or below a delegation without DS records.
    Insecure,
    /// Signed, but a signature or key does not check out.
    Bogus,
    /// Nothing to judge (no answer, or outside the anchored tree).
    Unknown,
}

/// One trusted key (a DNSKEY) or key digest (a DS) from the anchor file.
#[derive(Debug, Clone)]
enum Anchor {
    Key {
        zone: Name,
        algorithm: u8,
        key: Vec<u8>,
    },
    Ds {
        zone: Name,
        ds: DS,
    },
}

/// Parses DNSKEY and DS lines (`zone. [ttl] [IN] DNSKEY flags 3 alg base64…`, `zone. IN DS tag alg
/// type hex`), as unbound's trust-anchor-file has them.
fn parse_anchors(text: &str) -> Vec<Anchor> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split(';').next().unwrap_or("");
        let w: Vec<&str> = line.split_whitespace().collect();
        let Some(i) = w.iter().position(|x| matches!(*x, "DNSKEY" | "DS")) else {
            continue;
        };
        let Ok(zone) = Name::from_ascii(w[0]) else {
            continue;
        };
        let rest = &w[i + 1..];
        match w[i] {
            "DNSKEY" if rest.len() >= 4 => {
                let Ok(algorithm) = rest[2].parse::<u8>() else {
                    continue;
                };
                if let Ok(key) = openssl::base64::decode_block(&rest[3..].concat()) {
                    out.push(Anchor::Key {
                        zone,
                        algorithm,
                        key,
                    });
                }
            }
            "DS" if rest.len() >= 4 => {
                let (Ok(tag), Ok(alg), Ok(dt)) = (
                    rest[0].parse::<u16>(),
                    rest[1].parse::<u8>(),
                    rest[2].parse::<u8>(),
                ) else {
                    continue;
                };
                let hex = rest[3..].concat();
                let digest: Option<Vec<u8>> = (0..hex.len())
                    .step_by(2)
                    .map(|j| u8::from_str_radix(hex.get(j..j + 2)?, 16).ok())
                    .collect();
                if let Some(digest) = digest {
                    out.push(Anchor::Ds {
                        zone,
                        ds: DS::new(tag, Algorithm::from_u8(alg), DigestType::from(dt), digest),
                    });
                }
            }
            _ => {}
        }
    }
    out
}

#[derive(Debug, Clone)]
enum ZoneKeys {
    Trusted(Vec<DNSKEY>),
    Insecure,
    Bogus,
    Unknown,
}

/// The local validator: anchors and the zones' keys, checked once each.
pub struct Validator<'a> {
    resolver: &'a Resolver,
    anchors: Vec<Anchor>,
    zones: Mutex<HashMap<Name, ZoneKeys>>,
    now: u32,
}

fn rrsig(r: &Record) -> Option<&RRSIG> {
    match &r.data {
        RData::DNSSEC(DNSSECRData::RRSIG(s)) => Some(s),
        _ => None,
    }
}

impl<'a> Validator<'a> {
    pub fn new(resolver: &'a Resolver, anchor_text: &str) -> Validator<'a> {
        Validator {
            resolver,
            anchors: parse_anchors(anchor_text),
            zones: Mutex::new(HashMap::new()),
            now: chrono::Utc::now().timestamp() as u32,
        }
    }

    /// The opinion on `name`'s records of type `rtype`.
    pub fn rrset(&self, name: &str, rtype: RecordType) -> Opinion {
        let Ok(msg) = self.resolver.raw(name, rtype, true) else {
            return Opinion::Unknown;
        };
        let records: Vec<&Record> = msg
            .answers
            .iter()
            .filter(|r| r.record_type() == rtype)
            .collect();
        let Some(owner) = records.first().map(|r| r.name.clone()) else {
            return Opinion::Unknown;
        };
        let records: Vec<&Record> = records.into_iter().filter(|r| r.name == owner).collect();
        let sigs: Vec<&RRSIG> = msg
            .answers
            .iter()
            .filter(|r| r.name == owner)
            .filter_map(rrsig)
            .filter(|s| s.input().type_covered == rtype)
            .collect();
        if sigs.is_empty() {
            return Opinion::Insecure;
        }
        let mut verdict = Opinion::Bogus;
        for sig in sigs {
            match self.zone(&sig.input().signer_name) {
                ZoneKeys::Trusted(keys) => {
                    if self.verifies(&keys, sig, &owner, &records) {
                        return Opinion::Secure;
                    }
                }
                ZoneKeys::Insecure => verdict = Opinion::Insecure,
                ZoneKeys::Unknown => verdict = Opinion::Unknown,
                ZoneKeys::Bogus => {}
            }
        }
        verdict
    }

    fn verifies(&self, keys: &[DNSKEY], sig: &RRSIG, owner: &Name, records: &[&Record]) -> bool {
        let input = sig.input();
        let in_time =
            input.sig_inception.get() <= self.now && self.now <= input.sig_expiration.get();
        in_time
            && keys.iter().any(|k| {
                k.calculate_key_tag().ok() == Some(input.key_tag)
                    && k.verify_rrsig(owner, DNSClass::IN, sig, records.iter().copied())
                        .is_ok()
            })
    }

    /// The zone's DNSKEYs, if they check out against an anchor or the parent's DS.
    fn zone(&self, zone: &Name) -> ZoneKeys {
        if let Some(k) = self.zones.lock().unwrap().get(zone) {
            return k.clone();
        }
        let keys = self.zone_uncached(zone);
        self.zones
            .lock()
            .unwrap()
            .insert(zone.clone(), keys.clone());
        keys
    }

    fn zone_uncached(&self, zone: &Name) -> ZoneKeys {
        let Ok(msg) = self
            .resolver
            .raw(&zone.to_ascii(), RecordType::DNSKEY, true)
        else {
            return ZoneKeys::Unknown;
        };
        let records: Vec<&Record> = msg
            .answers
            .iter()
            .filter(|r| r.record_type() == RecordType::DNSKEY && &r.name == zone)
            .collect();
        let keys: Vec<DNSKEY> = records
            .iter()
            .filter_map(|r| match &r.data {
                RData::DNSSEC(DNSSECRData::DNSKEY(k)) => Some(k.clone()),
                _ => None,
            })
            .collect();
        let anchored: Vec<&Anchor> = self
            .anchors
            .iter()
            .filter(|a| match a {
                Anchor::Key { zone: z, .. } | Anchor::Ds { zone: z, .. } => z == zone,
            })
            .collect();
        let entry: Vec<DNSKEY> = if !anchored.is_empty() {
            keys.iter()
                .filter(|k| {
                    anchored.iter().any(|a| match a {
                        Anchor::Key { algorithm, key, .. } => {
                            u8::from(k.public_key().algorithm()) == *algorithm
                                && k.public_key().public_bytes() == key.as_slice()
                        }
                        Anchor::Ds { ds, .. } => ds.covers(zone, k).unwrap_or(false),
                    })
                })
                .cloned()
                .collect()
        } else if zone.is_root() {
            return ZoneKeys::Unknown;
        } else {
            // The parent vouches for the zone's keys with DS records.
            match self.rrset(&zone.to_ascii(), RecordType::DS) {
                Opinion::Secure => {}
                Opinion::Bogus => return ZoneKeys::Bogus,
                Opinion::Insecure => return ZoneKeys::Insecure,
                // No DS (a delegation without DNSSEC, or a name outside the anchored tree).
                Opinion::Unknown => {
                    return if self.under_anchor(zone) {
                        ZoneKeys::Insecure
                    } else {
                        ZoneKeys::Unknown
                    }
                }
            }
            let Ok(ds_msg) = self.resolver.raw(&zone.to_ascii(), RecordType::DS, true) else {
                return ZoneKeys::Unknown;
            };
            let ds: Vec<DS> = ds_msg
                .answers
                .iter()
                .filter_map(|r| match &r.data {
                    RData::DNSSEC(DNSSECRData::DS(d)) => Some(d.clone()),
                    _ => None,
                })
                .collect();
            keys.iter()
                .filter(|k| ds.iter().any(|d| d.covers(zone, k).unwrap_or(false)))
                .cloned()
                .collect()
        };
        if entry.is_empty() {
            return ZoneKeys::Bogus;
        }
        let sigs: Vec<&RRSIG> = msg
            .answers
            .iter()
            .filter(|r| &r.name == zone)
            .filter_map(rrsig)
            .filter(|s| s.input().type_covered == RecordType::DNSKEY)
            .collect();
        if sigs
            .iter()
            .any(|s| self.verifies(&entry, s, zone, &records))
        {
            ZoneKeys::Trusted(keys)
        } else {
            ZoneKeys::Bogus
        }
    }

    fn under_anchor(&self, zone: &Name) -> bool {
        self.anchors.iter().any(|a| match a {
            Anchor::Key { zone: z, .. } | Anchor::Ds { zone: z, .. } => z.zone_of(zone),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_parse() {
        let a = parse_anchors(
            "test.\tIN\tDNSKEY\t257 3 13 Zt887YlR3YyVVNYCxIjCk/KVHgTNtqP4hpxREpMrK73JTdalyl5a+SX8pNvl5yAGf7CE5tzXSmdfzioGc+hAyA== ;{id = 6779}\n\
             . IN DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D\n",
        );
        assert_eq!(a.len(), 2);
        assert!(matches!(&a[0], Anchor::Key { algorithm: 13, key, .. } if key.len() == 64));
        assert!(
            matches!(&a[1], Anchor::Ds { ds, .. } if ds.key_tag() == 20326 && ds.digest().len() == 32)
        );
    }
}
