//! Proof that the generated configuration forces TLS when mail really flows (`cargo test --test delivery`).
//!
//! Each test builds a private mail world and tears it down afterwards: a network namespace of its own
//! (`ip netns add`), dnsmasq inside it answering MX and A records for a handful of `.test` domains, one
//! receiving server per domain on 127.0.0.X:25 inside it (tests/delivery/receiver.py: valid certificate
//! from a test CA, no STARTTLS, a certificate naming the wrong host, TLS 1.0/1.1 only, an expired
//! certificate), and the real Postfix or Exim sending inside it with bits-tls's output for a list of
//! those domains. Nothing outside this machine is contacted; every address is the namespace's own.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use support::mta::{
    exim_binary, postfix_root, text, try_sender, wiring_lines, write, PostfixDir, PostfixInstance,
};

const SETUP: &str = "run `sudo bash scripts/setup-test-tools.sh` first (CI runs it from .ci/run)";

/// The receiving servers: domain, address, mode, which certificate, and whether the list has it.
/// `xn--blbr-roah` is `blåbær`: mail to it is also sent to the UTF-8 address with SMTPUTF8. `partner` is
/// not listed but has an entry in a bilateral table the Postfix admin already had.
const SERVERS: &[(&str, &str, &str, Cert, bool)] = &[
    ("valid", "127.0.0.11", "tls", Cert::Valid, true),
    ("plain", "127.0.0.12", "plain", Cert::None, true),
    ("wrongname", "127.0.0.13", "tls", Cert::WrongName, true),
    ("oldtls", "127.0.0.14", "oldtls", Cert::Valid, true),
    ("expired", "127.0.0.15", "tls", Cert::Expired, true),
    ("open", "127.0.0.16", "plain", Cert::None, false),
    ("xn--blbr-roah", "127.0.0.17", "plain", Cert::None, true),
    ("partner", "127.0.0.18", "plain", Cert::None, false),
];

/// Subdomains with their own MX records, served by their parent's server.
const SUBDOMAINS: &[&str] = &["plain", "open"];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Cert {
    None,
    Valid,
    WrongName,
    Expired,
}

/// A process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A network namespace with its own resolv.conf; deleted with everything in it when dropped.
struct Netns {
    name: String,
}

impl Netns {
    fn new() -> Netns {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "bitstls{}x{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let ns = Netns { name };
        run_ok(Command::new("ip").args(["netns", "add", &ns.name]));
        run_ok(ns.command("ip").args(["link", "set", "lo", "up"]));
        let etc = ns.etc();
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::write(
            etc.join("resolv.conf"),
            "nameserver 127.0.0.53\noptions timeout:2 attempts:2\n",
        )
        .unwrap();
        ns
    }

    fn etc(&self) -> PathBuf {
        PathBuf::from("/etc/netns").join(&self.name)
    }

