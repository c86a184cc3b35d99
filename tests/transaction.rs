//! A sync is a transaction that survives kills, stop signals, hung or noisy hooks and failed writes:
//! `bits-tls sync` is killed at every named point of its transaction (`BITS_TLS_FAULT`, debug builds
//! only) and at random times, and the next run must leave the outputs, the real `postmap`'s `.db`
//! tables, the state and the history consistent, with the hooks run. Then the other promises of a
//! transaction, one test each: owner and group kept, symbolic links written through, backups rotated
//! only on commit, hook time limit, output cap and signals, `check` under a running sync, leftovers.
//!
//! `BITS_TLS_SOAK_KILLS=N` runs N random kills instead of the default few (`scripts/soak-kills.sh`).

mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::mta::PostfixDir;
use support::{bits_std, Reply, Server};

fn list(domains: &[String]) -> String {
    let mut s = String::from("Virksomhet;Org.nr;Domene;Krav 5.2.4\n");
    for (i, d) in domains.iter().enumerate() {
        s.push_str(&format!("Deltaker {i};;{d};Ja\n"));
    }
    s
}

fn names(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("d{i}.no")).collect()
}

/// A mail-config directory with three outputs: two Postfix tables compiled by the real `postmap`, and
/// an Exim list without a hook; a reload that logs; state and history beside the config.
struct Tx {
    dir: tempfile::TempDir,
    server: Server,
    postfix: Arc<PostfixDir>,
}

impl Tx {
    fn new(domains: &[String], safety: &str) -> Tx {
        Tx::with_reload(domains, safety, "echo reload >> reload.log")
    }

    fn with_reload(domains: &[String], safety: &str, reload: &str) -> Tx {
        Tx::sharing(Arc::new(PostfixDir::new("")), domains, safety, reload)
    }

