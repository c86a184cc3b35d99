//! HTTPS downloads done carefully: certificate validation (plus an optional extra CA for corporate
//! proxies), plain `http://` only when asked, timeouts, a few retries with backoff on connection errors,
//! 5xx and 429 (honouring `Retry-After` up to a bound), a size cap, and conditional requests.

use reqwest::blocking::{Client, Response};
use reqwest::header::{
    HeaderMap, ACCEPT, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED, RETRY_AFTER,
};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use url::Url;

/// A run's requests together may take this many times the per-request timeout.
pub const RUN_TIMEOUT_FACTOR: u32 = 6;

/// How downloads behave. The defaults suit a cron job: patient, but bounded.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Whole-request limit (connect, headers and body), a deadline however slowly the body trickles.
    pub timeout: Duration,
    /// Limit for all the requests of one run together (page and CSV, retries and waits included).
    pub run_timeout: Duration,
    pub connect_timeout: Duration,
    /// Largest body accepted, after decompression.
    pub max_bytes: u64,
    /// Allow `http://` addresses (and redirects to them).
    pub allow_http: bool,
    /// Extra trusted CA certificates (PEM), e.g. a TLS-inspecting proxy's.
    pub ca_file: Option<PathBuf>,
    /// Attempts in all, including the first.
    pub tries: u32,
    /// First backoff; doubles on each retry.
    pub backoff: Duration,
    /// Longest `Retry-After` we wait for; a longer one ends the run with a clear message.
    pub max_retry_wait: Duration,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            timeout: Duration::from_secs(30),
            run_timeout: Duration::from_secs(30) * RUN_TIMEOUT_FACTOR,
            connect_timeout: Duration::from_secs(10),
            max_bytes: 8 * 1024 * 1024,
            allow_http: false,
            ca_file: None,
            tries: 3,
            backoff: Duration::from_millis(500),
            max_retry_wait: Duration::from_secs(60),
        }
    }
}

/// `ETag` / `Last-Modified` of a response, sent back on the next run to skip unchanged downloads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validators {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
}

impl Validators {
    pub fn is_empty(&self) -> bool {
        self.etag.is_none() && self.last_modified.is_none()
    }
}

/// A successful download.
#[derive(Debug)]
pub struct Download {
    pub body: Vec<u8>,
    /// Where the body came from after redirects (relative links resolve against it).
    pub url: Url,
    pub content_type: Option<String>,
    pub validators: Validators,
}

/// The answer to a (possibly conditional) GET.
#[derive(Debug)]
pub enum Got {
    Body(Download),
    /// 304: unchanged since the validators we sent.
    NotModified,
}

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("refusing the plain-HTTP address {0}")]
    Insecure(String),
    #[error("GET {url} answered HTTP {status}{}", tries_note(*.tries))]
    Status {
        url: String,
        status: u16,
        tries: u32,
    },
    #[error("GET {url} timed out after {secs} s{}", tries_note(*.tries))]
    Timeout { url: String, secs: u64, tries: u32 },
    #[error("gave up on {url}: the downloads of this run took longer than {secs} s in all")]
    RunTimeout { url: String, secs: u64 },
    #[error("could not reach {url}{}", tries_note(*.tries))]
    Connect {
        url: String,
        tries: u32,
        #[source]
        source: reqwest::Error,
    },
    #[error("the download of {url} was cut short{}", tries_note(*.tries))]
    Body {
        url: String,
        tries: u32,
        #[source]
        source: std::io::Error,
    },
    #[error("{url} is larger than the limit of {limit} bytes")]
    TooLarge { url: String, limit: u64 },
    #[error("{url} asks us to wait {secs} s before trying again (we wait at most {max} s)")]
    RetryTooLate { url: String, secs: u64, max: u64 },
    #[error("GET {url} failed")]
    Request {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("could not read the CA file `{}`", .path.display())]
    CaFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the CA file `{}` holds no PEM certificate", .path.display())]
    CaFileEmpty { path: PathBuf },
    #[error("could not set up the HTTP client")]
    Client(#[source] reqwest::Error),
}

fn tries_note(tries: u32) -> String {
    if tries > 1 {
        format!(" (gave up after {tries} tries)")
    } else {
        String::new()
    }
}

