//! One SMTP session per (MX host, address): TCP 25 → banner → EHLO → STARTTLS → the handshake → EHLO
//! → QUIT. Every command waits for the whole reply before the next is sent (a client that talks early
//! gets "554 SMTP synchronization error" from Exim), and `MAIL FROM` is never sent: nothing is ever
//! delivered. The transcript is kept as evidence.

use super::tls::{Handshake, TlsClient};
use serde::Serialize;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// How one session went, step by step; judged later in `verdict`.
#[derive(Debug, Clone, Serialize)]
pub struct Session {
    pub host: String,
    pub address: IpAddr,
    /// The step the session stopped at, if it did not reach QUIT.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_at: Option<Step>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The connection failed because this host has no route to an IPv6 address.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub no_route: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub banner: Option<Reply>,
    pub starttls_offered: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<Handshake>,
    pub millis: u64,
    /// What was said, `C:` (us) and `S:` (the server) lines, escaped.
    pub transcript: Vec<String>,
}

/// The steps of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    Connect,
    Banner,
    Ehlo,
    Starttls,
    Handshake,
    EhloTls,
    Quit,
}

/// A server reply: the code and the text of its lines.
#[derive(Debug, Clone, Serialize)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    pub fn text(&self) -> String {
        self.lines.join(" / ")
    }
}

/// Limits for one session.
#[derive(Debug, Clone)]
pub struct SmtpOptions {
    pub helo: String,
    /// Each step (connect, each reply, the handshake) gets this long.
    pub timeout: Duration,
    pub port: u16,
}

/// Longest reply accepted (bytes), so a hostile server cannot fill memory.
const MAX_REPLY: usize = 64 * 1024;
/// Longest line kept in the transcript.
const MAX_LINE: usize = 300;

trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

struct Conn<S> {
    stream: S,
    buf: Vec<u8>,
    transcript: Vec<String>,
}

impl<S: Read + Write> Conn<S> {
    fn reply(&mut self) -> Result<Reply, String> {
        let mut lines = Vec::new();
        let mut total = 0;
        loop {
            let line = self.line()?;
            total += line.len();
            if total > MAX_REPLY {
                return Err("reply too long".into());
            }
            self.log("S", &line);
            let code = line
                .get(..3)
                .and_then(|c| c.parse::<u16>().ok())
                .filter(|c| (200..600).contains(c))
                .ok_or_else(|| format!("not an SMTP reply: {}", shown(&line)))?;
            let more = line.as_bytes().get(3) == Some(&b'-');
            lines.push(line.get(4..).unwrap_or("").to_string());
            if !more {
                return Ok(Reply { code, lines });
            }
        }
    }

    fn line(&mut self) -> Result<String, String> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let raw: Vec<u8> = self.buf.drain(..=i).collect();
                let text = String::from_utf8_lossy(&raw);
                return Ok(text.trim_end_matches(['\r', '\n']).to_string());
            }
            if self.buf.len() > MAX_REPLY {
                return Err("line too long".into());
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err("the server closed the connection".into()),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if is_timeout(&e) => return Err("timed out waiting for a reply".into()),
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    fn send(&mut self, line: &str) -> Result<(), String> {
        self.log("C", line);
        self.stream
            .write_all(format!("{line}\r\n").as_bytes())
            .and_then(|_| self.stream.flush())
            .map_err(|e| e.to_string())
    }

    fn command(&mut self, line: &str) -> Result<Reply, String> {
        self.send(line)?;
        self.reply()
    }

    fn log(&mut self, who: &str, line: &str) {
        self.transcript.push(format!("{who}: {}", shown(line)));
    }
}