    /// `program` run inside the namespace.
    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
        let _ = std::fs::remove_dir_all(self.etc());
    }
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("could not run {cmd:?}: {e}; {SETUP}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// A test CA issuing the receivers' certificates.
struct Pki {
    dir: PathBuf,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl Pki {
    fn new(dir: &Path) -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "bits-tls delivery test CA");
        let cert = params.self_signed(&key).unwrap();
        std::fs::write(dir.join("ca.pem"), cert.pem()).unwrap();
        Pki {
            dir: dir.to_path_buf(),
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// Writes NAME.crt/NAME.key for `host`, optionally valid only in 2020, with an ECDSA key or (for
    /// RSA key exchange, as old servers use) an RSA key made by `openssl genpkey`.
    fn issue(&self, name: &str, host: &str, expired: bool, rsa: bool) -> (PathBuf, PathBuf) {
        let key = if rsa {
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
        let mut params = rcgen::CertificateParams::new(vec![host.to_string()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, host);
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2020, 12, 31);
        }
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let (c, k) = (
            self.dir.join(format!("{name}.crt")),
            self.dir.join(format!("{name}.key")),
        );
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c, k)
    }
}

/// The namespace with DNS and the receiving servers running.
struct World {
    // Fields drop in this order: processes first, then the namespace, then the files.
    _procs: Vec<Proc>,
    ns: Netns,
    pki: Pki,
    events: PathBuf,
    dir: tempfile::TempDir,
}

impl World {
    fn new() -> World {
        postfix_root(); // fail early, naming the setup script, if the tools are missing
        let dir = tempfile::Builder::new()
            .prefix("bits-tls-delivery")
            .tempdir()
            .unwrap();
        // The MTAs' unprivileged processes read certificates and lists from here.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let ns = Netns::new();
        let pki = Pki::new(dir.path());
        let events = dir.path().join("events.jsonl");
        let mut procs = Vec::new();

        let mut dns = ns.command("dnsmasq");
        dns.args([
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--listen-address=127.0.0.53",
            "--bind-interfaces",
            "--local=/test/",
            "--user=nobody",
            "--group=nogroup",
            "--pid-file=",
        ]);
        for (name, addr, ..) in SERVERS {
            dns.arg(format!("--mx-host={name}.test,mx.{name}.test,10"));
            dns.arg(format!("--host-record=mx.{name}.test,{addr}"));
        }
        for name in SUBDOMAINS {
            dns.arg(format!("--mx-host=sub.{name}.test,mx.{name}.test,10"));
        }
        procs.push(Proc(
            dns.stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("dnsmasq: {e}; {SETUP}")),
        ));

        let receiver = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/delivery/receiver.py");
        // All receivers start at once; then each must say it listens.
        let mut starting = Vec::new();
        for (name, addr, mode, cert, _) in SERVERS {
            let mut cmd = ns.command("python3");
            cmd.arg(&receiver)
                .args(["--address", addr, "--name", name, "--mode", mode, "--log"])
                .arg(&events);
            let host = format!("mx.{name}.test");
            let files = match cert {
                Cert::None => None,
                Cert::Valid => Some(pki.issue(name, &host, false, *mode == "oldtls")),
                Cert::WrongName => Some(pki.issue(name, "mx.someone-else.test", false, false)),
                Cert::Expired => Some(pki.issue(name, &host, true, false)),
            };
            if let Some((c, k)) = files {
                cmd.arg("--cert").arg(c).arg("--key").arg(k);
            }
            let child = cmd
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap_or_else(|e| panic!("python3: {e}; {SETUP}"));
            starting.push((name, Proc(child)));
        }
        for (name, mut child) in starting {
            let mut line = String::new();
            BufReader::new(child.0.stdout.take().unwrap())
                .read_line(&mut line)
                .unwrap();
            assert_eq!(line.trim(), "ready", "receiver {name} did not start");
            procs.push(child);
        }
        // DNS answers before anything is sent.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = ns
                .command("getent")
                .args(["hosts", "mx.valid.test"])
                .output()
                .unwrap();
            if text(&out.stdout).starts_with("127.0.0.11") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "dnsmasq does not answer in the namespace"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        World {
            dir,
            ns,
            pki,
            events,
            _procs: procs,
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The list of participants: every server but `open`.
    fn list_csv(&self) -> PathBuf {
        let mut csv = String::from("Virksomhet;Domene;Krav 5.2.4\n");
        for (name, _, _, _, listed) in SERVERS {
            if *listed {
                csv.push_str(&format!("Deltaker {name};{name}.test;Ja\n"));
            }
        }
        let p = self.path().join("liste.csv");
        std::fs::write(&p, csv).unwrap();
        p
    }

    fn render(&self, target: &str, args: &[&str]) -> String {
        render_as_configured(target, &self.list_csv(), args)
    }

    /// Messages a receiver recorded for `rcpt`, as (encrypted, TLS version).
    fn received(&self, rcpt: &str) -> Vec<(bool, Option<String>)> {
        self.messages(rcpt)
            .iter()
            .map(|e| {
                (
                    e["encrypted"].as_bool().unwrap(),
                    e["tls_version"].as_str().map(String::from),
                )
            })
            .collect()
    }

    /// The recorded message events for `rcpt` (with their `text`).
    fn messages(&self, rcpt: &str) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(&self.events).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|e| {
                e["event"] == "message"
                    && e["rcpt"]
                        .as_array()
                        .is_some_and(|r| r.iter().any(|x| x == rcpt))
            })
            .collect()
    }
}