impl HttpError {
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            HttpError::Insecure(_) => "use an https:// address, or pass --allow-http if you really mean plain HTTP".into(),
            HttpError::Status { status: 404 | 410, url, .. } => format!(
                "the list may have moved: open {} in a browser (or the Bits page, {}), or pass a saved CSV with --source",
                crate::sanitize::for_terminal(url),
                super::DEFAULT_SOURCE
            ),
            HttpError::Status { status, .. } if *status >= 500 || *status == 429 => {
                "the server is having trouble; the last good configuration stays in place, try again later".into()
            }
            HttpError::Status { .. } => return None,
            HttpError::Timeout { .. } => "the server is slow or unreachable; raise --timeout or try again later".into(),
            HttpError::RunTimeout { .. } => format!("a run may take {RUN_TIMEOUT_FACTOR} × --timeout in all; the server is too slow, try again later"),
            HttpError::Connect { source, .. } => {
                let chain = error_chain_text(source);
                if is_certificate_error(&chain) {
                    "the server's certificate is not trusted; behind a TLS-inspecting proxy, pass its CA with --ca-file".into()
                } else if chain.contains("InvalidContentType")
                    || chain.contains("corrupt message")
                    || chain.contains("tls handshake eof")
                {
                    "the server did not answer in TLS: is this port plain HTTP? An http:// address needs --allow-http".into()
                } else if chain.contains("dns error") || chain.contains("failed to lookup") {
                    "the name does not resolve: check DNS, or the proxy settings (HTTPS_PROXY)".into()
                } else if chain.contains("Connection refused") {
                    "nothing listens at that address and port; check the URL, the proxy settings (HTTPS_PROXY) and the firewall".into()
                } else {
                    "check DNS, the proxy settings (HTTPS_PROXY) and the firewall, then try again".into()
                }
            }
            HttpError::Body { .. } => "the connection broke mid-download; try again later".into(),
            HttpError::TooLarge { .. } => "this is far larger than the list should be; raise --max-size only if you trust the source".into(),
            HttpError::RetryTooLate { .. } => "try again later".into(),
            HttpError::CaFile { .. } | HttpError::CaFileEmpty { .. } => "--ca-file takes a PEM file with one or more certificates".into(),
            HttpError::Request { source, .. } if error_chain_text(source).contains("refusing a redirect") => {
                "the server redirects to plain http://; pass --allow-http only if you trust the network path".into()
            }
            HttpError::Request { .. } | HttpError::Client(_) => return None,
        })
    }
}

/// A certificate that does not verify: retrying cannot help, and the hint is --ca-file.
fn is_certificate_error(chain: &str) -> bool {
    chain.contains("certificate")
        || chain.contains("UnknownIssuer")
        || chain.contains("NotValidForName")
}

fn error_chain_text(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        text.push_str(&format!(": {s} {s:?}"));
        cur = s.source();
    }
    text
}

/// A configured client; build once, use for the page and the CSV. Its run's deadline starts when it is
/// built.
pub struct HttpClient {
    client: Client,
    opts: HttpOptions,
    run_deadline: Instant,
}

/// What one attempt got, on the worker thread that made it.
enum Attempt {
    Sent(Result<Response, reqwest::Error>),
    Read(StatusCode, Result<Download, HttpError>),
}

