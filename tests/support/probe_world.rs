//! A private Internet for the probe (tests/probe.rs): a network namespace in which nsd serves a
//! DNSSEC-signed `test.` zone (ldns-signzone, one ECDSA key) and an unsigned child `insecure.test.`,
//! unbound validates with that key as its trust anchor (a second unbound does not validate), SMTP
//! receivers (tests/delivery/receiver.py) answer on 127.0.0.X:25 with certificates from a test CA
//! (root → intermediate → server), and HTTPS servers (tests/probe/policy_server.py) serve MTA-STS
//! policies. Everything is torn down on drop; nothing outside the machine is contacted.

use super::mta::{postfix_root, text, tools_dir};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SETUP: &str = "run `sudo bash scripts/setup-test-tools.sh` first (CI runs it from .ci/run)";

/// The validating resolver, the non-validating one, and the authoritative server.
pub const RESOLVER: &str = "127.0.0.53";
pub const PLAIN_RESOLVER: &str = "127.0.0.52";
pub const AUTHORITY: &str = "127.0.0.54";
/// The MTA-STS policy servers: a trusted certificate, and an untrusted one.
pub const POLICY: &str = "127.0.0.60";
pub const POLICY_BADCERT: &str = "127.0.0.61";

pub use super::world::{run_ok, Netns, Proc};

/// The test CA: a root (what the probe and Postfix trust), an intermediate that issues the servers'
/// certificates, and a self-signed stranger.
pub struct Pki {
    dir: PathBuf,
    inter: rcgen::Issuer<'static, rcgen::KeyPair>,
    inter_pem: String,
}

impl Pki {
    fn new(dir: &Path) -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
        let ca = |name: &str| {
            let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            p.distinguished_name.push(rcgen::DnType::CommonName, name);
            p
        };
        let root_key = KeyPair::generate().unwrap();
        let root_params = ca("bits-tls probe test root");
        let root_cert = root_params.self_signed(&root_key).unwrap();
        std::fs::write(dir.join("ca.pem"), root_cert.pem()).unwrap();
        let root = rcgen::Issuer::new(root_params, root_key);
        let inter_key = KeyPair::generate().unwrap();
        let inter_params = ca("bits-tls probe test intermediate");
        let inter_cert = inter_params.signed_by(&inter_key, &root).unwrap();
        Pki {
            dir: dir.to_path_buf(),
            inter_pem: inter_cert.pem(),
            inter: rcgen::Issuer::new(inter_params, inter_key),
        }
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// Writes NAME.crt (the server's certificate, then the intermediate unless `chain` is false) and
    /// NAME.key. `rsa` for the TLS 1.1 server's RSA key exchange; `expired` makes it valid only in 2020.
    pub fn issue(&self, name: &str, hosts: &[&str], opts: CertOpts) -> (PathBuf, PathBuf) {
        let key = if opts.rsa {
            let pem = run_ok(Command::new("openssl").args([
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
            ]));
            rcgen::KeyPair::from_pem_and_sign_algo(&pem, &rcgen::PKCS_RSA_SHA256).unwrap()
        } else {
            rcgen::KeyPair::generate().unwrap()
        };
        let hosts: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
        let mut params = rcgen::CertificateParams::new(hosts.clone()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, hosts[0].clone());
        if opts.expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2020, 12, 31);
        } else if let Some(days) = opts.days_left {
            use chrono::Datelike;
            let ymd = |d: chrono::NaiveDate| {
                rcgen::date_time_ymd(d.year(), d.month() as u8, d.day() as u8)
            };
            let today = chrono::Utc::now().date_naive();
            params.not_before = ymd(today - chrono::Days::new(30));
            params.not_after = ymd(today + chrono::Days::new(days));
        }
        let mut pem = if opts.self_signed {
            params.self_signed(&key).unwrap().pem()
        } else {
            params.signed_by(&key, &self.inter).unwrap().pem()
        };
        if opts.chain && !opts.self_signed {
            pem.push_str(&self.inter_pem);
        }
        let (c, k) = (
            self.dir.join(format!("{name}.crt")),
            self.dir.join(format!("{name}.key")),
        );
        std::fs::write(&c, pem).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c, k)
    }
}