impl World {
    /// Whether the server `name` recorded a failed TLS handshake.
    fn tls_failed(&self, name: &str) -> bool {
        std::fs::read_to_string(&self.events)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .any(|e| e["server"] == name && e["event"] == "tls_failed")
    }

    /// Submits a message over SMTP to 127.0.0.1:`port` inside the namespace (Python's smtplib).
    fn submit(&self, port: u16, to: &str) {
        self.submit_from(port, "sender@sender.test", to);
    }

    /// Submits from `from`; a non-ASCII address is sent with SMTPUTF8.
    fn submit_from(&self, port: u16, from: &str, to: &str) {
        let script = "import smtplib, sys\n\
                      s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]), timeout=20)\n\
                      utf8 = not (sys.argv[2] + sys.argv[3]).isascii()\n\
                      s.sendmail(sys.argv[2], [sys.argv[3]], sys.stdin.buffer.read(),\n\
                                 mail_options=['SMTPUTF8'] if utf8 else [])\n\
                      s.quit()\n";
        let mut child = self
            .ns
            .command("python3")
            .args(["-c", script, &port.to_string(), from, to])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(message(to).as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success(), "submitting to {to}");
    }
}

/// Renders with the options and templates an admin points the proof at (see the README):
/// `BITS_TLS_DELIVERY_CONFIG` (a bits-tls.toml whose options apply) and `BITS_TLS_DELIVERY_TEMPLATES`.
fn render_as_configured(target: &str, list: &Path, args: &[&str]) -> String {
    let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    if let Some(c) = std::env::var_os("BITS_TLS_DELIVERY_CONFIG") {
        all.extend(["--config".into(), c.to_string_lossy().into_owned()]);
    }
    if let Some(t) = std::env::var_os("BITS_TLS_DELIVERY_TEMPLATES") {
        all.extend(["--templates".into(), t.to_string_lossy().into_owned()]);
    }
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    support::render(target, list, &all)
}

fn message(to: &str) -> String {
    format!("From: sender@sender.test\r\nTo: {to}\r\nSubject: forced TLS test\r\n\r\nHello.\r\n")
}

/// Waits until `f` returns Some, polling (no fixed sleeps).
fn poll<T>(
    what: &str,
    timeout: Duration,
    mut f: impl FnMut() -> Option<T>,
    context: impl Fn() -> String,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}\n{}",
            context()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// main.cf for a sending Postfix in the world: the header's recommended lines (with `replace` applied
/// for this test's paths and speed), then `extra`.
fn sender_main_cf(header: &str, replace: &[(&str, String)], extra: &str) -> String {
    let mut cf =
        String::from("myhostname = sender.test\nmydestination =\nsmtp_connect_timeout = 5s\n");
    for (k, v) in wiring_lines(header) {
        let v = replace
            .iter()
            .find(|(name, _)| *name == k)
            .map_or(v, |(_, v)| v.clone());
        cf.push_str(&format!("{k} = {v}\n"));
    }
    cf.push_str(extra);
    cf
}

/// Renders `template` (a user template: no output check) for the world's list.
fn render_user_template(world: &World, template: &str) -> String {
    let file = write(world.path(), "user-template.j2", template);
    let out = support::bits()
        .args(["render", "-q", "--template", &file, "--source"])
        .arg(world.list_csv())
        .assert()
        .success();
    text(&out.get_output().stdout)
}

/// The first `status=` line Postfix logged for `to`.
fn outcome(postfix: &PostfixInstance, to: &str) -> Option<String> {
    postfix
        .conf
        .log()
        .lines()
        .find(|l| l.contains(&format!("to=<{to}>")) && l.contains("status="))
        .map(String::from)
}