    /// With a Postfix configuration shared by several: the first `postmap` in a new one is slow.
    fn sharing(postfix: Arc<PostfixDir>, domains: &[String], safety: &str, reload: &str) -> Tx {
        let server = Server::start(vec![("/liste.csv", vec![Reply::csv(list(domains))])]);
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("out")).unwrap();
        let root = support::mta::postfix_root();
        let postmap = format!(
            "[\"env\", \"LD_LIBRARY_PATH={}\", \"{}\", \"-c\", \"{}\", \"hash:{{path}}\"]",
            root.join("usr/lib/postfix").display(),
            root.join("usr/sbin/postmap").display(),
            postfix.path().display()
        );
        let config = format!(
            "source = \"{}\"\nallow_http = true\ntimeout = 5\n\
             reload = [\"sh\", \"-c\", \"{reload}\"]\n\n\
             [safety]\nmax_removed_percent = 100\n{safety}\n\n\
             [[output]]\ntarget = \"postfix-policy\"\npath = \"out/policy\"\nhook = {postmap}\n\
             [[output]]\ntarget = \"postfix-senders\"\npath = \"out/senders\"\nhook = {postmap}\n\
             [[output]]\ntarget = \"exim-domains\"\npath = \"out/exim\"\n",
            server.url("/liste.csv")
        );
        std::fs::write(dir.path().join("bits-tls.toml"), config).unwrap();
        Tx {
            dir,
            server,
            postfix,
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn read(&self, rel: &str) -> Option<String> {
        std::fs::read_to_string(self.path(rel)).ok()
    }

    fn serve(&self, domains: &[String]) {
        self.server
            .set("/liste.csv", vec![Reply::csv(list(domains))]);
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = bits_std();
        c.current_dir(self.dir.path()).args(args);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn sync_ok(&self) -> Output {
        let out = self.run(&["sync"]);
        assert!(
            out.status.success(),
            "sync: {:?}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// `sync` with a fault injected; true if it was killed there.
    fn sync_killed_at(&self, fault: &str) -> bool {
        let out = self
            .cmd(&["sync", "-q"])
            .env("BITS_TLS_FAULT", fault)
            .output()
            .unwrap();
        match out.status.signal() {
            Some(9) => true,
            None => {
                assert!(
                    out.status.code().is_some(),
                    "{fault}: {:?} {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                );
                false
            }
            Some(s) => panic!("{fault}: died of signal {s}"),
        }
    }

    fn history(&self) -> Vec<serde_json::Value> {
        self.read("bits-tls.history.jsonl")
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("history line {l:?}: {e}")))
            .collect()
    }

    fn reloads(&self) -> usize {
        self.read("reload.log").map_or(0, |r| r.lines().count())
    }

    /// Every entry of the compiled table, as `postmap -s` dumps it.
    fn table(&self, rel: &str) -> Vec<String> {
        let out = self
            .postfix
            .postmap(&["-s", &format!("hash:{}", self.path(rel).display())]);
        assert!(out.status.success(), "{}", support::mta::text(&out.stderr));
        let mut lines: Vec<String> = support::mta::text(&out.stdout)
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        lines.sort();
        lines
    }

    /// The entries of a table source file: its non-comment lines, normalised as `postmap -s` prints.
    fn source_entries(&self, rel: &str) -> Vec<String> {
        let mut lines: Vec<String> = self
            .read(rel)
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        lines.sort();
        lines
    }

    /// Files a killed run may leave that a recovered one must not.
    fn leftovers(&self) -> Vec<String> {
        let mut found = Vec::new();
        for d in [self.path("."), self.path("out")] {
            for e in std::fs::read_dir(d).unwrap().flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if n.ends_with(".bits-tls-tmp")
                    || n.ends_with(".bits-tls-undo")
                    || n.ends_with(".journal")
                {
                    found.push(n);
                }
            }
        }
        found
    }

    /// Everything a finished transaction promises, for a list of `domains` applied by `commits` syncs:
    /// files render from the state (`check` exits 0), the state holds the list, the `.db` tables hold
    /// exactly their source files, one history line per change with the last one matching the state,
    /// the reload ran after the last change, and nothing is left over. Returns what is wrong.
    fn inconsistencies(
        &self,
        domains: &[String],
        commits: usize,
        reloads_before: usize,
    ) -> Vec<String> {
        let mut bad = Vec::new();
        let check = self.run(&["check", "--max-age", "1000"]);
        if check.status.code() != Some(0) {
            bad.push(format!(
                "check exits {:?}: {}{}",
                check.status.code(),
                String::from_utf8_lossy(&check.stdout),
                String::from_utf8_lossy(&check.stderr)
            ));
        }
        let state: serde_json::Value =
            serde_json::from_str(&self.read("bits-tls.state.json").unwrap()).unwrap();
        let in_state: usize = state["participants"].as_array().unwrap().len();
        if in_state != domains.len() {
            bad.push(format!(
                "state has {in_state} participants, want {}",
                domains.len()
            ));
        }
        for t in ["out/policy", "out/senders"] {
            if self.table(t) != self.source_entries(t) {
                bad.push(format!("{t}.db differs from {t}"));
            }
        }
        let history = self.history();
        if history.len() != commits {
            bad.push(format!("{} history lines, want {commits}", history.len()));
        }
        if history.last().map(|h| &h["source"]["sha256"]) != Some(&state["source"]["sha256"]) {
            bad.push("the last history line is not the state's list".into());
        }
        if self.reloads() <= reloads_before {
            bad.push("the reload did not run after the change".into());
        }
        let left = self.leftovers();
        if !left.is_empty() {
            bad.push(format!("left over: {left:?}"));
        }
        bad
    }
}

/// A sync of list A, then list B killed at `fault`, then recovery (a plain sync); returns what is wrong.
fn kill_and_recover(
    postfix: &Arc<PostfixDir>,
    fault: &str,
    then: Option<&str>,
) -> (bool, Vec<String>) {
    let a = names(0..12);
    let b = names(3..16);
    let w = Tx::sharing(postfix.clone(), &a, "", "echo reload >> reload.log");
    w.sync_ok();
    let v1 = w.read("out/policy").unwrap();
    let reloads = w.reloads();
    w.serve(&b);
    let killed = w.sync_killed_at(fault);
    if killed && Path::new(&w.path("bits-tls.state.json.journal")).exists() {
        // An unfinished transaction is drift for check.
        let check = w.run(&["check", "--max-age", "1000"]);
        assert_eq!(
            check.status.code(),
            Some(2),
            "{fault}: check must report the unfinished sync: {}",
            String::from_utf8_lossy(&check.stdout)
        );
        assert!(String::from_utf8_lossy(&check.stdout).contains("interrupted"));
    }
    if let Some(second) = then {
        w.sync_killed_at(second);
    }
    let pending = w.path("bits-tls.state.json.journal").exists();
    let out = w.sync_ok();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.contains("was interrupted"), pending, "{fault}: {err}");
    let mut bad = w.inconsistencies(&b, 2, reloads);
    if w.read("out/policy.bak.1").as_deref() != Some(v1.as_str()) {
        bad.push("out/policy.bak.1 is not the previous version".into());
    }
    (
        killed,
        bad.into_iter().map(|b| format!("{fault}: {b}")).collect(),
    )
}

/// Every named point of the transaction (three files, three hooks with the reload, three backups). In
/// `cargo test` one or two occurrences of each; every occurrence under `scripts/soak-kills.sh`.
#[test]
fn a_kill_at_every_point_of_the_transaction_is_recovered() {
    let postfix = Arc::new(PostfixDir::new(""));
    let all = std::env::var_os("BITS_TLS_SOAK_KILLS").is_some();
    let mut kills = 0;
    let mut bad = Vec::new();
    for (point, times) in [
        ("after-temps", 1),
        ("after-undo", 1),
        ("after-journal", 1),
        ("after-rename", 3),
        ("after-hook", 3),
        ("after-state", 1),
        ("after-history", 1),
        ("after-backup", 3),
    ] {
        for n in 1..=times {
            if !all && times > 1 && n == 1 {
                continue;
            }
            let fault = format!("{point}:{n}");
            let (killed, problems) = kill_and_recover(&postfix, &fault, None);
            assert!(killed, "{fault} was never reached");
            kills += 1;
            bad.extend(problems);
        }
    }
    // Killed again while recovering.
    for (first, second) in [
        ("after-rename:2", "recovery-after-restore"),
        ("after-state", "recovery-after-hook:2"),
    ] {
        let (_, problems) = kill_and_recover(&postfix, first, Some(second));
        kills += 2;
        bad.extend(problems);
    }
    eprintln!("kills tried: {kills}, inconsistencies left: {}", bad.len());
    assert!(bad.is_empty(), "{bad:#?}");
}

/// A small deterministic generator, so a failing seed can be replayed.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below.max(1)
    }
}