impl HttpClient {
    pub fn new(opts: &HttpOptions) -> Result<HttpClient, HttpError> {
        let allow_http = opts.allow_http;
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 5 {
                attempt.error("more than 5 redirects")
            } else if attempt.url().scheme() != "https"
                && !(allow_http && attempt.url().scheme() == "http")
            {
                let msg = format!(
                    "refusing a redirect to {} (only https is followed; --allow-http allows http://)",
                    attempt.url()
                );
                attempt.error(msg)
            } else {
                attempt.follow()
            }
        });
        let mut builder = Client::builder()
            .use_rustls_tls()
            .min_tls_version(reqwest::tls::Version::TLS_1_2)
            .https_only(!opts.allow_http)
            .user_agent(concat!("bits-tls/", env!("CARGO_PKG_VERSION")))
            .timeout(opts.timeout)
            .connect_timeout(opts.connect_timeout)
            .redirect(redirects)
            .gzip(true);
        if let Some(path) = &opts.ca_file {
            let pem = std::fs::read(path).map_err(|source| HttpError::CaFile {
                path: path.clone(),
                source,
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).unwrap_or_default();
            if certs.is_empty() {
                return Err(HttpError::CaFileEmpty { path: path.clone() });
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder.build().map_err(HttpError::Client)?;
        Ok(HttpClient {
            client,
            opts: opts.clone(),
            run_deadline: Instant::now() + opts.run_timeout,
        })
    }

    /// GET with retries. `accept` is the Accept header; `validators` make the request conditional.
    pub fn get(
        &self,
        url: &Url,
        accept: &str,
        validators: Option<&Validators>,
        log: &dyn Fn(String),
    ) -> Result<Got, HttpError> {
        let shown = crate::sanitize::for_terminal(url.as_str());
        match url.scheme() {
            "https" => {}
            "http" if self.opts.allow_http => {}
            _ => return Err(HttpError::Insecure(shown)),
        }
        let tries = self.opts.tries.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt >= tries;
            let mut req = self.client.get(url.clone()).header(ACCEPT, accept);
            if let Some(v) = validators {
                if let Some(etag) = &v.etag {
                    req = req.header(IF_NONE_MATCH, etag);
                }
                if let Some(lm) = &v.last_modified {
                    req = req.header(IF_MODIFIED_SINCE, lm);
                }
            }
            log(format!("GET {shown} (try {attempt} of {tries})"));
            let left = self.run_deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.run_timeout(&shown));
            }
            // The request runs on a worker thread so that its deadline holds however the server
            // behaves: reqwest's own timeout restarts with every read, and a body sent at one byte
            // a second never trips it. A worker given up on ends with the process.
            let budget = self.opts.timeout.min(left);
            let (tx, rx) = std::sync::mpsc::channel();
            {
                let (limit, shown) = (self.opts.max_bytes, shown.clone());
                let secs = self.opts.timeout.as_secs();
                std::thread::spawn(move || {
                    let got = match req.send() {
                        Ok(resp) if resp.status().is_success() => {
                            let status = resp.status();
                            Attempt::Read(status, read_body(resp, &shown, limit, secs))
                        }
                        other => Attempt::Sent(other),
                    };
                    let _ = tx.send(got);
                });
            }
            let sent = match rx.recv_timeout(budget) {
                Ok(Attempt::Read(status, body)) => {
                    log(format!("{shown} answered {status}"));
                    match body {
                        Ok(d) => return Ok(Got::Body(d)),
                        Err(HttpError::Body { source, .. }) if !last => {
                            log(format!("{shown}: download cut short ({source})"));
                            None
                        }
                        Err(HttpError::Body { source, url, .. }) => {
                            return Err(HttpError::Body {
                                url,
                                tries: attempt,
                                source,
                            })
                        }
                        Err(HttpError::Timeout { .. }) if !last => None,
                        Err(HttpError::Timeout { url, secs, .. }) => {
                            return Err(HttpError::Timeout {
                                url,
                                secs,
                                tries: attempt,
                            })
                        }
                        Err(e) => return Err(e),
                    }
                }
                Ok(Attempt::Sent(sent)) => Some(sent),
                Err(_) if budget < self.opts.timeout => return Err(self.run_timeout(&shown)),
                Err(_) if !last => {
                    log(format!(
                        "{shown}: no complete answer within {} s",
                        budget.as_secs()
                    ));
                    None
                }
                Err(_) => {
                    return Err(HttpError::Timeout {
                        url: shown,
                        secs: self.opts.timeout.as_secs(),
                        tries: attempt,
                    })
                }
            };
            let wait = match sent {
                None => None,
                Some(sent) => match sent {
                    Err(e) if e.is_timeout() => {
                        if last {
                            return Err(HttpError::Timeout {
                                url: shown,
                                secs: self.opts.timeout.as_secs(),
                                tries: attempt,
                            });
                        }
                        None
                    }
                    Err(e) if e.is_connect() => {
                        if last || is_certificate_error(&error_chain_text(&e)) {
                            return Err(HttpError::Connect {
                                url: shown,
                                tries: attempt,
                                source: e,
                            });
                        }
                        None
                    }
                    Err(e) => {
                        return Err(HttpError::Request {
                            url: shown,
                            source: e,
                        })
                    }
                    Ok(resp) => {
                        let status = resp.status();
                        log(format!("{shown} answered {status}"));
                        if status == StatusCode::NOT_MODIFIED {
                            return Ok(Got::NotModified);
                        }
                        if (status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS)
                            && !last
                        {
                            let asked = retry_after(resp.headers());
                            if let Some(secs) = asked {
                                if secs > self.opts.max_retry_wait.as_secs() {
                                    return Err(HttpError::RetryTooLate {
                                        url: shown,
                                        secs,
                                        max: self.opts.max_retry_wait.as_secs(),
                                    });
                                }
                            }
                            asked.map(Duration::from_secs)
                        } else {
                            return Err(HttpError::Status {
                                url: shown,
                                status: status.as_u16(),
                                tries: attempt,
                            });
                        }
                    }
                },
            };
            let delay =
                wait.unwrap_or_else(|| self.opts.backoff * 2u32.saturating_pow(attempt - 1));
            if Instant::now() + delay >= self.run_deadline {
                return Err(self.run_timeout(&shown));
            }
            log(format!("retrying {shown} in {:.1} s", delay.as_secs_f64()));
            std::thread::sleep(delay);
        }
    }

    fn run_timeout(&self, shown: &str) -> HttpError {
        HttpError::RunTimeout {
            url: shown.into(),
            secs: self.opts.run_timeout.as_secs(),
        }
    }
}