/// The recipients of messages still in Postfix's queue.
fn queued(postfix: &PostfixInstance) -> Vec<String> {
    let root = postfix_root();
    let queue = run_ok(
        Command::new(root.join("usr/sbin/postqueue"))
            .env("LD_LIBRARY_PATH", root.join("usr/lib/postfix"))
            .env("MAIL_CONFIG", postfix.conf.path())
            .arg("-j"),
    );
    let mut out: Vec<String> = queue
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .flat_map(|m| {
            m["recipients"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["address"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    out.sort();
    out
}

#[test]
fn postfix_delivers_listed_domains_only_over_verified_tls() {
    let world = World::new();
    let ca = world.pki.ca().display().to_string();
    let ours = world.path().join("bits_tls_policy").display().to_string();
    let policy = world.render(
        "postfix-policy",
        &["--postfix-policy-path", &ours, "--postfix-ca-file", &ca],
    );
    write(world.path(), "bits_tls_policy", &policy);
    // A bilateral table the admin already had; the list's table is appended to it, as the header says.
    let bilateral = write(
        world.path(),
        "bilateral",
        "partner.test encrypt protocols=>=TLSv1.2\n",
    );
    let maps = wiring_lines(&policy)
        .into_iter()
        .find(|(k, _)| k == "smtp_tls_policy_maps")
        .unwrap()
        .1;
    assert_eq!(maps, format!("hash:{ours}"), "the header names the table");
    let main_cf = sender_main_cf(
        &policy,
        &[
            ("smtp_tls_policy_maps", format!("hash:{bilateral} {maps}")),
            // The sender hears of the delay at once, not after 4h; deferred mail is retried quickly.
            ("delay_warning_time", "1s".into()),
        ],
        "minimal_backoff_time = 1s\nmaximal_backoff_time = 2s\nqueue_run_delay = 1s\n",
    );
    for (k, v) in [
        ("smtp_tls_CAfile", ca.as_str()),
        ("smtp_tls_security_level", "may"),
        ("smtp_tls_loglevel", "1"),
    ] {
        assert!(main_cf.contains(&format!("\n{k} = {v}\n")), "{main_cf}");
    }
    let pf = PostfixDir::new(&main_cf);
    for map in [&bilateral, &ours] {
        let out = pf.postmap(&[&format!("hash:{map}")]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let postfix = PostfixInstance::start_in(pf, Some(&world.ns.name));
    // Mail is submitted over SMTP to the sender's own listener, from inside the namespace, by a sender
    // whose mailbox is at `open.test`, so delay notices can be read there.
    let sender = "sender@open.test";
    let mut recipients: Vec<String> = SERVERS
        .iter()
        .map(|(name, ..)| format!("pf@{name}.test"))
        .collect();
    recipients.extend(SUBDOMAINS.iter().map(|name| format!("pf@sub.{name}.test")));
    recipients.push("pf@blåbær.test".into());
    for to in &recipients {
        world.submit_from(postfix.port, sender, to);
    }
    let log = || postfix.conf.log();
    let results: Vec<(String, String)> = recipients
        .iter()
        .map(|to| {
            let line = poll(
                &format!("Postfix to {to}"),
                Duration::from_secs(60),
                || outcome(&postfix, to),
                log,
            );
            (to.clone(), line)
        })
        .collect();
    let reason = |to: &str| results.iter().find(|(t, _)| t == to).unwrap().1.clone();
    let delivered_plain = ["pf@open.test", "pf@sub.open.test"];
    for (to, line) in &results {
        if to == "pf@valid.test" {
            assert!(line.contains("status=sent"), "{line}");
            assert!(
                log().contains("Verified TLS connection established to mx.valid.test"),
                "{}",
                log()
            );
            let got = world.received(to);
            assert_eq!(got.len(), 1, "{got:?}");
            assert!(got[0].0, "delivered over TLS");
            assert!(
                matches!(got[0].1.as_deref(), Some("TLSv1.2" | "TLSv1.3")),
                "{got:?}"
            );
        } else if delivered_plain.contains(&to.as_str()) {
            assert!(
                line.contains("status=sent"),
                "an unlisted domain still gets mail without TLS: {line}"
            );
            assert_eq!(world.received(to), [(false, None)]);
        } else {
            assert!(line.contains("status=deferred"), "{to}: {line}");
            assert!(
                world.received(to).is_empty(),
                "{to}: the receiver must record no message"
            );
        }
    }
    for to in [
        "pf@plain.test",
        "pf@xn--blbr-roah.test",
        "pf@blåbær.test",
        "pf@sub.plain.test",
        "pf@partner.test",
    ] {
        assert!(
            reason(to).contains("TLS is required, but was not offered"),
            "{to}: {}",
            reason(to)
        );
    }
    for to in ["pf@wrongname.test", "pf@expired.test"] {
        assert!(
            reason(to).contains("Server certificate not verified"),
            "{}",
            reason(to)
        );
    }
    assert!(
        reason("pf@oldtls.test").contains("Cannot start TLS: handshake failure"),
        "{}",
        reason("pf@oldtls.test")
    );
    assert!(
        world.tls_failed("oldtls"),
        "the TLS 1.1 server saw the handshake fail"
    );
    // The sender is told, with the reason, long before the bounce.
    let notice = poll(
        "a delay notice for pf@plain.test",
        Duration::from_secs(30),
        || {
            world
                .messages(sender)
                .into_iter()
                .map(|m| m["text"].as_str().unwrap_or_default().to_string())
                .find(|t| t.contains("<pf@plain.test>"))
        },
        log,
    );
    assert!(notice.contains("Subject: Delayed Mail"), "{notice}");
    // Postfix folds the reason over two lines.
    let flat = notice.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains(
            "<pf@plain.test>: TLS is required, but was not offered by host mx.plain.test"
        ),
        "{notice}"
    );
    // The deferred mail stays queued.
    let mut waiting: Vec<String> = results
        .iter()
        .filter(|(_, l)| l.contains("status=deferred"))
        .map(|(t, _)| t.clone())
        .collect();
    waiting.sort();
    assert_eq!(waiting.len(), 8, "{waiting:?}");
    assert_eq!(queued(&postfix), waiting);
}

/// The TLS 1.1 receiver really tells the floor apart: a policy without `protocols=` delivers to it.
#[test]
fn postfix_without_the_floor_would_deliver_over_tls_1_1() {
    let world = World::new();
    let ca = world.pki.ca().display().to_string();
    let floorless = render_user_template(
        &world,
        "{% for d in domains %}{{ d.name }} verify\n{% endfor %}",
    );
    let table = write(world.path(), "floorless", &floorless);
    let real = world.render("postfix-policy", &["--postfix-ca-file", &ca]);
    let main_cf = sender_main_cf(
        &real,
        &[("smtp_tls_policy_maps", format!("hash:{table}"))],
        "",
    );
    let pf = PostfixDir::new(&main_cf);
    assert!(pf.postmap(&[&format!("hash:{table}")]).status.success());
    let postfix = PostfixInstance::start_in(pf, Some(&world.ns.name));
    world.submit(postfix.port, "nofloor@oldtls.test");
    let line = poll(
        "Postfix to oldtls.test",
        Duration::from_secs(60),
        || outcome(&postfix, "nofloor@oldtls.test"),
        || postfix.conf.log(),
    );
    assert!(line.contains("status=sent"), "{line}");
    assert_eq!(
        world.received("nofloor@oldtls.test"),
        [(true, Some("TLSv1.1".to_string()))]
    );
}

/// Through a relayhost, Postfix looks up the relay, not the domain: the `--postfix-relay` entry forces
/// TLS to it; without it, listed mail goes to a plaintext relay in plaintext.
#[test]
fn postfix_relay_routes_need_the_relay_entry() {
    let world = World::new();
    let ca = world.pki.ca().display().to_string();
    for (with_entry, to) in [(true, "relayed@valid.test"), (false, "bypass@valid.test")] {
        let mut args = vec!["--postfix-ca-file", ca.as_str()];
        if with_entry {
            args.extend(["--postfix-relay", "[mx.plain.test]"]);
        }
        let policy = world.render("postfix-policy", &args);
        assert_eq!(policy.contains("\n[mx.plain.test] verify "), with_entry);
        let table = write(world.path(), "relay-policy", &policy);
        let main_cf = sender_main_cf(
            &policy,
            &[("smtp_tls_policy_maps", format!("hash:{table}"))],
            "relayhost = [mx.plain.test]\n",
        );
        let pf = PostfixDir::new(&main_cf);
        assert!(pf.postmap(&[&format!("hash:{table}")]).status.success());
        let postfix = PostfixInstance::start_in(pf, Some(&world.ns.name));
        world.submit(postfix.port, to);
        let line = poll(
            &format!("Postfix to {to}"),
            Duration::from_secs(60),
            || outcome(&postfix, to),
            || postfix.conf.log(),
        );
        if with_entry {
            assert!(
                line.contains("status=deferred")
                    && line.contains("TLS is required, but was not offered by host mx.plain.test"),
                "{line}"
            );
            assert!(world.received(to).is_empty());
        } else {
            assert!(line.contains("status=sent"), "{line}");
            assert_eq!(
                world.received(to),
                [(false, None)],
                "the gap the entry closes"
            );
        }
    }
}

/// An Exim configuration with bits-tls's four pieces, sending from `sender.test`.
fn exim_sender_config(world: &World) -> PathBuf {
    let domains = world
        .path()
        .join("bits_forced_tls_domains")
        .display()
        .to_string();
    let ca = world.pki.ca().display().to_string();
    let args = [
        "--exim-domains-file",
        &domains,
        "--exim-verify-certificates",
        &ca,
    ];
    write(
        world.path(),
        "bits_forced_tls_domains",
        &world.render("exim-domains", &args),
    );
    let snippet = world.render("exim-config", &args);
    let piece = |n: usize| -> String {
        let start = snippet.find(&format!("# ---- {n}.")).unwrap();
        let end = snippet[start + 1..]
            .find("# ---- ")
            .map_or(snippet.len(), |e| start + 1 + e);
        snippet[start..end].to_string()
    };
    let spool = world.path().join("exim-spool");
    std::fs::create_dir_all(&spool).unwrap();
    run_ok(
        Command::new("chown")
            .args(["-R", "Debian-exim:"])
            .arg(&spool),
    );
    let config = format!(
        "exim_path = {exim}\nspool_directory = {spool}\nlog_file_path = {spool}/%slog\nprimary_hostname = sender.test\n\
         keep_environment =\ndisable_ipv6 = true\ndomainlist local_domains = sender.test\n\
         {main}\nbegin routers\n{router}\
         dnslookup:\n  driver = dnslookup\n  domains = ! +local_domains\n  transport = remote_smtp\n  no_more\n\
         begin transports\nremote_smtp:\n  driver = smtp\n{transport}\n\
         begin retry\n* * F,1h,15m\n",
        exim = exim_binary().display(),
        spool = spool.display(),
        main = piece(1),
        router = piece(3),
        transport = piece(4),
    );
    PathBuf::from(write(world.path(), "exim-send.conf", &config))
}

#[test]
fn exim_delivers_listed_domains_only_over_verified_tls() {
    let world = World::new();
    let conf = exim_sender_config(&world);
    let exim = exim_binary();
    for (name, ..) in SERVERS {
        let to = format!("ex@{name}.test");
        let mut child = world
            .ns
            .command(&exim)
            .arg("-C")
            .arg(&conf)
            .args(["-odi", "-f", "sender@sender.test", &to])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(message(&to).as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success(), "exim {to}");
    }
    let mainlog = world.path().join("exim-spool/mainlog");
    let log = || std::fs::read_to_string(&mainlog).unwrap_or_default();
    let outcome = |name: &str| -> Option<String> {
        log()
            .lines()
            .find(|l| {
                (l.contains(" => ") || l.contains(" == ")) && l.contains(&format!("ex@{name}.test"))
            })
            .map(String::from)
    };
    for (name, ..) in SERVERS {
        let line = poll(
            &format!("Exim to {name}.test"),
            Duration::from_secs(60),
            || outcome(name),
            log,
        );
        match *name {
            "valid" => {
                assert!(
                    line.contains(" => ") && line.contains("T=remote_smtp_forced_tls"),
                    "{line}"
                );
                assert!(
                    line.contains("X=TLS1.3") || line.contains("X=TLS1.2"),
                    "{line}"
                );
                assert!(line.contains("CV=yes"), "certificate verified: {line}");
                let got = world.received("ex@valid.test");
                assert_eq!(got.len(), 1);
                assert!(got[0].0);
            }
            "open" | "partner" => {
                assert!(
                    line.contains(" => ") && line.contains("T=remote_smtp "),
                    "{line}"
                );
                assert_eq!(world.received(&format!("ex@{name}.test")), [(false, None)]);
            }
            _ => {
                assert!(
                    line.contains(" == ") && line.contains("T=remote_smtp_forced_tls"),
                    "{name}: {line}"
                );
                let why = match *name {
                    "plain" | "xn--blbr-roah" => {
                        "a TLS session is required, but the server did not offer TLS support"
                    }
                    "oldtls" => "Error in protocol version",
                    _ => "certificate verification failed",
                };
                assert!(
                    line.contains("defer") && line.contains(why),
                    "{name}: {line}"
                );
                assert!(
                    world.received(&format!("ex@{name}.test")).is_empty(),
                    "{name}: no message may arrive"
                );
            }
        }
    }
    let queue = run_ok(Command::new(&exim).arg("-C").arg(&conf).arg("-bp"));
    for name in ["plain", "wrongname", "oldtls", "expired", "xn--blbr-roah"] {
        assert!(
            queue.contains(&format!("ex@{name}.test")),
            "{name} must stay queued:\n{queue}"
        );
    }
    assert!(
        !queue.contains("ex@valid.test") && !queue.contains("ex@open.test"),
        "{queue}"
    );
}

#[test]
fn exim_refuses_plaintext_from_listed_senders_and_accepts_tls() {
    let pki = support::TestPki::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let csv = dir.path().join("liste.csv");
    std::fs::write(
        &csv,
        "Virksomhet;Domene\nBits AS;bits.no\nKyst;kystbanken.no\n",
    )
    .unwrap();
    let domains = dir.path().join("domains").display().to_string();
    write(
        dir.path(),
        "domains",
        &render_as_configured("exim-domains", &csv, &["--exim-domains-file", &domains]),
    );
    let snippet = render_as_configured("exim-config", &csv, &["--exim-domains-file", &domains]);
    let main = &snippet[snippet.find("domainlist forced_tls_domains").unwrap()..];
    let main = &main[..main.find('\n').unwrap()];
    let acl_start = snippet.find("  deny    sender_domains").unwrap();
    let acl = &snippet[acl_start..acl_start + snippet[acl_start..].find("\n\n").unwrap()];
    let cert = write(dir.path(), "cert.pem", &pki.cert_pem);
    let key = write(dir.path(), "key.pem", &pki.key_pem);
    let spool = dir.path().join("spool");
    std::fs::create_dir_all(&spool).unwrap();
    run_ok(
        Command::new("chown")
            .args(["-R", "Debian-exim:"])
            .arg(&spool)
            .arg(&key),
    );
    let port = support::mta::free_port();
    let conf = write(
        dir.path(),
        "exim.conf",
        &format!(
            "spool_directory = {spool}\nlog_file_path = {spool}/%slog\nprimary_hostname = mx.test.example\n\
             keep_environment =\ndomainlist local_domains = test.example\n{main}\n\
             daemon_smtp_ports = {port}\nlocal_interfaces = 127.0.0.1\n\
             tls_advertise_hosts = *\ntls_certificate = {cert}\ntls_privatekey = {key}\n\
             acl_smtp_rcpt = acl_check_rcpt\nbegin acl\nacl_check_rcpt:\n{acl}\n  accept domains = +local_domains\n  deny\n",
            spool = spool.display()
        ),
    );
    let _daemon = Proc(
        Command::new(exim_binary())
            .args(["-C", &conf, "-bdf"])
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    poll(
        "Exim to listen",
        Duration::from_secs(20),
        || std::net::TcpStream::connect(("127.0.0.1", port)).ok(),
        || std::fs::read_to_string(spool.join("paniclog")).unwrap_or_default(),
    );
    let (rcpt, _) = try_sender(port, "someone@bits.no", "user@test.example", None);
    assert_eq!(rcpt.0, 550, "plaintext from a listed domain: {rcpt:?}");
    assert!(
        rcpt.1.contains("TLS required for mail from bits.no"),
        "{rcpt:?}"
    );
    let (rcpt, _) = try_sender(
        port,
        "someone@bits.no",
        "user@test.example",
        Some(&pki.ca_der),
    );
    assert_eq!(rcpt.0, 250, "the same sender over STARTTLS: {rcpt:?}");
    let (rcpt, _) = try_sender(port, "someone@unlisted.no", "user@test.example", None);
    assert_eq!(
        rcpt.0, 250,
        "an unlisted sender may use plaintext: {rcpt:?}"
    );
}

#[test]
fn postfix_refuses_plaintext_from_listed_senders_and_accepts_tls() {
    let pki = support::TestPki::new();
    let senders = render_as_configured("postfix-senders", &support::example_csv(), &[]);
    // Postfix's default matches a key's subdomains in access tables; some admins take smtpd_access_maps
    // out of parent_domain_matches_subdomains. Subdomains are refused either way.
    for parent_matching in [
        None,
        Some("parent_domain_matches_subdomains = debug_peer_list\n"),
    ] {
        let pf = PostfixDir::new(parent_matching.unwrap_or(""));
        let cert = write(pf.path(), "cert.pem", &pki.cert_pem);
        let key = write(pf.path(), "key.pem", &pki.key_pem);
        let table = write(pf.path(), "bits_tls_senders", &senders);
        let out = pf.postmap(&[&format!("hash:{table}")]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let wiring: String = wiring_lines(&senders)
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k} = {}\n",
                    v.replace("/etc/postfix/bits_tls_senders", &table)
                )
            })
            .collect();
        std::fs::write(
            pf.path().join("main.cf"),
            std::fs::read_to_string(pf.path().join("main.cf")).unwrap()
                + &wiring
                + &format!(
                    "smtpd_tls_security_level = may\nsmtpd_tls_cert_file = {cert}\nsmtpd_tls_key_file = {key}\n\
                     smtpd_recipient_restrictions = reject_unauth_destination\n\
                     mynetworks = 192.0.2.0/24\n"
                ),
        )
        .unwrap();
        // The test client (127.0.0.1) must not be in mynetworks, or permit_mynetworks lets it through, as
        // it would any client of the server's own network.
        let postfix = PostfixInstance::start(pf);
        let log = || postfix.conf.log();

        let (rcpt, mail) = try_sender(postfix.port, "someone@bits.no", "user@test.example", None);
        assert_eq!(mail.0, 250, "{}", log());
        assert_eq!(
            rcpt.0,
            550,
            "plaintext from a listed domain must be refused: {rcpt:?}\n{}",
            log()
        );
        assert!(
            rcpt.1.contains("Session encryption is required"),
            "{rcpt:?}"
        );
        // The IDN domain as A-label, and in UTF-8 with SMTPUTF8 (which Postfix looks up as UTF-8), and a
        // subdomain: all refused in plaintext.
        for sender in [
            "someone@xn--blbrbank-b0al.no",
            "someone@blåbærbank.no",
            "someone@BLÅBÆRBANK.no",
            "someone@mail.bits.no",
            "someone@post.blåbærbank.no",
        ] {
            let (rcpt, mail) = try_sender(postfix.port, sender, "user@test.example", None);
            assert_eq!(mail.0, 250, "{sender}: {mail:?}");
            assert_eq!(
                rcpt.0,
                550,
                "{sender} ({parent_matching:?}): {rcpt:?}\n{}",
                log()
            );
        }

        let (rcpt, _) = try_sender(
            postfix.port,
            "someone@bits.no",
            "user@test.example",
            Some(&pki.ca_der),
        );
        assert_eq!(
            rcpt.0,
            250,
            "the same sender over STARTTLS is accepted: {rcpt:?}\n{}",
            log()
        );

        for sender in [
            "someone@unlisted.no",
            "someone@bits.no.example",
            "someone@blåbær.example",
        ] {
            let (rcpt, _) = try_sender(postfix.port, sender, "user@test.example", None);
            assert_eq!(
                rcpt.0,
                250,
                "an unlisted sender may still use plaintext: {sender} {rcpt:?}\n{}",
                log()
            );
        }
    }
}
