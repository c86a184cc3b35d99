//! DNS as the MTA sees it: the system resolver (the first `nameserver` of /etc/resolv.conf, or
//! `--resolver`), asked with the DO and AD bits set, so each answer says whether that resolver
//! validated it (RFC 6840 §5.7). Postfix trusts the same AD bit for `dane`/`dane-only` (with
//! `smtp_dns_support_level = dnssec`), so a resolver that does not validate makes DANE unusable for it
//! too. A SERVFAIL is asked again with CD (checking disabled): an answer then means the data exists but
//! failed validation (bogus), which Postfix treats as a failure, not as "no TLSA".

use hickory_proto::op::{Edns, Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use serde::Serialize;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

/// What validation says about an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dnssec {
    /// The resolver validated it (AD bit).
    Secure,
    /// Not validated: an unsigned zone, or a resolver that does not validate.
    Insecure,
    /// The resolver refused it for failed validation; with CD it answers.
    Bogus,
    /// No answer to judge (a timeout or a server failure).
    Unknown,
}

/// How a lookup ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Records of the asked type.
    Answer,
    /// The name exists without records of that type.
    NoData,
    NxDomain,
    ServFail,
    /// No answer, or one that could not be read.
    Error,
}

/// One lookup and what came back.
#[derive(Debug, Clone, Serialize)]
pub struct Lookup {
    pub name: String,
    #[serde(rename = "type")]
    pub rtype: String,
    pub outcome: Outcome,
    pub dnssec: Dnssec,
    /// RRSIGs came with the answer (the zone is signed).
    pub signed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Local validation's opinion (with `--trust-anchor`), for answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local: Option<super::validate::Opinion>,
    #[serde(skip)]
    pub records: Vec<RData>,
}

impl Lookup {
    /// Usable records: an answer that did not fail validation.
    pub fn usable(&self) -> bool {
        self.outcome == Outcome::Answer && self.dnssec != Dnssec::Bogus
    }

    /// The lookup failed in a way the MTA cannot get past (not "no such record").
    pub fn failed(&self) -> bool {
        matches!(self.outcome, Outcome::ServFail | Outcome::Error) || self.dnssec == Dnssec::Bogus
    }

    /// `SERVFAIL`, `bogus (DNSSEC validation failed)`, … for a reason text.
    pub fn failure_text(&self) -> String {
        if self.dnssec == Dnssec::Bogus {
            return format!(
                "{} {}: DNSSEC validation failed (bogus)",
                self.name, self.rtype
            );
        }
        match self.outcome {
            Outcome::ServFail => format!("{} {}: SERVFAIL", self.name, self.rtype),
            Outcome::NxDomain => format!("{}: no such domain (NXDOMAIN)", self.name),
            Outcome::NoData => format!("{}: no {} record", self.name, self.rtype),
            _ => format!(
                "{} {}: {}",
                self.name,
                self.rtype,
                self.error.as_deref().unwrap_or("no answer")
            ),
        }
    }
}

/// A stub resolver that asks one recursive server.
#[derive(Debug, Clone)]
pub struct Resolver {
    pub server: SocketAddr,
    pub timeout: Duration,
}

/// The first `nameserver` in resolv.conf (port 53), as the C library would ask it.
pub fn system_resolver(resolv_conf: &str) -> Option<SocketAddr> {
    resolv_conf.lines().find_map(|l| {
        let mut words = l.split_whitespace();
        (words.next() == Some("nameserver"))
            .then(|| words.next())
            .flatten()
            .and_then(|a| a.split('%').next()?.parse::<IpAddr>().ok())
            .map(|ip| SocketAddr::new(ip, 53))
    })
}

impl Resolver {
    /// Looks `name` up; a SERVFAIL is asked again with CD to tell bogus data from a broken server.
    pub fn lookup(&self, name: &str, rtype: RecordType) -> Lookup {
        let mut out = Lookup {
            name: name.trim_end_matches('.').to_string(),
            rtype: rtype.to_string(),
            outcome: Outcome::Error,
            dnssec: Dnssec::Unknown,
            signed: false,
            error: None,
            local: None,
            records: Vec::new(),
        };
        let msg = match self.query(name, rtype, false) {
            Ok(m) => m,
            Err(e) => {
                out.error = Some(e);
                return out;
            }
        };
        let (msg, bogus) = if msg.metadata.response_code == ResponseCode::ServFail {
            match self.query(name, rtype, true) {
                Ok(m)
                    if matches!(
                        m.metadata.response_code,
                        ResponseCode::NoError | ResponseCode::NXDomain
                    ) =>
                {
                    (m, true)
                }
                _ => {
                    out.outcome = Outcome::ServFail;
                    return out;
                }
            }
        } else {
            (msg, false)
        };
        out.signed = msg
            .answers
            .iter()
            .chain(&msg.authorities)
            .any(|r| r.record_type() == RecordType::RRSIG);
        out.dnssec = if bogus {
            Dnssec::Bogus
        } else if msg.metadata.authentic_data {
            Dnssec::Secure
        } else {
            Dnssec::Insecure
        };
        out.records = msg
            .answers
            .iter()
            .filter(|r| r.record_type() == rtype)
            .map(|r| r.data.clone())
            .collect();
        out.outcome = match msg.metadata.response_code {
            ResponseCode::NXDomain => Outcome::NxDomain,
            ResponseCode::NoError if out.records.is_empty() => Outcome::NoData,
            ResponseCode::NoError => Outcome::Answer,
            other => {
                out.error = Some(format!("answer {other}"));
                Outcome::Error
            }
        };
        out
    }

