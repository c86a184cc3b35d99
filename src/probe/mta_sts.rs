//! MTA-STS (RFC 8461) and TLS-RPT (RFC 8460): the `_mta-sts` TXT record, the policy at
//! `https://mta-sts.DOMAIN/.well-known/mta-sts.txt` (a valid certificate, no redirects, at most 64 KB,
//! `version`, `mode`, `mx`, `max_age`), whether its `mx` patterns cover every MX, and the `_smtp._tls`
//! reporting record. The parsers are small enough to write from the RFCs (§3.1, §3.2; RFC 8460 §3).

use serde::Serialize;
use std::path::Path;
use std::time::Duration;

/// RFC 8461 §3.3: a policy larger than this is refused.
pub const MAX_POLICY: usize = 64 * 1024;

/// The `_mta-sts` TXT record.
#[derive(Debug, Clone, Serialize)]
pub struct StsRecord {
    pub id: String,
}

/// Reads the `v=STSv1` record among a name's TXT strings. More than one is an error (§3.1).
pub fn parse_sts_txt(texts: &[String]) -> Result<Option<StsRecord>, String> {
    let sts: Vec<&String> = texts.iter().filter(|t| t.starts_with("v=STSv1")).collect();
    match sts.as_slice() {
        [] => Ok(None),
        [one] => {
            let id = fields(one)
                .find(|(k, _)| *k == "id")
                .map(|(_, v)| v.to_string())
                .ok_or("the record has no id=")?;
            if id.is_empty() || id.len() > 32 || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(format!(
                    "id `{}` is not 1-32 letters and digits",
                    shown(&id)
                ));
            }
            Ok(Some(StsRecord { id }))
        }
        _ => Err(format!("{} v=STSv1 records (one is allowed)", sts.len())),
    }
}

/// The `_smtp._tls` reporting record: where reports go.
#[derive(Debug, Clone, Serialize)]
pub struct TlsRpt {
    pub rua: Vec<String>,
}

pub fn parse_tlsrpt_txt(texts: &[String]) -> Result<Option<TlsRpt>, String> {
    let rpt: Vec<&String> = texts
        .iter()
        .filter(|t| t.starts_with("v=TLSRPTv1"))
        .collect();
    match rpt.as_slice() {
        [] => Ok(None),
        [one] => {
            let rua = fields(one)
                .find(|(k, _)| *k == "rua")
                .map(|(_, v)| v.split(',').map(|u| shown(u.trim())).collect::<Vec<_>>())
                .ok_or("the record has no rua=")?;
            Ok(Some(TlsRpt { rua }))
        }
        _ => Err(format!("{} v=TLSRPTv1 records (one is allowed)", rpt.len())),
    }
}

/// `k=v; k=v` fields of a TXT record.
fn fields(text: &str) -> impl Iterator<Item = (&str, &str)> {
    text.split(';').filter_map(|f| {
        let (k, v) = f.split_once('=')?;
        Some((k.trim(), v.trim()))
    })
}

fn shown(s: &str) -> String {
    crate::sanitize::one_line(s)
}

/// A parsed policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Policy {
    pub mode: Mode,
    pub mx: Vec<String>,
    pub max_age: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Enforce,
    Testing,
    None,
}

/// Parses a policy body (§3.2): `key: value` lines, CRLF or LF.
pub fn parse_policy(body: &str) -> Result<Policy, String> {
    let mut version = None;
    let mut mode = None;
    let mut mx = Vec::new();
    let mut max_age = None;
    for line in body.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let Some((k, v)) = line.split_once(':') else {
            return Err(format!("line `{}` is not `key: value`", shown(line)));
        };
        let v = v.trim();
        match k.trim() {
            "version" => version = Some(v.to_string()),
            "mode" => {
                mode = Some(match v {
                    "enforce" => Mode::Enforce,
                    "testing" => Mode::Testing,
                    "none" => Mode::None,
                    other => return Err(format!("unknown mode `{}`", shown(other))),
                })
            }
            "mx" => mx.push(v.to_ascii_lowercase().trim_end_matches('.').to_string()),
            "max_age" => {
                max_age = Some(
                    v.parse::<u64>()
                        .ok()
                        .filter(|a| *a <= 31_557_600)
                        .ok_or_else(|| format!("max_age `{}` is not 0-31557600", shown(v)))?,
                )
            }
            // Unknown keys are ignored (§3.2).
            _ => {}
        }
    }
    if version.as_deref() != Some("STSv1") {
        return Err("no `version: STSv1`".into());
    }
    let mode = mode.ok_or("no mode")?;
    let max_age = max_age.ok_or("no max_age")?;
    if mx.is_empty() && mode != Mode::None {
        return Err("no mx patterns".into());
    }
    Ok(Policy { mode, mx, max_age })
}

/// Whether an `mx` pattern covers an MX host (§4.1): exact, or `*.` for exactly one leftmost label.
pub fn covers(pattern: &str, host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(rest) => host
            .split_once('.')
            .is_some_and(|(label, parent)| !label.is_empty() && parent == rest),
        None => pattern == host,
    }
}