/// How a server certificate is made.
#[derive(Clone, Copy)]
pub struct CertOpts {
    pub chain: bool,
    pub expired: bool,
    pub rsa: bool,
    pub self_signed: bool,
    pub days_left: Option<u64>,
}

impl Default for CertOpts {
    fn default() -> Self {
        CertOpts {
            chain: true,
            expired: false,
            rsa: false,
            self_signed: false,
            days_left: None,
        }
    }
}

/// One SMTP receiver: its MX host names, address, mode and certificate.
pub struct Receiver {
    pub name: &'static str,
    pub address: String,
    pub mode: &'static str,
    /// Names in the certificate (none: no certificate).
    pub cert_names: Vec<String>,
    pub cert: CertOpts,
    /// `greylist`: the whole reply it sends instead of its 421 (raw, CRLFs included).
    pub banner: Option<String>,
}

/// The world's configuration: zone lines added to `test.` and `insecure.test.`, the receivers, the
/// MTA-STS routes (host → JSON route) of the trusted and the untrusted policy server.
#[derive(Default)]
pub struct Layout {
    pub zone: Vec<String>,
    pub insecure_zone: Vec<String>,
    pub receivers: Vec<Receiver>,
    pub policies: Vec<(String, serde_json::Value)>,
    pub badcert_policies: Vec<(String, serde_json::Value)>,
    /// Owner names (relative to `test.`) whose TLSA RRSIG is broken after signing.
    pub bogus_tlsa: Vec<String>,
    /// TLSA `3 1 1` records for the SPKI of a receiver: (owner relative to `test.`, receiver name).
    pub tlsa_for: Vec<(String, &'static str)>,
    /// The same in `insecure.test.` (owner relative to it).
    pub insecure_tlsa_for: Vec<(String, &'static str)>,
    /// TLSA records with a digest of nobody's key.
    pub tlsa_wrong: Vec<String>,
}

/// The running world.
pub struct ProbeWorld {
    // Fields drop in this order: processes first, then the namespace, then the files.
    _procs: Vec<Proc>,
    pub ns: Netns,
    pub pki: Pki,
    /// The trust anchor (the zone's DNSKEY), as unbound and the probe read it.
    pub anchor: PathBuf,
    pub events: PathBuf,
    pub policy_log: PathBuf,
    pub dir: tempfile::TempDir,
}

fn unbound_conf(dir: &Path, address: &str, anchor: Option<&Path>, log: &str) -> String {
    let d = dir.display();
    let (modules, anchor) = match anchor {
        Some(a) => (
            "validator iterator",
            format!("  trust-anchor-file: \"{}\"\n", a.display()),
        ),
        None => ("iterator", String::new()),
    };
    format!(
        "server:\n  interface: {address}\n  port: 53\n  do-ip6: no\n  username: \"\"\n  chroot: \"\"\n\
         \x20 directory: \"{d}\"\n  pidfile: \"\"\n  use-syslog: no\n  logfile: \"{d}/{log}\"\n  verbosity: 1\n\
         \x20 do-not-query-localhost: no\n  local-zone: \"test.\" nodefault\n  qname-minimisation: no\n\
         \x20 module-config: \"{modules}\"\n  val-log-level: 2\n{anchor}\
         remote-control:\n  control-enable: no\nstub-zone:\n  name: \"test.\"\n  stub-addr: {AUTHORITY}\n"
    )
}

/// sha256 of a certificate file's public key (SPKI), hex: the data of a `3 1 1` TLSA record.
pub fn spki_sha256(cert_pem: &Path) -> String {
    let x = openssl::x509::X509::from_pem(&std::fs::read(cert_pem).unwrap()).unwrap();
    let spki = x.public_key().unwrap().public_key_to_der().unwrap();
    openssl::hash::hash(openssl::hash::MessageDigest::sha256(), &spki)
        .unwrap()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl ProbeWorld {
    pub fn new(layout: &Layout) -> ProbeWorld {
        postfix_root();
        let tools = tools_dir();
        let nsd = tools.join("nsd/usr/sbin/nsd");
        let unbound = tools.join("unbound/usr/sbin/unbound");
        assert!(
            nsd.is_file() && unbound.is_file(),
            "nsd and unbound: {SETUP}"
        );
        let dir = tempfile::Builder::new()
            .prefix("bits-tls-probe")
            .tempdir()
            .unwrap();
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let d = dir.path();
        let t0 = Instant::now();
        let lap = |what: &str| {
            if std::env::var_os("BITS_TLS_PROBE_TIMING").is_some() {
                eprintln!("world: {what} at {:?}", t0.elapsed());
            }
        };
        // `trust-ad`: the C library passes the resolver's AD bit on to Postfix.
        let ns = Netns::with_resolv_conf(
            "bitsprobe",
            &format!("nameserver {RESOLVER}\noptions trust-ad timeout:2 attempts:2\n"),
        );
        lap("netns");
        let pki = Pki::new(d);
        let events = d.join("events.jsonl");
        let policy_log = d.join("policy.jsonl");
        let mut procs = Vec::new();

        // Receivers first (their keys go into TLSA records).
        let receiver = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/delivery/receiver.py");
        let mut certs = std::collections::HashMap::new();
        let mut starting = Vec::new();
        let mut servers = Vec::new();
        for r in &layout.receivers {
            let mut server =
                serde_json::json!({"address": r.address, "name": r.name, "mode": r.mode});
            if let Some(b) = &r.banner {
                server["banner"] = b.clone().into();
            }
            if !r.cert_names.is_empty() {
                let names: Vec<&str> = r.cert_names.iter().map(String::as_str).collect();
                let (c, k) = pki.issue(r.name, &names, r.cert);
                server["cert"] = c.display().to_string().into();
                server["key"] = k.display().to_string().into();
                certs.insert(r.name, c);
            }
            servers.push(server);
        }
        // One process serves them all: a Python start-up per receiver would take seconds.
        let many = d.join("receivers.json");
        std::fs::write(&many, serde_json::Value::Array(servers).to_string()).unwrap();
        let child = ns
            .command("python3")
            .arg(&receiver)
            .arg("--many")
            .arg(&many)
            .arg("--log")
            .arg(&events)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("python3: {e}; {SETUP}"));
        starting.push(("receivers", Proc(child)));
        lap("receivers spawned");
        // The policy servers: one certificate for every policy host, and a self-signed stranger.
        let policy_server =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/probe/policy_server.py");
        for (address, routes, self_signed) in [
            (POLICY, &layout.policies, false),
            (POLICY_BADCERT, &layout.badcert_policies, true),
        ] {
            if routes.is_empty() {
                continue;
            }
            let hosts: Vec<&str> = routes.iter().map(|(h, _)| h.as_str()).collect();
            let (c, k) = pki.issue(
                &format!("policy-{address}"),
                &hosts,
                CertOpts {
                    self_signed,
                    ..CertOpts::default()
                },
            );
            let map: serde_json::Map<String, serde_json::Value> = routes.iter().cloned().collect();
            let file = d.join(format!("routes-{address}.json"));
            std::fs::write(&file, serde_json::Value::Object(map).to_string()).unwrap();
            let child = ns
                .command("python3")
                .arg(&policy_server)
                .args(["--address", address, "--cert"])
                .arg(c)
                .arg("--key")
                .arg(k)
                .arg("--routes")
                .arg(&file)
                .arg("--log")
                .arg(&policy_log)
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap();
            starting.push(("policy", Proc(child)));
        }

        // The zones, signed with one key (flags 257) that is also the trust anchor.
        let mut zone = format!(
            "$ORIGIN test.\n$TTL 300\n@ IN SOA ns.test. host.test. 1 3600 600 86400 300\n@ IN NS ns.test.\n\
             ns IN A {AUTHORITY}\ninsecure IN NS ns.insecure.test.\nns.insecure IN A {AUTHORITY}\n"
        );
        for l in &layout.zone {
            zone.push_str(l);
            zone.push('\n');
        }
        for (owner, name) in &layout.tlsa_for {
            zone.push_str(&format!(
                "{owner} IN TLSA 3 1 1 {}\n",
                spki_sha256(&certs[name])
            ));
        }
        for owner in &layout.tlsa_wrong {
            zone.push_str(&format!("{owner} IN TLSA 3 1 1 {}\n", "ab".repeat(32)));
        }
        std::fs::write(d.join("test.zone"), zone).unwrap();
        let mut insecure = format!(
            "$ORIGIN insecure.test.\n$TTL 300\n@ IN SOA ns.insecure.test. host.test. 1 3600 600 86400 300\n\
             @ IN NS ns.insecure.test.\nns IN A {AUTHORITY}\n"
        );
        for l in &layout.insecure_zone {
            insecure.push_str(l);
            insecure.push('\n');
        }
        for (owner, name) in &layout.insecure_tlsa_for {
            insecure.push_str(&format!(
                "{owner} IN TLSA 3 1 1 {}\n",
                spki_sha256(&certs[name])
            ));
        }
        std::fs::write(d.join("insecure.zone"), insecure).unwrap();
        let key = run_ok(Command::new("ldns-keygen").current_dir(d).args([
            "-a",
            "ECDSAP256SHA256",
            "-k",
            "test.",
        ]))
        .trim()
        .to_string();
        run_ok(
            Command::new("ldns-signzone")
                .current_dir(d)
                .args(["test.zone", &key]),
        );
        let anchor = d.join(format!("{key}.key"));
        let signed = d.join("test.zone.signed");
        if !layout.bogus_tlsa.is_empty() {
            let text = std::fs::read_to_string(&signed).unwrap();
            let broken: String = text
                .lines()
                .map(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    let owner_matches = layout
                        .bogus_tlsa
                        .iter()
                        .any(|o| f.first() == Some(&format!("{o}.test.").as_str()));
                    if owner_matches && f.get(3) == Some(&"RRSIG") && f.get(4) == Some(&"TLSA") {
                        // Another valid base64 signature of the same length: it does not verify.
                        let sig = f.last().unwrap();
                        let flipped: String = sig
                            .chars()
                            .enumerate()
                            .map(|(i, c)| {
                                if i == 10 {
                                    if c == 'A' {
                                        'B'
                                    } else {
                                        'A'
                                    }
                                } else {
                                    c
                                }
                            })
                            .collect();
                        format!("{}\n", l.replace(sig, &flipped))
                    } else {
                        format!("{l}\n")
                    }
                })
                .collect();
            std::fs::write(&signed, broken).unwrap();
        }
        lap("zones signed");
        let nsd_conf = format!(
            "server:\n  ip-address: {AUTHORITY}\n  port: 53\n  username: \"\"\n  chroot: \"\"\n  zonesdir: \"{p}\"\n\
             \x20 database: \"\"\n  zonelistfile: \"{p}/zone.list\"\n  xfrdfile: \"{p}/xfrd.state\"\n  xfrdir: \"{p}\"\n\
             \x20 pidfile: \"{p}/nsd.pid\"\n  logfile: \"{p}/nsd.log\"\n  server-count: 1\n  verbosity: 1\n\
             remote-control:\n  control-enable: no\n\
             zone:\n  name: \"test.\"\n  zonefile: \"test.zone.signed\"\n\
             zone:\n  name: \"insecure.test.\"\n  zonefile: \"insecure.zone\"\n",
            p = d.display()
        );
        std::fs::write(d.join("nsd.conf"), nsd_conf).unwrap();
        procs.push(Proc(
            ns.command(&nsd)
                .arg("-d")
                .arg("-c")
                .arg(d.join("nsd.conf"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        ));
        for (address, anchor, name) in [
            (RESOLVER, Some(anchor.as_path()), "unbound"),
            (PLAIN_RESOLVER, None, "unbound-plain"),
        ] {
            let conf = d.join(format!("{name}.conf"));
            std::fs::write(
                &conf,
                unbound_conf(d, address, anchor, &format!("{name}.log")),
            )
            .unwrap();
            procs.push(Proc(
                ns.command(&unbound)
                    .arg("-d")
                    .arg("-c")
                    .arg(&conf)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap(),
            ));
        }
        for (name, mut child) in starting {
            let mut line = String::new();
            BufReader::new(child.0.stdout.take().unwrap())
                .read_line(&mut line)
                .unwrap();
            assert_eq!(line.trim(), "ready", "{name} did not start");
            procs.push(child);
        }
        lap("all ready");
        let world = ProbeWorld {
            _procs: procs,
            ns,
            pki,
            anchor,
            events,
            policy_log,
            dir,
        };
        // Both resolvers answer (through nsd) before anything is probed.
        let deadline = Instant::now() + Duration::from_secs(10);
        for resolver in [RESOLVER, PLAIN_RESOLVER] {
            loop {
                let out = world
                    .ns
                    .command("python3")
                    .args(["-c", DNS_PING, resolver])
                    .output()
                    .unwrap();
                if out.status.success() {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "the resolver {resolver} does not answer: {}\n{}",
                    text(&out.stderr),
                    world.logs()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        lap("dns answers");
        world
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The DNS servers' logs, for a failure message.
    pub fn logs(&self) -> String {
        ["nsd.log", "unbound.log", "unbound-plain.log"]
            .iter()
            .map(|f| {
                format!(
                    "--- {f}\n{}",
                    std::fs::read_to_string(self.path().join(f)).unwrap_or_default()
                )
            })
            .collect()
    }

    /// Recorded receiver events of one server.
    pub fn events_of(&self, server: &str, event: &str) -> usize {
        std::fs::read_to_string(&self.events)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|e| e["server"] == server && e["event"] == event)
            .count()
    }

    /// `bits-tls ARGS` run inside the namespace: (exit code, stdout, stderr). `BITS_TLS_PROBE_BIN`
    /// runs another build instead (e.g. the static one `scripts/package.sh` made, with its own OpenSSL).
    pub fn bits(&self, args: &[&str]) -> (i32, String, String) {
        let bin = std::env::var_os("BITS_TLS_PROBE_BIN")
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_bits-tls").into());
        let mut cmd = self.ns.command(bin);
        for var in ["BITS_TLS_SOURCE", "BITS_TLS_CONFIG", "BITS_TLS_STATE"] {
            cmd.env_remove(var);
        }
        cmd.env("NO_COLOR", "1").current_dir(self.path()).args(args);
        let out = cmd.output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            text(&out.stdout),
            text(&out.stderr),
        )
    }
}

/// Asks RESOLVER (argv[1]) for `ns.test. A`; exits 0 on an answer.
const DNS_PING: &str = "import socket, sys\n\
q = bytes.fromhex('12340100000100000000000002'+'6e73'+'04'+'74657374'+'00'+'00010001')\n\
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
s.settimeout(0.3)\n\
s.sendto(q, (sys.argv[1], 53))\n\
a = s.recv(512)\n\
sys.exit(0 if a[3] & 15 == 0 and a[7] > 0 else 1)\n";
