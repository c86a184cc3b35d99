//! The TLS handshake with OpenSSL, the library Postfix and Exim use: a TLS 1.2 server with only CBC
//! suites is compliant and they deliver to it, while rustls (no CBC, no TLS < 1.2) would fail it — a
//! false alarm. Every protocol version and suite is offered so that an old server shows what it does
//! instead of failing the handshake; certificate errors are recorded per depth and the handshake goes
//! on, so the chain, the names and DANE are judged afterwards from what was presented. No SNI is sent,
//! as Postfix sends none at `verify` (smtp_tls_servername is empty by default).

use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::ssl::{
    Ssl, SslContext, SslContextBuilder, SslMethod, SslStream, SslVerifyMode, SslVersion,
};
use openssl::x509::{X509NameRef, X509Ref};
use serde::Serialize;
use std::net::TcpStream;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// The shared client context.
pub struct TlsClient {
    ctx: SslContext,
}

/// A certificate verification error OpenSSL reported, at its depth in the chain (0 = the server's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyError {
    pub depth: u32,
    /// OpenSSL's X509_V_ERR code.
    pub code: i32,
    pub text: String,
}

/// OpenSSL's X509_V_ERR codes the verdicts name.
pub mod code {
    pub const UNABLE_TO_GET_ISSUER_CERT: i32 = 2;
    pub const CERT_NOT_YET_VALID: i32 = 9;
    pub const CERT_HAS_EXPIRED: i32 = 10;
    pub const DEPTH_ZERO_SELF_SIGNED_CERT: i32 = 18;
    pub const SELF_SIGNED_CERT_IN_CHAIN: i32 = 19;
    pub const UNABLE_TO_GET_ISSUER_CERT_LOCALLY: i32 = 20;
    pub const UNABLE_TO_VERIFY_LEAF_SIGNATURE: i32 = 21;
}

/// One presented certificate.
#[derive(Debug, Clone, Serialize)]
pub struct CertInfo {
    pub subject: String,
    pub issuer: String,
    /// DNS names: subjectAltName dNSName entries, else the subject CN (as Postfix falls back).
    pub names: Vec<String>,
    pub not_before: String,
    pub not_after: String,
    /// Whole days from the probe until `not_after` (negative when expired).
    pub days_left: i64,
    pub sha256: String,
    pub spki_sha256: String,
    pub self_issued: bool,
    #[serde(skip)]
    pub der: Vec<u8>,
    #[serde(skip)]
    pub spki_der: Vec<u8>,
}

/// What the handshake showed.
#[derive(Debug, Clone, Serialize)]
pub struct Handshake {
    pub version: String,
    pub cipher: String,
    /// The chain as the server presented it, its own certificate first.
    pub chain: Vec<CertInfo>,
    /// Errors OpenSSL found verifying the chain against the trusted roots (empty: trusted).
    pub verify_errors: Vec<VerifyError>,
}

impl Handshake {
    /// The negotiated version is TLS 1.2 or newer.
    pub fn at_least_tls12(&self) -> bool {
        matches!(self.version.as_str(), "TLSv1.2" | "TLSv1.3")
    }
}

impl TlsClient {
    /// `ca_file` replaces the system store, as Postfix's smtp_tls_CAfile does.
    pub fn new(ca_file: Option<&Path>) -> anyhow::Result<TlsClient> {
        let mut b = SslContextBuilder::new(SslMethod::tls_client())?;
        b.set_min_proto_version(Some(SslVersion::TLS1))?;
        b.set_max_proto_version(None)?;
        // Old servers must be seen, not refused: every suite, security level 0 (RSA key exchange,
        // SHA-1 signatures). Whether the result is good enough is judged afterwards.
        b.set_cipher_list("ALL:@SECLEVEL=0")?;
        b.set_security_level(0);
        match ca_file {
            Some(p) => b
                .set_ca_file(p)
                .map_err(|e| anyhow::anyhow!("reading the CA file `{}`: {e}", p.display()))?,
            None => {
                b.set_default_verify_paths()?;
                // A vendored OpenSSL (the static package) looks under its own build prefix; the
                // system's bundle is found where the distribution keeps it.
                if let Some(bundle) = openssl_probe::probe().cert_file {
                    let _ = b.set_ca_file(&bundle);
                }
            }
        }
        b.set_verify(SslVerifyMode::PEER);
        Ok(TlsClient { ctx: b.build() })
    }

