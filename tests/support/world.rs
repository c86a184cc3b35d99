//! The delivery tests' private mail world: a network namespace of its own (`ip netns add`), dnsmasq
//! inside it answering MX and A records for a handful of `.test` domains, and one receiving server per
//! domain on 127.0.0.X:25 inside it (tests/delivery/receiver.py: valid certificate from a test CA, no
//! STARTTLS, a certificate naming the wrong host, TLS 1.1 only with RSA key exchange, an expired
//! certificate, an IDN domain and unlisted domains without STARTTLS). Everything is torn down when the world is dropped.

use super::mta::{postfix_root, text};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub const SETUP: &str =
    "run `sudo bash scripts/setup-test-tools.sh` first (CI runs it from .ci/run)";

/// The receiving servers: domain, address, mode, which certificate, and whether the list has it.
/// `xn--blbr-roah` is `blåbær`: mail to it is also sent to the UTF-8 address with SMTPUTF8. `partner` is
/// not listed but has an entry in a bilateral table the Postfix admin already had.
pub const SERVERS: &[(&str, &str, &str, Cert, bool)] = &[
    ("valid", "127.0.0.11", "tls", Cert::Valid, true),
    ("plain", "127.0.0.12", "plain", Cert::None, true),
    ("wrongname", "127.0.0.13", "tls", Cert::WrongName, true),
    ("oldtls", "127.0.0.14", "oldtls", Cert::Valid, true),
    ("expired", "127.0.0.15", "tls", Cert::Expired, true),
    ("open", "127.0.0.16", "plain", Cert::None, false),
    ("xn--blbr-roah", "127.0.0.17", "plain", Cert::None, true),
    ("partner", "127.0.0.18", "plain", Cert::None, false),
];

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Cert {
    None,
    Valid,
    WrongName,
    Expired,
}

/// A process killed when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A network namespace with its own resolv.conf; deleted with everything in it when dropped.
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// A namespace whose resolver is the test world's dnsmasq (127.0.0.53).
    pub fn new() -> Netns {
        Netns::with_resolv_conf(
            "bitstls",
            "nameserver 127.0.0.53\noptions timeout:2 attempts:2\n",
        )
    }

    /// A namespace named `prefix`PID`x`N with `resolv_conf` as its /etc/resolv.conf.
    pub fn with_resolv_conf(prefix: &str, resolv_conf: &str) -> Netns {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "{prefix}{}x{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let ns = Netns { name };
        run_ok(Command::new("ip").args(["netns", "add", &ns.name]));
        run_ok(ns.command("ip").args(["link", "set", "lo", "up"]));
        let etc = ns.etc();
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::write(etc.join("resolv.conf"), resolv_conf).unwrap();
        ns
    }

    pub fn etc(&self) -> PathBuf {
        PathBuf::from("/etc/netns").join(&self.name)
    }

    /// `program` run inside the namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
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

pub fn run_ok(cmd: &mut Command) -> String {
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

pub use super::pki::Pki;

/// The namespace with DNS and the receiving servers running.
pub struct World {
    // Fields drop in this order: processes first, then the namespace, then the files.
    _procs: Vec<Proc>,
    pub ns: Netns,
    pub pki: Pki,
    pub events: PathBuf,
    pub dir: tempfile::TempDir,
}

impl World {
    pub fn new() -> World {
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
        let pki = Pki::in_dir(dir.path());
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
            // A subdomain with the same MX, for the tests of subdomain handling.
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

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The list of participants: every server but `open`.
    pub fn list_csv(&self) -> PathBuf {
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

    pub fn render(&self, target: &str, args: &[&str]) -> String {
        render_as_configured(target, &self.list_csv(), args)
    }

    /// Messages a receiver recorded for `rcpt`, as (encrypted, TLS version).
    pub fn received(&self, rcpt: &str) -> Vec<(bool, Option<String>)> {
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
    pub fn messages(&self, rcpt: &str) -> Vec<serde_json::Value> {
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
    pub fn tls_failed(&self, name: &str) -> bool {
        std::fs::read_to_string(&self.events)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .any(|e| e["server"] == name && e["event"] == "tls_failed")
    }

    /// Submits a message over SMTP to 127.0.0.1:`port` inside the namespace (Python's smtplib).
    pub fn submit(&self, port: u16, to: &str) {
        self.submit_from(port, "sender@sender.test", to);
    }

    /// Submits from `from`; a non-ASCII address is sent with SMTPUTF8.
    pub fn submit_from(&self, port: u16, from: &str, to: &str) {
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
pub fn render_as_configured(target: &str, list: &Path, args: &[&str]) -> String {
    let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    if let Some(c) = std::env::var_os("BITS_TLS_DELIVERY_CONFIG") {
        all.extend(["--config".into(), c.to_string_lossy().into_owned()]);
    }
    if let Some(t) = std::env::var_os("BITS_TLS_DELIVERY_TEMPLATES") {
        all.extend(["--templates".into(), t.to_string_lossy().into_owned()]);
    }
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    super::render(target, list, &all)
}

pub fn message(to: &str) -> String {
    format!("From: sender@sender.test\r\nTo: {to}\r\nSubject: forced TLS test\r\n\r\nHello.\r\n")
}

/// Waits until `f` returns Some, polling (no fixed sleeps).
pub fn poll<T>(
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