    /// The whole answer to one query, RRSIGs included; `cd` asks the resolver not to validate.
    pub fn raw(&self, name: &str, rtype: RecordType, cd: bool) -> Result<Message, String> {
        self.query(name, rtype, cd)
    }

    fn query(&self, name: &str, rtype: RecordType, cd: bool) -> Result<Message, String> {
        let fqdn = if name.ends_with('.') {
            name.to_string()
        } else {
            format!("{name}.")
        };
        let qname = Name::from_ascii(&fqdn).map_err(|e| format!("bad name: {e}"))?;
        let mut msg = Message::query();
        msg.metadata.recursion_desired = true;
        msg.metadata.authentic_data = true;
        msg.metadata.checking_disabled = cd;
        msg.add_query(Query::query(qname, rtype));
        let mut edns = Edns::new();
        edns.set_dnssec_ok(true);
        edns.set_max_payload(1232);
        msg.set_edns(edns);
        let id = msg.metadata.id;
        let wire = msg.to_vec().map_err(|e| e.to_string())?;
        let mut last = String::from("no answer");
        for _ in 0..2 {
            match self.udp(&wire, id) {
                Ok(m) if m.metadata.truncation => return self.tcp(&wire, id),
                Ok(m) => return Ok(m),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn udp(&self, wire: &[u8], id: u16) -> Result<Message, String> {
        let bind: SocketAddr = if self.server.is_ipv4() {
            "0.0.0.0:0".parse().unwrap()
        } else {
            "[::]:0".parse().unwrap()
        };
        let sock = UdpSocket::bind(bind).map_err(|e| e.to_string())?;
        sock.connect(self.server).map_err(|e| e.to_string())?;
        sock.set_read_timeout(Some(self.timeout))
            .map_err(|e| e.to_string())?;
        sock.send(wire).map_err(|e| e.to_string())?;
        let mut buf = vec![0u8; 65535];
        loop {
            let n = sock.recv(&mut buf).map_err(|e| match e.kind() {
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                    format!("no answer from {} within {:?}", self.server, self.timeout)
                }
                _ => format!("{}: {e}", self.server),
            })?;
            let m = Message::from_vec(&buf[..n]).map_err(|e| e.to_string())?;
            if m.metadata.id == id {
                return Ok(m);
            }
        }
    }

    fn tcp(&self, wire: &[u8], id: u16) -> Result<Message, String> {
        let mut s = TcpStream::connect_timeout(&self.server, self.timeout)
            .map_err(|e| format!("{}: {e}", self.server))?;
        s.set_read_timeout(Some(self.timeout))
            .map_err(|e| e.to_string())?;
        let mut framed = (wire.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(wire);
        s.write_all(&framed).map_err(|e| e.to_string())?;
        let mut len = [0u8; 2];
        s.read_exact(&mut len).map_err(|e| e.to_string())?;
        let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut buf).map_err(|e| e.to_string())?;
        let m = Message::from_vec(&buf).map_err(|e| e.to_string())?;
        if m.metadata.id != id {
            return Err("answer for another query".into());
        }
        Ok(m)
    }
}

/// The zones a trust-anchor file names (owners of its DNSKEY and DS lines), in order.
pub fn anchor_zones(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        let line = line.split(';').next().unwrap_or("");
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.len() > 2 && words.iter().any(|w| matches!(*w, "DNSKEY" | "DS")) {
            let zone = words[0].trim_end_matches('.').to_ascii_lowercase();
            let zone = if zone.is_empty() { ".".into() } else { zone };
            if !out.contains(&zone) {
                out.push(zone);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_first_nameserver() {
        let conf =
            "# x\nsearch example\nnameserver 127.0.0.53\nnameserver 9.9.9.9\noptions trust-ad\n";
        assert_eq!(
            system_resolver(conf),
            Some("127.0.0.53:53".parse().unwrap())
        );
        assert_eq!(
            system_resolver("nameserver fe80::1%eth0\n"),
            Some("[fe80::1]:53".parse().unwrap())
        );
        assert_eq!(system_resolver("options ndots:1\n"), None);
    }

    #[test]
    fn anchors_name_their_zones() {
        let text = "; anchor\ntest.\t3600\tIN\tDNSKEY\t257 3 13 AAAA==\n. IN DS 20326 8 2 E06D\ntest. IN DNSKEY 256 3 13 BB==\n";
        assert_eq!(anchor_zones(text), ["test", "."]);
    }
}