/// Reads the body (on the request's worker thread), refusing more than `limit` bytes.
fn read_body(resp: Response, shown: &str, limit: u64, secs: u64) -> Result<Download, HttpError> {
    if resp.content_length().is_some_and(|n| n > limit) {
        return Err(HttpError::TooLarge {
            url: shown.into(),
            limit,
        });
    }
    let url = resp.url().clone();
    let headers = resp.headers();
    let header = |name| {
        headers
            .get(name)
            .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
            .map(str::to_string)
    };
    let content_type = header(reqwest::header::CONTENT_TYPE);
    let validators = Validators {
        etag: header(ETAG),
        last_modified: header(LAST_MODIFIED),
    };
    let mut body = Vec::new();
    resp.take(limit + 1)
        .read_to_end(&mut body)
        .map_err(|source| {
            if source.kind() == std::io::ErrorKind::TimedOut
                || error_chain_text(&source).contains("timed out")
            {
                HttpError::Timeout {
                    url: shown.into(),
                    secs,
                    tries: 1,
                }
            } else {
                HttpError::Body {
                    url: shown.into(),
                    tries: 1,
                    source,
                }
            }
        })?;
    if body.len() as u64 > limit {
        return Err(HttpError::TooLarge {
            url: shown.into(),
            limit,
        });
    }
    Ok(Download {
        body,
        url,
        content_type,
        validators,
    })
}

/// `Retry-After` as seconds (a number, or an HTTP date from now).
fn retry_after(headers: &HeaderMap) -> Option<u64> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(secs);
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let secs = (when.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_seconds();
    Some(secs.max(0) as u64)
}

/// `8388608`, `8MiB`, `512KiB`, `10MB`: a size in bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits = t.trim_end_matches(|c: char| c.is_ascii_alphabetic()).trim();
    let unit = t[digits.len()..].trim();
    let factor: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        _ => {
            return Err(format!(
                "`{unit}` is not a size unit (use B, KiB, MiB, GiB, KB, MB or GB)"
            ))
        }
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{s}` is not a size like 8388608 or 8MiB"))?;
    match n.checked_mul(factor) {
        Some(0) => Err("must be at least 1 byte".into()),
        Some(v) => Ok(v),
        None => Err(format!("`{s}` is too large")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(7));
        h.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), Some(0));
        h.insert(RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn refuses_plain_http_without_the_flag() {
        let client = HttpClient::new(&HttpOptions::default()).unwrap();
        let url = Url::parse("http://127.0.0.1:9/x.csv").unwrap();
        let err = client.get(&url, "*/*", None, &|_| {}).unwrap_err();
        assert!(matches!(err, HttpError::Insecure(_)), "{err}");
        let url = Url::parse("ftp://example.no/x.csv").unwrap();
        assert!(matches!(
            client.get(&url, "*/*", None, &|_| {}).unwrap_err(),
            HttpError::Insecure(_)
        ));
    }
}