/// The Postfix `match=` that accepts what a policy's patterns accept: `*.x` → `.x` (which also takes
/// deeper names, slightly more than MTA-STS), names as they are; joined with `:`.
pub fn postfix_match(patterns: &[String]) -> String {
    patterns
        .iter()
        .map(|p| match p.strip_prefix("*.") {
            Some(rest) => format!(".{rest}"),
            None => p.clone(),
        })
        .collect::<Vec<_>>()
        .join(":")
}

/// Why a policy could not be had.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "problem", content = "detail", rename_all = "kebab-case")]
pub enum FetchError {
    /// No connection, or a TLS failure (an untrusted or wrong certificate).
    Https(String),
    Redirect(String),
    Status(u16),
    TooLarge,
    Invalid(String),
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::Https(e) => write!(f, "HTTPS failed: {e}"),
            FetchError::Redirect(to) => {
                write!(
                    f,
                    "the policy URL redirects (to {to}); redirects are not followed"
                )
            }
            FetchError::Status(s) => write!(f, "the policy URL answered HTTP {s}"),
            FetchError::TooLarge => write!(f, "the policy is larger than {MAX_POLICY} bytes"),
            FetchError::Invalid(e) => write!(f, "the policy is not valid: {e}"),
        }
    }
}

/// Fetches policies: HTTPS only, certificates checked, no redirects.
pub struct PolicyClient {
    client: reqwest::blocking::Client,
}

impl PolicyClient {
    /// `ca_file` is trusted in addition to the system's roots.
    pub fn new(timeout: Duration, ca_file: Option<&Path>) -> anyhow::Result<PolicyClient> {
        let mut b = reqwest::blocking::Client::builder()
            .use_rustls_tls()
            .min_tls_version(reqwest::tls::Version::TLS_1_2)
            .https_only(true)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("bits-tls/", env!("CARGO_PKG_VERSION")))
            .timeout(timeout)
            .connect_timeout(timeout);
        if let Some(p) = ca_file {
            let pem = std::fs::read(p)
                .map_err(|e| anyhow::anyhow!("reading the CA file `{}`: {e}", p.display()))?;
            for c in reqwest::Certificate::from_pem_bundle(&pem).unwrap_or_default() {
                b = b.add_root_certificate(c);
            }
        }
        Ok(PolicyClient { client: b.build()? })
    }

    pub fn fetch(&self, domain: &str) -> Result<Policy, FetchError> {
        use std::io::Read;
        let url = format!("https://mta-sts.{domain}/.well-known/mta-sts.txt");
        let resp = self.client.get(&url).send().map_err(|e| {
            let mut msg = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg = format!("{msg}: {s}");
                src = s.source();
            }
            FetchError::Https(shown(&msg))
        })?;
        let status = resp.status();
        if status.is_redirection() {
            let to = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(shown)
                .unwrap_or_default();
            return Err(FetchError::Redirect(to));
        }
        if status.as_u16() != 200 {
            return Err(FetchError::Status(status.as_u16()));
        }
        let mut body = Vec::new();
        resp.take(MAX_POLICY as u64 + 1)
            .read_to_end(&mut body)
            .map_err(|e| FetchError::Https(shown(&e.to_string())))?;
        if body.len() > MAX_POLICY {
            return Err(FetchError::TooLarge);
        }
        let text =
            String::from_utf8(body).map_err(|_| FetchError::Invalid("not UTF-8 text".into()))?;
        parse_policy(&text).map_err(FetchError::Invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txt_records() {
        let one = vec!["v=STSv1; id=20261123".to_string(), "other".into()];
        assert_eq!(parse_sts_txt(&one).unwrap().unwrap().id, "20261123");
        assert!(parse_sts_txt(&["x".into()]).unwrap().is_none());
        let two = vec!["v=STSv1; id=1".to_string(), "v=STSv1; id=2".into()];
        assert!(parse_sts_txt(&two).is_err());
        assert!(parse_sts_txt(&["v=STSv1;".into()]).is_err());
        let rpt = parse_tlsrpt_txt(&["v=TLSRPTv1; rua=mailto:tls@x.no,https://r.x.no/".into()])
            .unwrap()
            .unwrap();
        assert_eq!(rpt.rua, ["mailto:tls@x.no", "https://r.x.no/"]);
    }

    #[test]
    fn policies() {
        let p = parse_policy(
            "version: STSv1\r\nmode: enforce\r\nmx: mx1.example.no\r\nmx: *.example.net\r\nmax_age: 86400\r\n",
        )
        .unwrap();
        assert_eq!(p.mode, Mode::Enforce);
        assert_eq!(p.mx, ["mx1.example.no", "*.example.net"]);
        assert!(parse_policy("mode: enforce\nmx: a\nmax_age: 1\n").is_err());
        assert!(parse_policy("version: STSv1\nmode: strict\nmx: a\nmax_age: 1\n").is_err());
        assert!(covers("*.example.net", "mx.example.net"));
        assert!(!covers("*.example.net", "a.mx.example.net"));
        assert!(!covers("*.example.net", "example.net"));
        assert!(covers("mx1.example.no", "MX1.example.no"));
        assert_eq!(
            postfix_match(&["mx1.example.no".into(), "*.example.net".into()]),
            "mx1.example.no:.example.net"
        );
    }
}