/// Kills at random moments of a sync whose hooks take a little time, then recovery.
#[test]
fn random_kills_are_recovered() {
    let rounds: u64 = std::env::var("BITS_TLS_SOAK_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6);
    let seed = std::env::var("BITS_TLS_SOAK_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed_u64);
    let mut rng = Lcg(seed);
    let mut bad = Vec::new();
    let mut killed = 0;
    let a = names(0..12);
    let b = names(3..16);
    let w = Tx::with_reload(&a, "", "sleep 0.05; echo reload >> reload.log");
    w.sync_ok();
    let mut commits = 1;
    for round in 0..rounds {
        // Alternate between the two lists so every round is a change.
        let target = if round % 2 == 0 { &b } else { &a };
        w.serve(target);
        let reloads = w.reloads();
        let mut child = w.cmd(&["sync", "-q"]).spawn().unwrap();
        let delay = Duration::from_millis(rng.next(400));
        std::thread::sleep(delay);
        // SAFETY: SIGKILL to our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        let status = child.wait().unwrap();
        if status.signal() == Some(9) {
            killed += 1;
        }
        w.sync_ok();
        commits += 1;
        for p in w.inconsistencies(target, commits, reloads) {
            bad.push(format!("seed {seed} round {round} ({delay:?}): {p}"));
        }
    }
    eprintln!(
        "random kills: {killed} of {rounds} runs killed, inconsistencies left: {}",
        bad.len()
    );
    assert!(bad.is_empty(), "{bad:#?}");
}

/// A kill while a hook hangs (systemd's SIGKILL after its stop timeout) is recovered like any other.
#[test]
fn a_kill_while_a_hook_hangs_is_recovered() {
    let w = Tx::with_reload(
        &names(0..12),
        "",
        "[ -e hang ] && { touch hanging; sleep 300; }; echo reload >> reload.log",
    );
    w.sync_ok();
    let reloads = w.reloads();
    w.serve(&names(2..14));
    std::fs::write(w.path("hang"), "").unwrap();
    let mut child = w.cmd(&["sync"]).spawn().unwrap();
    let start = Instant::now();
    while !w.path("hanging").exists() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the hook never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    std::fs::remove_file(w.path("hang")).unwrap();
    assert_eq!(
        w.run(&["check", "--max-age", "1000"]).status.code(),
        Some(2)
    );
    let out = w.sync_ok();
    assert!(String::from_utf8_lossy(&out.stderr).contains("interrupted before it took effect"));
    let bad = w.inconsistencies(&names(2..14), 2, reloads);
    assert!(bad.is_empty(), "{bad:#?}");
}

/// SIGTERM (systemd's stop) during a hook: the hook and its children are ended, the files put back,
/// the hooks run again on them, no state or history change, exit 1 with a message that says so.
#[test]
fn sigterm_during_a_hook_rolls_back_and_leaves_no_orphan() {
    let w = Tx::with_reload(
        &names(0..12),
        "",
        "[ -e hang ] && { sleep 300 & echo $! > child.pid; touch hanging; wait; }; echo reload >> reload.log",
    );
    w.sync_ok();
    let state = w.read("bits-tls.state.json");
    let policy = w.read("out/policy");
    let history = w.read("bits-tls.history.jsonl");
    w.serve(&names(2..14));
    std::fs::write(w.path("hang"), "").unwrap();
    let child = w
        .cmd(&["sync"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !w.path("hanging").exists() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the hook never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::remove_file(w.path("hang")).unwrap();
    // SAFETY: SIGTERM to our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("interrupted by SIGTERM") && err.contains("previous files were put back"),
        "{err}"
    );
    assert!(start.elapsed() < Duration::from_secs(15));
    assert_eq!(w.read("out/policy"), policy);
    assert_eq!(w.read("bits-tls.state.json"), state);
    assert_eq!(w.read("bits-tls.history.jsonl"), history);
    assert_eq!(w.table("out/policy"), w.source_entries("out/policy"));
    let pid: i32 = w.read("child.pid").unwrap().trim().parse().unwrap();
    let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| !s.rsplit(')').next().unwrap().trim_start().starts_with('Z'));
    assert!(!alive, "the hook's child {pid} was orphaned");
    assert!(w.leftovers().is_empty(), "{:?}", w.leftovers());
    assert_eq!(
        w.run(&["check", "--max-age", "1000"]).status.code(),
        Some(0)
    );
}

/// A hung hook is ended at `safety.hook_timeout`, the sync rolls back and the lock is freed; a hook
/// that prints 50 MB costs no memory and the error shows only the end of it.
#[test]
fn hung_and_noisy_hooks_are_bounded() {
    let w = Tx::with_reload(
        &names(0..12),
        "hook_timeout = 3",
        "[ -e hang ] && sleep 300; [ -e noisy ] && { head -c 50000000 /dev/zero | tr '\\\\0' x; echo LAST-WORDS; exit 4; }; echo reload >> reload.log",
    );
    w.sync_ok();
    let policy = w.read("out/policy");
    w.serve(&names(2..14));
    std::fs::write(w.path("hang"), "").unwrap();
    let start = Instant::now();
    let out = w.run(&["sync"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("timed out after 3 s"), "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(w.read("out/policy"), policy);
    std::fs::remove_file(w.path("hang")).unwrap();
    std::fs::write(w.path("noisy"), "").unwrap();
    let out = w.run(&["sync"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains("LAST-WORDS") && err.len() < 10_000,
        "{} bytes",
        err.len()
    );
    assert_eq!(w.read("out/policy"), policy);
    std::fs::remove_file(w.path("noisy")).unwrap();
    w.sync_ok();
}

/// Failed syncs leave the backups alone: three failures after the files were written, then a
/// success, and `.bak.1` is the version before that success.
#[test]
fn backups_rotate_only_when_a_sync_commits() {
    let w = Tx::with_reload(
        &names(0..12),
        "backups = 2",
        "[ -e fail ] && exit 9; echo reload >> reload.log",
    );
    w.sync_ok();
    w.serve(&names(1..13));
    w.sync_ok();
    let v1 = w.path("out/policy.bak.1");
    let bak1 = std::fs::read(&v1).unwrap();
    assert!(!w.path("out/policy.bak.2").exists());
    let v2 = w.read("out/policy").unwrap();
    w.serve(&names(2..14));
    std::fs::write(w.path("fail"), "").unwrap();
    for _ in 0..3 {
        let out = w.run(&["sync"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("exit status: 9"));
    }
    assert_eq!(
        std::fs::read(&v1).unwrap(),
        bak1,
        "a failed sync rotated the backups"
    );
    assert!(!w.path("out/policy.bak.2").exists());
    std::fs::remove_file(w.path("fail")).unwrap();
    w.sync_ok();
    assert_eq!(w.read("out/policy.bak.1").unwrap(), v2);
    assert_eq!(std::fs::read(w.path("out/policy.bak.2")).unwrap(), bak1);
}

fn id_of(kind: &str, name: &str) -> u32 {
    let out = Command::new("id").arg(kind).arg(name).output().unwrap();
    assert!(
        out.status.success(),
        "no user {name}: run scripts/setup-test-tools.sh"
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// `root:Debian-exim 0640` stays so: the Exim user can still read the file after the sync (it could
/// not when the replacement was `root:root 0640`, and Exim then dies routing).
#[test]
fn owner_group_and_mode_are_kept_and_the_group_can_still_read() {
    let w = Tx::new(&names(0..12), "");
    w.sync_ok();
    let exim = w.path("out/exim");
    let gid = id_of("-g", "Debian-exim");
    std::os::unix::fs::chown(&exim, Some(0), Some(gid)).unwrap();
    std::fs::set_permissions(&exim, std::fs::Permissions::from_mode(0o640)).unwrap();
    // The directory lets the group in, as /etc/exim4 does.
    std::fs::set_permissions(w.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(w.path("out"), std::fs::Permissions::from_mode(0o755)).unwrap();
    w.serve(&names(0..13));
    w.sync_ok();
    let meta = std::fs::metadata(&exim).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o7777),
        (0, gid, 0o640)
    );
    let read = Command::new("setpriv")
        .args([
            "--reuid=Debian-exim",
            "--regid=Debian-exim",
            "--clear-groups",
            "cat",
        ])
        .arg(&exim)
        .output()
        .unwrap();
    assert!(
        read.status.success() && String::from_utf8_lossy(&read.stdout).contains("d12.no"),
        "the Exim user cannot read the new file: {}",
        String::from_utf8_lossy(&read.stderr)
    );
}

/// A POSIX ACL that lets another user read the file survives the replace.
#[test]
fn acls_are_kept() {
    let w = Tx::new(&names(0..12), "");
    w.sync_ok();
    let exim = w.path("out/exim");
    let set = Command::new("setfacl")
        .args(["-m", "u:nobody:r"])
        .arg(&exim)
        .output()
        .expect("setfacl: run scripts/setup-test-tools.sh");
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    w.serve(&names(0..13));
    w.sync_ok();
    let get = Command::new("getfacl")
        .arg("-p")
        .arg(&exim)
        .output()
        .unwrap();
    let acl = String::from_utf8_lossy(&get.stdout);
    assert!(acl.contains("user:nobody:r--"), "{acl}");
    assert!(w.read("out/exim").unwrap().contains("d12.no"));
}

/// Config repositories symlink into /etc/postfix: the link stays a link and its target is replaced
/// atomically; so for a symlinked state.
#[test]
fn symlinked_outputs_and_state_are_written_through() {
    let w = Tx::new(&names(0..12), "");
    w.sync_ok();
    let repo = w.path("repo");
    std::fs::create_dir(&repo).unwrap();
    for (name, rel) in [
        ("policy", "out/policy"),
        ("state.json", "bits-tls.state.json"),
    ] {
        std::fs::rename(w.path(rel), repo.join(name)).unwrap();
        std::os::unix::fs::symlink(repo.join(name), w.path(rel)).unwrap();
    }
    w.serve(&names(0..13));
    w.sync_ok();
    for (name, rel) in [
        ("policy", "out/policy"),
        ("state.json", "bits-tls.state.json"),
    ] {
        let meta = std::fs::symlink_metadata(w.path(rel)).unwrap();
        assert!(meta.file_type().is_symlink(), "{rel} is no longer a link");
        assert!(std::fs::read_to_string(repo.join(name))
            .unwrap()
            .contains("d12.no"));
    }
    assert!(
        w.path("repo/policy.bak.1").exists(),
        "the backup sits beside the real file"
    );
    assert_eq!(
        w.run(&["check", "--max-age", "1000"]).status.code(),
        Some(0)
    );
}

/// `check` during a sync waits for it (shared lock) instead of reporting its half-done files.
#[test]
fn check_waits_for_a_running_sync() {
    let w = Tx::with_reload(
        &names(0..12),
        "lock_timeout = 30",
        "[ -e slow ] && { touch slowing; sleep 1.5; }; echo reload >> reload.log",
    );
    w.sync_ok();
    w.serve(&names(0..13));
    std::fs::write(w.path("slow"), "").unwrap();
    let sync = w.cmd(&["sync", "-q"]).spawn().unwrap();
    let start = Instant::now();
    while !w.path("slowing").exists() {
        assert!(start.elapsed() < Duration::from_secs(20));
        std::thread::sleep(Duration::from_millis(10));
    }
    // The files are replaced and the state is not yet: without the lock this is drift.
    let check = w.run(&["check", "--max-age", "1000"]);
    assert_eq!(
        check.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    assert!(sync.wait_with_output().unwrap().status.success());
}

/// `check` reports a compiled table older than its source file, even when the text files match.
#[test]
fn check_reports_a_db_older_than_its_source() {
    let w = Tx::new(&names(0..12), "");
    w.sync_ok();
    assert_eq!(
        w.run(&["check", "--max-age", "1000"]).status.code(),
        Some(0)
    );
    let policy = w.path("out/policy");
    let later = std::time::SystemTime::now() + Duration::from_secs(5);
    std::fs::File::options()
        .write(true)
        .open(&policy)
        .unwrap()
        .set_modified(later)
        .unwrap();
    let out = w.run(&["check", "--max-age", "1000"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stdout).contains("policy.db` is older than"));
}

/// Temporary files a kill leaves are removed by the next sync.
#[test]
fn temp_files_left_by_a_kill_are_cleaned() {
    let w = Tx::new(&names(0..12), "");
    w.sync_ok();
    w.serve(&names(0..13));
    assert!(w.sync_killed_at("after-temps"));
    assert!(!w.leftovers().is_empty(), "the kill left its temp files");
    w.sync_ok();
    assert!(w.leftovers().is_empty(), "{:?}", w.leftovers());
}

/// An output at the state's, history's, lock's or source's path is refused before anything is read.
#[test]
fn outputs_may_not_overwrite_the_state_history_lock_or_source() {
    let w = Tx::new(&names(0..12), "");
    std::fs::write(w.path("list.csv"), list(&names(0..12))).unwrap();
    for (path, what) in [
        ("bits-tls.state.json", "the state"),
        ("bits-tls.history.jsonl", "the history"),
        ("bits-tls.state.json.lock", "the lock"),
        ("list.csv", "the source"),
    ] {
        let out = w.run(&[
            "sync",
            "--source",
            "list.csv",
            "--output",
            &format!("postfix-policy={path}"),
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{path}: {err}");
        assert!(err.contains(&format!("is {what}")), "{path}: {err}");
    }
    assert_eq!(w.read("list.csv").unwrap(), list(&names(0..12)));
    assert!(w.read("bits-tls.state.json").is_none());
}
