//! The one test PKI: a private CA, and certificates it issues for test servers — in memory (the HTTPS
//! server on 127.0.0.1, a live smtpd) or as files in a directory (the delivery world's receivers), with
//! an ECDSA key or, for servers that must offer RSA key exchange, an RSA key.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A private certificate authority.
pub struct Pki {
    /// Where `ca.pem` and issued files go, for a PKI made with [`Pki::in_dir`].
    dir: Option<PathBuf>,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    pub ca_pem: String,
    pub ca_der: Vec<u8>,
}

/// A certificate and its key.
pub struct Issued {
    pub cert_pem: String,
    pub cert_der: Vec<u8>,
    pub key_pem: String,
    pub key_der: Vec<u8>,
}

impl Pki {
    /// A CA held in memory.
    pub fn new() -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "bits-tls test CA");
        let cert = params.self_signed(&key).unwrap();
        Pki {
            dir: None,
            ca_pem: cert.pem(),
            ca_der: cert.der().to_vec(),
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    /// A CA whose certificate is written to `dir/ca.pem`; [`Pki::issue`] writes there too.
    pub fn in_dir(dir: &Path) -> Pki {
        let mut pki = Pki::new();
        std::fs::write(dir.join("ca.pem"), &pki.ca_pem).unwrap();
        pki.dir = Some(dir.to_path_buf());
        pki
    }

    /// `ca.pem` of a PKI made with [`Pki::in_dir`].
    pub fn ca(&self) -> PathBuf {
        self.dir.as_ref().expect("Pki::in_dir").join("ca.pem")
    }

    /// A certificate for `hosts` (DNS names or IP addresses), optionally valid only in 2020, with an
    /// ECDSA key or (for RSA key exchange, as old servers use) an RSA key made by `openssl genpkey`.
    pub fn cert(&self, hosts: &[&str], expired: bool, rsa: bool) -> Issued {
        let key = if rsa {
            let out = Command::new("openssl")
                .args([
                    "genpkey",
                    "-algorithm",
                    "RSA",
                    "-pkeyopt",
                    "rsa_keygen_bits:2048",
                ])
                .output()
                .expect("openssl (run scripts/setup-test-tools.sh)");
            assert!(out.status.success(), "openssl genpkey failed");
            let pem = String::from_utf8(out.stdout).unwrap();
            rcgen::KeyPair::from_pem_and_sign_algo(&pem, &rcgen::PKCS_RSA_SHA256).unwrap()
        } else {
            rcgen::KeyPair::generate().unwrap()
        };
        let mut params =
            rcgen::CertificateParams::new(hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>())
                .unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, hosts[0]);
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2020, 12, 31);
        }
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Issued {
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            key_pem: key.serialize_pem(),
            key_der: key.serialize_der(),
        }
    }

    /// Writes NAME.crt/NAME.key for `host` beside `ca.pem` (see [`Pki::cert`]).
    pub fn issue(&self, name: &str, host: &str, expired: bool, rsa: bool) -> (PathBuf, PathBuf) {
        let dir = self.dir.as_ref().expect("Pki::in_dir");
        let issued = self.cert(&[host], expired, rsa);
        let (c, k) = (
            dir.join(format!("{name}.crt")),
            dir.join(format!("{name}.key")),
        );
        std::fs::write(&c, issued.cert_pem).unwrap();
        std::fs::write(&k, issued.key_pem).unwrap();
        (c, k)
    }
}