    /// The handshake on a connection after `220` to STARTTLS; on failure, OpenSSL's reason.
    pub fn handshake(
        &self,
        tcp: TcpStream,
        now: i64,
    ) -> Result<(SslStream<TcpStream>, Handshake), String> {
        let mut ssl = Ssl::new(&self.ctx).map_err(|e| e.to_string())?;
        let errors: Arc<Mutex<Vec<VerifyError>>> = Arc::default();
        let sink = errors.clone();
        ssl.set_verify_callback(SslVerifyMode::PEER, move |ok, store| {
            if !ok {
                let e = store.error();
                sink.lock().unwrap().push(VerifyError {
                    depth: store.error_depth(),
                    code: e.as_raw(),
                    text: e.error_string().to_string(),
                });
            }
            true
        });
        let stream = ssl.connect(tcp).map_err(|e| handshake_error(&e))?;
        let s = stream.ssl();
        let chain = s
            .peer_cert_chain()
            .map(|c| c.iter().map(|x| cert_info(x, now)).collect())
            .unwrap_or_default();
        let mut verify_errors = errors.lock().unwrap().clone();
        verify_errors.dedup();
        let hs = Handshake {
            version: s.version_str().to_string(),
            cipher: s
                .current_cipher()
                .map(|c| c.name().to_string())
                .unwrap_or_default(),
            chain,
            verify_errors,
        };
        Ok((stream, hs))
    }
}

fn handshake_error<S>(e: &openssl::ssl::HandshakeError<S>) -> String {
    use openssl::ssl::HandshakeError;
    match e {
        HandshakeError::SetupFailure(e) => e.to_string(),
        HandshakeError::Failure(m) | HandshakeError::WouldBlock(m) => {
            let err = m.error();
            match err.ssl_error() {
                Some(stack) => stack
                    .errors()
                    .iter()
                    .map(|e| e.reason().unwrap_or("unknown").to_string())
                    .collect::<Vec<_>>()
                    .join("; "),
                None => match err.io_error() {
                    Some(io) => io.to_string(),
                    None => "the connection closed during the handshake".into(),
                },
            }
        }
    }
}

/// `CN=mx.example.no, O=Example`.
fn name_text(n: &X509NameRef) -> String {
    n.entries()
        .map(|e| {
            format!(
                "{}={}",
                e.object().nid().short_name().unwrap_or("?"),
                e.data()
                    .to_string()
                    .map(|s| crate::sanitize::one_line(&s))
                    .unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `Dec 31 23:59:59 2020 GMT` → `2020-12-31T23:59:59Z`.
fn asn1_text(t: &openssl::asn1::Asn1TimeRef) -> String {
    let s = t.to_string();
    chrono::NaiveDateTime::parse_from_str(&s, "%b %e %H:%M:%S %Y GMT")
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or(s)
}

pub fn cert_info(x: &X509Ref, now: i64) -> CertInfo {
    let der = x.to_der().unwrap_or_default();
    let spki_der = x
        .public_key()
        .and_then(|k| k.public_key_to_der())
        .unwrap_or_default();
    let mut names: Vec<String> = x
        .subject_alt_names()
        .map(|sans| {
            sans.iter()
                .filter_map(|g| g.dnsname().map(|d| d.to_ascii_lowercase()))
                .collect()
        })
        .unwrap_or_default();
    if names.is_empty() {
        names = x
            .subject_name()
            .entries_by_nid(Nid::COMMONNAME)
            .filter_map(|e| e.data().to_string().ok().map(|s| s.to_ascii_lowercase()))
            .collect();
    }
    let names = names
        .into_iter()
        .map(|n| crate::sanitize::one_line(&n))
        .collect();
    let days_left = openssl::asn1::Asn1Time::from_unix(now)
        .ok()
        .and_then(|n| n.diff(x.not_after()).ok())
        .map_or(0, |d| {
            // diff gives days and seconds with the same sign.
            i64::from(d.days) + i64::from(d.secs.signum()).min(0)
        });
    let digest = |b: &[u8]| {
        openssl::hash::hash(MessageDigest::sha256(), b)
            .map(|d| hex(&d))
            .unwrap_or_default()
    };
    CertInfo {
        subject: name_text(x.subject_name()),
        issuer: name_text(x.issuer_name()),
        names,
        not_before: asn1_text(x.not_before()),
        not_after: asn1_text(x.not_after()),
        days_left,
        sha256: digest(&der),
        spki_sha256: digest(&spki_der),
        self_issued: x.issued(x) == openssl::x509::X509VerifyResult::OK,
        der,
        spki_der,
    }
}
