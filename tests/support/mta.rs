//! The real Postfix and Exim, unpacked by scripts/setup-test-tools.sh, and an SMTP client for talking to
//! them. A missing tool fails the test with the setup command to run; it never skips.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SETUP: &str = "run `sudo bash scripts/setup-test-tools.sh` first (CI runs it from .ci/run)";

/// Where the setup script put the unpacked packages.
pub fn tools_dir() -> PathBuf {
    std::env::var_os("BITS_TLS_TEST_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-tools"))
}

fn require(path: PathBuf, what: &str) -> PathBuf {
    assert!(
        path.is_file(),
        "{what} is not installed at {}: {SETUP}",
        path.display()
    );
    path
}

pub fn postfix_root() -> PathBuf {
    let root = tools_dir().join("postfix");
    require(root.join("usr/sbin/postmap"), "Postfix (postmap)");
    root
}

pub fn exim_binary() -> PathBuf {
    require(tools_dir().join("exim/usr/sbin/exim4"), "Exim")
}

pub fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("could not run {cmd:?}: {e}; {SETUP}"));
    out
}

pub fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

/// A private Postfix configuration directory (main.cf, master.cf, queue) in a temporary directory.
pub struct PostfixDir {
    pub dir: tempfile::TempDir,
    root: PathBuf,
}

impl PostfixDir {
    /// `main_cf` is appended to the settings that make an unpacked Postfix run from here.
    pub fn new(main_cf: &str) -> PostfixDir {
        let root = postfix_root();
        let dir = tempfile::Builder::new()
            .prefix("bits-tls-postfix")
            .tempdir()
            .unwrap();
        // Postfix daemons run as the `postfix` user and must reach the queue inside.
        set_mode(dir.path(), 0o755);
        let p = dir.path().display().to_string();
        let r = root.display().to_string();
        let base = format!(
            "compatibility_level = 3.6\n\
             mail_owner = postfix\n\
             setgid_group = postdrop\n\
             command_directory = {r}/usr/sbin\n\
             daemon_directory = {r}/usr/lib/postfix/sbin\n\
             shlib_directory = {r}/usr/lib/postfix\n\
             meta_directory = {r}/etc/postfix\n\
             queue_directory = {p}/queue\n\
             data_directory = {p}/data\n\
             import_environment = MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ LANG=C LD_LIBRARY_PATH\n\
             maillog_file_prefixes = {p}\n\
             maillog_file = {p}/maillog\n\
             myhostname = mx.test.example\n\
             mydestination = test.example\n\
             inet_interfaces = 127.0.0.1\n\
             inet_protocols = ipv4\n\
             alias_maps =\n\
             alias_database =\n\
             local_recipient_maps =\n"
        );
        std::fs::write(dir.path().join("main.cf"), format!("{base}{main_cf}\n")).unwrap();
        std::fs::write(dir.path().join("master.cf"), "").unwrap();
        PostfixDir { dir, root }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// One of Postfix's commands with this configuration (`-c DIR`) and its libraries.
    pub fn command(&self, name: &str) -> Command {
        let mut c = Command::new(self.root.join("usr/sbin").join(name));
        c.env("LD_LIBRARY_PATH", self.root.join("usr/lib/postfix"))
            .arg("-c")
            .arg(self.path());
        c
    }

    pub fn postmap(&self, args: &[&str]) -> Output {
        run(self.command("postmap").args(args))
    }

    pub fn postconf(&self, args: &[&str]) -> Output {
        run(self.command("postconf").args(args))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path().join("maillog")).unwrap_or_default()
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn chown(path: &Path, owner: &str) {
    let out = run(Command::new("chown").arg(owner).arg(path));
    assert!(
        out.status.success(),
        "chown {owner} {}: {}",
        path.display(),
        text(&out.stderr)
    );
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running Postfix (master and its daemons) with an SMTP listener on 127.0.0.1. Stopped on drop.
pub struct PostfixInstance {
    pub conf: PostfixDir,
    pub port: u16,
    master: Child,
}

/// The services a receiving Postfix needs, none chrooted.
const MASTER_CF: &str = "\
pickup    unix  n - n 60 1 pickup
showq     unix  n - n - - showq
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
tlsmgr    unix  - - n 1000? 1 tlsmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
proxymap  unix  - - n - - proxymap
smtp      unix  - - n - - smtp
relay     unix  - - n - - smtp
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
local     unix  - n n - - local
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
";

impl PostfixInstance {
    /// Starts Postfix with an SMTP listener on 127.0.0.1 of this machine.
    pub fn start(conf: PostfixDir) -> PostfixInstance {
        PostfixInstance::start_in(conf, None)
    }

    /// Starts Postfix, inside the network namespace `netns` if given (`ip netns exec`, which also
    /// gives it the namespace's /etc/netns/NAME/resolv.conf).
    pub fn start_in(conf: PostfixDir, netns: Option<&str>) -> PostfixInstance {
        let port = free_port();
        let q = conf.path().join("queue");
        for d in [
            "pid", "private", "public", "maildrop", "incoming", "active", "deferred", "defer",
            "bounce", "corrupt", "hold", "saved", "trace", "flush",
        ] {
            std::fs::create_dir_all(q.join(d)).unwrap();
            if d != "pid" {
                chown(&q.join(d), "postfix");
            }
        }
        chown(&q.join("public"), "postfix:postdrop");
        chown(&q.join("maildrop"), "postfix:postdrop");
        set_mode(&q.join("private"), 0o700);
        set_mode(&q.join("public"), 0o710);
        set_mode(&q.join("maildrop"), 0o730);
        std::fs::create_dir_all(conf.path().join("data")).unwrap();
        chown(&conf.path().join("data"), "postfix");
        std::fs::write(
            conf.path().join("master.cf"),
            format!("127.0.0.1:{port} inet n - n - - smtpd\n{MASTER_CF}"),
        )
        .unwrap();
        let master = conf.root.join("usr/lib/postfix/sbin/master");
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(&master);
                c
            }
            None => Command::new(&master),
        };
        cmd.env("LD_LIBRARY_PATH", conf.root.join("usr/lib/postfix"))
            .arg("-c")
            .arg(conf.path())
            .arg("-d")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let master = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("could not start Postfix master: {e}; {SETUP}"));
        let mut inst = PostfixInstance { conf, port, master };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = match netns {
                None => TcpStream::connect(("127.0.0.1", port)).is_ok(),
                Some(_) => inst.conf.log().contains("daemon started"),
            };
            if ready {
                break;
            }
            if let Ok(Some(status)) = inst.master.try_wait() {
                let mut err = String::new();
                inst.master
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut err)
                    .ok();
                panic!(
                    "Postfix master exited ({status}): {err}\n{}",
                    inst.conf.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "Postfix did not start:\n{}",
                inst.conf.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        inst
    }
}

impl Drop for PostfixInstance {
    fn drop(&mut self) {
        // SIGTERM lets master stop its daemons; then make sure it is gone.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.master.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.master.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.master.kill();
        let _ = self.master.wait();
    }
}

trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

/// A minimal SMTP client: replies as (code, text of the last line).
pub struct Smtp {
    stream: Box<dyn Stream>,
}

impl Smtp {
    pub fn connect(port: u16) -> (Smtp, (u16, String)) {
        let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut s = Smtp {
            stream: Box::new(tcp),
        };
        let greeting = s.reply();
        (s, greeting)
    }

