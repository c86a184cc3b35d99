//! Shell completions that complete, proven in the real shells: bash's completion function is called the
//! way bash calls it (COMP_WORDS, COMP_CWORD), fish answers `complete -C`, zsh parses the script. A
//! closed standard output is a quiet exit for every shell. Needs bash, fish and zsh
//! (`scripts/setup-test-tools.sh` installs them).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn script(shell: &str, dir: &Path) -> PathBuf {
    let out = support::bits()
        .args(["completions", shell])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let path = dir.join(format!("bits-tls.{shell}"));
    std::fs::write(&path, out.stdout).unwrap();
    path
}

fn shell(program: &str) -> Command {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .unwrap();
    assert!(
        found.status.success(),
        "{program} is missing; run `sudo bash scripts/setup-test-tools.sh`"
    );
    Command::new(program)
}

/// What bash's completion function offers for `words`, the last being the word under the cursor.
fn bash_complete(script: &Path, words: &[&str]) -> Vec<String> {
    let cword = words.len() - 1;
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let prev = if cword > 0 { words[cword - 1] } else { "" };
    let program = format!(
        "source '{}'\nCOMP_WORDS=({})\nCOMP_CWORD={cword}\nCOMP_LINE='{}'\nCOMP_POINT=${{#COMP_LINE}}\n\
         _bits__tls bits-tls '{}' '{prev}'\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        script.display(),
        quoted.join(" "),
        words.join(" "),
        words[cword],
    );
    let out = shell("bash")
        .args(["--norc", "--noprofile", "-c", &program])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "bash: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

fn fish_complete(script: &Path, line: &str) -> Vec<String> {
    let program = format!(
        "source '{}'; complete -C '{}'",
        script.display(),
        line.replace('\'', "\\'")
    );
    let out = shell("fish")
        .args(["--no-config", "-c", &program])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "fish: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split('\t').next().unwrap_or("").to_string())
        .collect()
}

const TARGETS: [&str; 8] = [
    "postfix-policy",
    "postfix-senders",
    "exim-domains",
    "exim-config",
    "exchange",
    "exchange-online",
    "exchange-verify",
    "exchange-online-verify",
];

fn assert_has(offered: &[String], wanted: &[&str], what: &str) {
    for w in wanted {
        assert!(
            offered.iter().any(|o| o == w),
            "{what}: `{w}` not offered; got {offered:?}"
        );
    }
}

#[test]
fn bash_completes_after_the_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let s = script("bash", dir.path());
    // The subcommands themselves (this worked before the fix too).
    assert_has(
        &bash_complete(&s, &["bits-tls", ""]),
        &["render", "sync", "completions"],
        "bits-tls <TAB>",
    );
    // clap-rs/clap#6421: everything after the subcommand fell through to no completion at all.
    let targets = bash_complete(&s, &["bits-tls", "render", ""]);
    assert_has(&targets, &TARGETS, "bits-tls render <TAB>");
    assert_eq!(
        bash_complete(&s, &["bits-tls", "sync", "--dry"]),
        ["--dry-run"],
        "bits-tls sync --dry<TAB>"
    );
    assert_has(
        &bash_complete(&s, &["bits-tls", "render", "--postfix-level", ""]),
        &["verify", "secure", "dane-only"],
        "bits-tls render --postfix-level <TAB>",
    );
    assert_has(
        &bash_complete(&s, &["bits-tls", "completions", ""]),
        &["bash", "zsh", "fish"],
        "bits-tls completions <TAB>",
    );
    assert_has(
        &bash_complete(&s, &["bits-tls", "man", "--"]),
        &["--dir"],
        "bits-tls man --<TAB>",
    );
}

#[test]
fn fish_offers_targets_shells_and_options() {
    let dir = tempfile::tempdir().unwrap();
    let s = script("fish", dir.path());
    assert_has(
        &fish_complete(&s, "bits-tls "),
        &["render", "sync", "notify"],
        "bits-tls <TAB>",
    );
    assert_has(
        &fish_complete(&s, "bits-tls render "),
        &TARGETS,
        "bits-tls render <TAB>",
    );
    assert_has(
        &fish_complete(&s, "bits-tls completions "),
        &["bash", "zsh", "fish"],
        "bits-tls completions <TAB>",
    );
    assert_has(
        &fish_complete(&s, "bits-tls sync --"),
        &["--dry-run", "--force", "--detailed-exitcode"],
        "bits-tls sync --<TAB>",
    );
    assert_has(
        &fish_complete(&s, "bits-tls render --postfix-level "),
        &["verify", "secure"],
        "bits-tls render --postfix-level <TAB>",
    );
}

#[test]
fn zsh_script_parses_and_defines_the_function() {
    let dir = tempfile::tempdir().unwrap();
    let s = script("zsh", dir.path());
    let out = shell("zsh")
        .args(["-f", "-n", s.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "zsh -n: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&s).unwrap();
    assert!(text.starts_with("#compdef bits-tls"));
    for t in TARGETS {
        assert!(text.contains(t), "zsh completion lacks `{t}`");
    }
}

#[test]
fn a_closed_pipe_is_a_quiet_exit() {
    for sh in ["bash", "zsh", "fish", "elvish", "powershell"] {
        // The reading end is closed before the program starts: its first write meets EPIPE, every time.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = Command::new(env!("CARGO_BIN_EXE_bits-tls"))
            .args(["completions", sh])
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "completions {sh}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stderr), "", "completions {sh}");
    }
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_bits-tls"))
        .arg("man")
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "man: {out:?}");
    assert!(out.stderr.is_empty(), "man: {out:?}");
}
