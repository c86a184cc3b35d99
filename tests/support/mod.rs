//! Shared test helpers: the binary under test with a clean environment, fixtures, and an HTTP/1.1 server
//! on 127.0.0.1 that serves scripted replies (and misbehaves on purpose) and records every request.
#![allow(dead_code)]

pub mod exim;
pub mod grammar;
pub mod mta;
pub mod pki;
pub mod probe_world;
pub mod world;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// Variables a developer's shell may set that must not reach the binary under test.
const LEAKY_ENV: [&str; 10] = [
    "BITS_TLS_SOURCE",
    "BITS_TLS_CONFIG",
    "BITS_TLS_STATE",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "CLICOLOR_FORCE",
];

/// The `bits-tls` binary with an environment that cannot leak the developer's settings or proxies.
pub fn bits() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::from_std(bits_std());
    cmd.timeout(Duration::from_secs(120));
    cmd
}

/// [`bits`] as a plain `std::process::Command`, for tests that spawn it and read it while it runs.
pub fn bits_std() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_bits-tls"));
    for var in LEAKY_ENV {
        cmd.env_remove(var);
    }
    cmd.env("NO_PROXY", "127.0.0.1,localhost")
        .env("NO_COLOR", "1");
    cmd
}

/// Runs `cmd` with a standard output whose reader has already gone away (`| head` that closed early):
/// every write fails with EPIPE. Returns the exit code and what went to stderr.
pub fn with_closed_stdout(mut cmd: std::process::Command) -> (Option<i32>, String) {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = cmd
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn fixture_bytes(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// One scripted answer.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Wait this long before answering.
    pub delay: Duration,
    /// Announce the full Content-Length but send only this many body bytes, then close.
    pub cut_after: Option<usize>,
    /// Leave out Content-Length (the body ends when the connection closes).
    pub no_length: bool,
    /// Send the body one byte at a time with this pause between bytes.
    pub trickle: Option<Duration>,
}

impl Reply {
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: body.into(),
            delay: Duration::ZERO,
            cut_after: None,
            no_length: false,
            trickle: None,
        }
    }
    pub fn ok(body: impl Into<Vec<u8>>) -> Reply {
        Reply::new(200, body)
    }
    pub fn html(body: impl Into<Vec<u8>>) -> Reply {
        Reply::ok(body).header("Content-Type", "text/html; charset=utf-8")
    }
    pub fn csv(body: impl Into<Vec<u8>>) -> Reply {
        Reply::ok(body).header("Content-Type", "text/csv")
    }
    pub fn status(status: u16) -> Reply {
        Reply::new(status, format!("status {status}"))
    }
    pub fn redirect(to: &str) -> Reply {
        Reply::new(301, "").header("Location", to)
    }
    pub fn header(mut self, k: &str, v: &str) -> Reply {
        self.headers.push((k.into(), v.into()));
        self
    }
    pub fn delay(mut self, d: Duration) -> Reply {
        self.delay = d;
        self
    }
    pub fn cut_after(mut self, n: usize) -> Reply {
        self.cut_after = Some(n);
        self
    }
    pub fn trickle(mut self, pause: Duration) -> Reply {
        self.trickle = Some(pause);
        self
    }
    pub fn no_length(mut self) -> Reply {
        self.no_length = true;
        self
    }
    /// The body gzip-compressed, with `Content-Encoding: gzip`.
    pub fn gzip(mut self) -> Reply {
        use flate2::{write::GzEncoder, Compression};
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(&self.body).unwrap();
        self.body = enc.finish().unwrap();
        self.header("Content-Encoding", "gzip")
    }
}

/// A request as the server saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub path: String,
    pub headers: HashMap<String, String>,
}

type Routes = Arc<Mutex<HashMap<String, Vec<Reply>>>>;

/// Serves each path's replies in order; the last reply repeats. Unknown paths get 404.
pub struct Server {
    pub addr: SocketAddr,
    routes: Routes,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
}

/// Anything a connection can be: plain TCP or TLS over it.
pub trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// Wraps each accepted connection (e.g. in TLS) before HTTP is spoken on it.
pub type Wrap = Arc<dyn Fn(TcpStream) -> Option<Box<dyn Stream>> + Send + Sync>;

impl Server {
    pub fn start(routes: Vec<(&str, Vec<Reply>)>) -> Server {
        Server::start_with(routes, Arc::new(|s| Some(Box::new(s) as Box<dyn Stream>)))
    }

