//! System calls at scale, counted by the real `strace`: writes to stdout and stderr grow with the bytes
//! written, not with the lines (a 20,000-participant JSON document is a few hundred writes, not one per
//! field), and a run asks whether a stream is a terminal at most once, however many warnings it prints.

use std::path::Path;
use std::process::{Command, Stdio};

/// System calls of one run, from `strace -f -e trace=write,ioctl`.
struct Calls {
    log: String,
}

impl Calls {
    /// `write`s to file descriptor `fd`.
    fn writes(&self, fd: u32) -> usize {
        let call = format!("write({fd}, ");
        self.log.lines().filter(|l| l.contains(&call)).count()
    }

    /// Terminal checks (`ioctl(fd, TCGETS, …)`) on `fd`.
    fn terminal_checks(&self, fd: u32) -> usize {
        let call = format!("ioctl({fd}, TCGETS");
        self.log.lines().filter(|l| l.contains(&call)).count()
    }

    /// At most one terminal check per stream and run, however much is printed.
    fn asks_once(&self) {
        let (out, err) = (self.terminal_checks(1), self.terminal_checks(2));
        assert!(
            out <= 1 && err <= 1,
            "{out} terminal checks on stdout and {err} on stderr in one run"
        );
    }
}

/// Runs `bits-tls ARGS` under strace in `dir`, stdout and stderr to files there (`out`, `err`).
fn traced(dir: &Path, args: &[&str]) -> Calls {
    let log = dir.join("strace.log");
    let status = Command::new("strace")
        .args([
            "-f",
            "-qq",
            "-e",
            "trace=write,ioctl",
            "-e",
            "signal=none",
            "-o",
        ])
        .arg(&log)
        .arg(env!("CARGO_BIN_EXE_bits-tls"))
        .args(args)
        .current_dir(dir)
        // Without NO_COLOR or CLICOLOR_FORCE, colour depends on the terminal: the check this counts.
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("CLICOLOR")
        .env_remove("BITS_TLS_SOURCE")
        .env_remove("BITS_TLS_CONFIG")
        .env_remove("BITS_TLS_STATE")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.join("out")).unwrap())
        .stderr(std::fs::File::create(dir.join("err")).unwrap())
        .status()
        .expect("strace (installed by scripts/setup-test-tools.sh)");
    assert!(
        status.code().is_some_and(|c| c <= 2),
        "bits-tls {args:?} failed ({status}): {}",
        std::fs::read_to_string(dir.join("err")).unwrap_or_default()
    );
    Calls {
        log: std::fs::read_to_string(&log).unwrap(),
    }
}

/// A list of `n` participants in the requirement document's layout; every participant whose index is
/// not a multiple of `warn_every` has a 5.2.4 flag the list does not know, which is a warning.
fn big_list(n: usize, warn_every: usize) -> String {
    let weights = [3, 2, 7, 6, 5, 4, 3, 2];
    let mut s = String::from(
        "Company name;Company Identification number;Domain with forced TLS;Date of enrolment;Requirement 5.2.4 supported?\n",
    );
    let mut base = 90_000_000u32;
    for i in 0..n {
        let org = loop {
            let digits = base.to_string();
            base += 1;
            let sum: u32 = digits
                .bytes()
                .zip(weights)
                .map(|(d, w)| u32::from(d - b'0') * w)
                .sum();
            let check = (11 - sum % 11) % 11;
            if check != 10 {
                break format!("{digits}{check}");
            }
        };
        let flag = if i % warn_every == 0 { "Ja" } else { "Kanskje" };
        s.push_str(&format!(
            "Virksomhet nr {i} AS;{org};virksomhet-{i:06}.no;1.2.2020;{flag}\n"
        ));
    }
    s
}

#[test]
fn thousands_of_warnings_are_one_terminal_check_and_a_few_writes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("list.csv"), big_list(3_000, 3)).unwrap();
    let calls = traced(dir.path(), &["fetch", "--source", "list.csv"]);
    let err = std::fs::read_to_string(dir.path().join("err")).unwrap();
    assert_eq!(err.matches("is neither Ja nor Nei").count(), 2_000, "{err}");
    calls.asks_once();
    // 2,000 warnings (~150 KB) are written at once: a regular file takes them in one write.
    assert!(
        calls.writes(2) <= 2,
        "{} writes to stderr for 2,000 warnings",
        calls.writes(2)
    );
}

#[test]
fn a_large_json_document_is_written_in_large_writes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("list.csv"), big_list(20_000, 1)).unwrap();
    let calls = traced(
        dir.path(),
        &["fetch", "--source", "list.csv", "--format", "json"],
    );
    let bytes = std::fs::metadata(dir.path().join("out")).unwrap().len() as usize;
    assert!(bytes > 3_000_000, "{bytes} bytes of JSON");
    // The buffer is 64 KiB; standard output's own line buffer may split a buffer's write in two.
    let most = 2 * bytes.div_ceil(64 * 1024) + 2;
    assert!(
        calls.writes(1) <= most,
        "{} writes for {bytes} bytes of JSON (at most {most})",
        calls.writes(1)
    );
    calls.asks_once();
}

#[test]
fn a_first_sync_and_a_diff_ask_about_the_terminal_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("list.csv"), big_list(5_000, 2)).unwrap();
    std::fs::write(
        dir.path().join("bits-tls.toml"),
        "source = \"list.csv\"\n[[output]]\ntarget = \"postfix-policy\"\npath = \"policy\"\n[[output]]\ntarget = \"exim-domains\"\npath = \"exim\"\n",
    )
    .unwrap();
    let calls = traced(dir.path(), &["sync"]);
    let out = std::fs::read_to_string(dir.path().join("out")).unwrap();
    assert!(out.contains("5000 joined"), "{out}");
    calls.asks_once();
    assert!(
        calls.writes(1) <= 2,
        "{} writes of the summary",
        calls.writes(1)
    );
    assert!(
        calls.writes(2) <= 2,
        "{} writes of 2,500 warnings",
        calls.writes(2)
    );

    // A change: the diff shows each file's lines (and asks once whether to colour them).
    let list = big_list(5_000, 2).replace("virksomhet-000007.no", "ny-000007.no");
    std::fs::write(dir.path().join("list.csv"), list).unwrap();
    let calls = traced(dir.path(), &["diff"]);
    let out = std::fs::read_to_string(dir.path().join("out")).unwrap();
    assert!(out.contains("+ny-000007.no"), "{out}");
    calls.asks_once();
    assert!(
        calls.writes(1) <= 2,
        "{} writes of the diff",
        calls.writes(1)
    );
}