fn shown(line: &str) -> String {
    let mut s = crate::sanitize::for_terminal(line);
    if s.len() > MAX_LINE {
        let mut end = MAX_LINE;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// Runs one session. Never sends MAIL FROM.
pub fn session(host: &str, address: IpAddr, opts: &SmtpOptions, tls: &TlsClient) -> Session {
    let start = Instant::now();
    let mut s = Session {
        host: host.to_string(),
        address,
        failed_at: None,
        error: None,
        no_route: false,
        banner: None,
        starttls_offered: false,
        tls: None,
        millis: 0,
        transcript: Vec::new(),
    };
    let result = run(&mut s, opts, tls);
    if let Err((step, e)) = result {
        s.failed_at = Some(step);
        s.error = Some(e);
    }
    s.millis = start.elapsed().as_millis() as u64;
    s
}

fn run(s: &mut Session, opts: &SmtpOptions, tls: &TlsClient) -> Result<(), (Step, String)> {
    let addr = SocketAddr::new(s.address, opts.port);
    let tcp = TcpStream::connect_timeout(&addr, opts.timeout).map_err(|e| {
        // ENETUNREACH, EADDRNOTAVAIL: no IPv6 here, which Postfix would skip the same way.
        s.no_route = addr.is_ipv6() && matches!(e.raw_os_error(), Some(101 | 99));
        (Step::Connect, format!("{addr}: {e}"))
    })?;
    let set = |t: &TcpStream| {
        t.set_read_timeout(Some(opts.timeout))
            .and_then(|_| t.set_write_timeout(Some(opts.timeout)))
            .map_err(|e| (Step::Connect, e.to_string()))
    };
    set(&tcp)?;
    let mut c = Conn {
        stream: tcp,
        buf: Vec::new(),
        transcript: Vec::new(),
    };
    let outcome = plain_part(s, &mut c, opts);
    let tcp = match outcome {
        Ok(true) => {
            // STARTTLS accepted: anything the server sent after its 220 is dropped unread, so it
            // cannot be taken for a reply inside TLS (CVE-2011-0411).
            let Conn {
                stream, transcript, ..
            } = c;
            s.transcript = transcript;
            stream
        }
        Ok(false) => {
            s.transcript = std::mem::take(&mut c.transcript);
            return Ok(());
        }
        Err(e) => {
            let _ = c.send("QUIT");
            s.transcript = std::mem::take(&mut c.transcript);
            return Err(e);
        }
    };
    let now = chrono::Utc::now().timestamp();
    let (stream, hs) = tls.handshake(tcp, now).map_err(|e| (Step::Handshake, e))?;
    s.tls = Some(hs);
    let mut c = Conn {
        stream: Box::new(stream) as Box<dyn Stream>,
        buf: Vec::new(),
        transcript: std::mem::take(&mut s.transcript),
    };
    c.log("C", "(TLS handshake)");
    let r = (|| {
        let ehlo = c
            .command(&format!("EHLO {}", opts.helo))
            .map_err(|e| (Step::EhloTls, e))?;
        if ehlo.code != 250 {
            return Err((Step::EhloTls, format!("EHLO answered {}", ehlo.code)));
        }
        c.command("QUIT").map_err(|e| (Step::Quit, e))?;
        Ok(())
    })();
    s.transcript = c.transcript;
    r
}

/// Banner, EHLO and STARTTLS in plaintext. `Ok(true)`: ready for the handshake; `Ok(false)`: the
/// session ended normally without TLS (no STARTTLS offered, QUIT sent).
fn plain_part(
    s: &mut Session,
    c: &mut Conn<TcpStream>,
    opts: &SmtpOptions,
) -> Result<bool, (Step, String)> {
    let banner = c.reply().map_err(|e| (Step::Banner, e))?;
    s.banner = Some(banner.clone());
    if banner.code != 220 {
        return Err((
            Step::Banner,
            format!("greeting {} {}", banner.code, banner.text()),
        ));
    }
    let ehlo = c
        .command(&format!("EHLO {}", opts.helo))
        .map_err(|e| (Step::Ehlo, e))?;
    if ehlo.code != 250 {
        return Err((
            Step::Ehlo,
            format!("EHLO answered {} {}", ehlo.code, ehlo.text()),
        ));
    }
    s.starttls_offered = ehlo.lines.iter().skip(1).any(|l| {
        l.split_whitespace().next().map(str::to_ascii_uppercase) == Some("STARTTLS".into())
    });
    if !s.starttls_offered {
        c.command("QUIT").map_err(|e| (Step::Quit, e))?;
        return Ok(false);
    }
    let r = c.command("STARTTLS").map_err(|e| (Step::Starttls, e))?;
    if r.code != 220 {
        return Err((
            Step::Starttls,
            format!("STARTTLS answered {} {}", r.code, r.text()),
        ));
    }
    Ok(true)
}