    pub fn start_with(routes: Vec<(&str, Vec<Reply>)>, wrap: Wrap) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let addr = listener.local_addr().unwrap();
        let routes: Routes = Arc::new(Mutex::new(
            routes
                .into_iter()
                .map(|(p, r)| (p.to_string(), r))
                .collect(),
        ));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s, st) = (routes.clone(), seen.clone(), stop.clone());
        thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (r, s, wrap) = (r.clone(), s.clone(), wrap.clone());
                thread::spawn(move || {
                    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
                    if let Some(stream) = wrap(conn) {
                        handle(stream, &r, &s);
                    }
                });
            }
        });
        Server {
            addr,
            routes,
            seen,
            stop,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Requests received so far for `path` (path without the query).
    pub fn hits(&self, path: &str) -> Vec<Seen> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.path.split('?').next() == Some(path))
            .cloned()
            .collect()
    }

    pub fn set(&self, path: &str, replies: Vec<Reply>) {
        self.routes
            .lock()
            .unwrap()
            .insert(path.to_string(), replies);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn handle(mut stream: Box<dyn Stream>, routes: &Routes, seen: &Arc<Mutex<Vec<Seen>>>) {
    let mut reader = BufReader::new(&mut stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return;
    }
    let target = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_string();
    let mut headers = HashMap::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    drop(reader);
    let path = target.split('?').next().unwrap_or("/").to_string();
    let reply = {
        let mut routes = routes.lock().unwrap();
        let key = if routes.contains_key(&target) {
            target.clone()
        } else {
            path.clone()
        };
        match routes.get_mut(&key) {
            Some(list) if list.len() > 1 => list.remove(0),
            Some(list) if !list.is_empty() => list[0].clone(),
            _ => Reply::status(404),
        }
    };
    seen.lock().unwrap().push(Seen {
        path: target,
        headers,
    });
    thread::sleep(reply.delay);
    let reason = match reply.status {
        200 => "OK",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    };
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nConnection: close\r\n",
        reply.status, reason
    );
    if !reply.no_length {
        head.push_str(&format!("Content-Length: {}\r\n", reply.body.len()));
    }
    for (k, v) in &reply.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let body = match reply.cut_after {
        Some(n) => &reply.body[..n.min(reply.body.len())],
        None => &reply.body[..],
    };
    match reply.trickle {
        Some(pause) => {
            for b in body {
                if stream
                    .write_all(&[*b])
                    .and_then(|()| stream.flush())
                    .is_err()
                {
                    return;
                }
                thread::sleep(pause);
            }
        }
        None => {
            let _ = stream.write_all(body);
        }
    }
    let _ = stream.flush();
}

/// A test CA and a server certificate it issued for `localhost` and 127.0.0.1.
pub struct TestPki {
    pub ca_pem: String,
    pub server: Arc<rustls::ServerConfig>,
    /// The server certificate and its key, for servers started outside this process (Postfix).
    pub cert_pem: String,
    pub key_pem: String,
    pub ca_der: Vec<u8>,
}

impl TestPki {
    /// The test CA ([`pki::Pki`]) and a certificate for `localhost` and 127.0.0.1.
    pub fn new() -> TestPki {
        let ca = pki::Pki::new();
        let issued = ca.cert(&["localhost", "127.0.0.1"], false, false);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![issued.cert_der.clone().into()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(issued.key_der.clone().into()),
            )
            .unwrap();
        TestPki {
            ca_pem: ca.ca_pem.clone(),
            server: Arc::new(server),
            cert_pem: issued.cert_pem,
            key_pem: issued.key_pem,
            ca_der: ca.ca_der.clone(),
        }
    }

    /// Starts an HTTPS server with this PKI's certificate.
    pub fn serve(&self, routes: Vec<(&str, Vec<Reply>)>) -> Server {
        let config = self.server.clone();
        Server::start_with(
            routes,
            Arc::new(move |tcp| {
                let conn = rustls::ServerConnection::new(config.clone()).ok()?;
                Some(Box::new(rustls::StreamOwned::new(conn, tcp)) as Box<dyn Stream>)
            }),
        )
    }
}

impl Server {
    pub fn https_url(&self, path: &str) -> String {
        format!("https://localhost:{}{}", self.addr.port(), path)
    }
}

/// The bundled example list, as a path.
pub fn example_csv() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/domeneliste-tvungen-tls.csv")
}

/// `bits-tls render TARGET --source SOURCE [ARGS]`; must succeed. Returns stdout.
pub fn render(target: &str, source: &Path, args: &[&str]) -> String {
    let out = bits()
        .args(["render", target, "-q", "--source", source.to_str().unwrap()])
        .args(args)
        .assert()
        .success();
    String::from_utf8(out.get_output().stdout.clone()).unwrap()
}

/// The domains `fetch` reads from a source (with `--subdomains` semantics when asked).
pub fn listed_domains(source: &Path) -> Vec<String> {
    let out = bits()
        .args([
            "fetch",
            "-q",
            "--format",
            "json",
            "--source",
            source.to_str().unwrap(),
        ])
        .assert()
        .success();
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let mut d = json_domains(&v);
    d.sort();
    d
}

/// All domains in a `fetch --format json` document, in output order.
pub fn json_domains(v: &serde_json::Value) -> Vec<String> {
    v["participants"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| {
            p["domains"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_str().unwrap().to_string())
        })
        .collect()
}