    fn reply(&mut self) -> (u16, String) {
        loop {
            let mut line = Vec::new();
            let mut byte = [0u8; 1];
            while self.stream.read(&mut byte).unwrap_or(0) == 1 {
                line.push(byte[0]);
                if byte[0] == b'\n' {
                    break;
                }
            }
            let line = String::from_utf8_lossy(&line).trim_end().to_string();
            assert!(line.len() >= 3, "connection closed or bad reply: {line:?}");
            if line.as_bytes().get(3) != Some(&b'-') {
                return (line[..3].parse().unwrap(), line[3..].trim().to_string());
            }
        }
    }

    pub fn cmd(&mut self, line: &str) -> (u16, String) {
        self.stream
            .write_all(format!("{line}\r\n").as_bytes())
            .unwrap();
        self.stream.flush().unwrap();
        self.reply()
    }

    /// STARTTLS, verifying the server's certificate (for `localhost`) against `ca_der`.
    pub fn starttls(self, ca_der: &[u8]) -> Smtp {
        let mut me = self;
        let (code, text) = me.cmd("STARTTLS");
        assert_eq!(code, 220, "STARTTLS refused: {text}");
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(rustls::pki_types::CertificateDer::from(ca_der.to_vec()))
            .unwrap();
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
        // The plain stream is moved into the TLS stream; nothing was buffered beyond the 220 reply.
        let plain: Box<dyn Stream> = me.stream;
        Smtp {
            stream: Box::new(rustls::StreamOwned::new(conn, plain)),
        }
    }
}

/// `MAIL FROM` then `RCPT TO` in one session, optionally after STARTTLS; returns the RCPT reply (where a
/// delayed sender restriction answers) and the MAIL reply.
pub fn try_sender(
    port: u16,
    sender: &str,
    rcpt: &str,
    tls_ca: Option<&[u8]>,
) -> ((u16, String), (u16, String)) {
    let (mut s, (code, text)) = Smtp::connect(port);
    assert_eq!(code, 220, "greeting: {text}");
    assert_eq!(s.cmd("EHLO client.test.example").0, 250);
    if let Some(ca) = tls_ca {
        s = s.starttls(ca);
        assert_eq!(s.cmd("EHLO client.test.example").0, 250);
    }
    // An internationalised address is sent as SMTPUTF8 mail (RFC 6531).
    let utf8 = if sender.is_ascii() { "" } else { " SMTPUTF8" };
    let mail = s.cmd(&format!("MAIL FROM:<{sender}>{utf8}"));
    let rcpt = s.cmd(&format!("RCPT TO:<{rcpt}>"));
    let _ = s.cmd("QUIT");
    (rcpt, mail)
}

/// Writes a file and returns its path as a string.
pub fn write(dir: &Path, name: &str, content: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p.display().to_string()
}

/// The `#   name = value` lines under "main.cf" in a rendered header.
pub fn wiring_lines(rendered: &str) -> Vec<(String, String)> {
    rendered
        .lines()
        .skip_while(|l| !l.starts_with("# main.cf"))
        .skip(1)
        .take_while(|l| l.starts_with("#   "))
        .map(|l| {
            let (k, v) = l
                .trim_start_matches("#   ")
                .split_once(" = ")
                .expect("name = value");
            (k.to_string(), v.to_string())
        })
        .collect()
}
