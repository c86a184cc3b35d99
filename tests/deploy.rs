//! The deployment examples are run, not just read: the GitLab update job's shell steps drive a real git
//! push (with push options) into a local bare repository standing in for GitLab.

mod support;

use std::path::Path;
use std::process::Command;

/// The `script:` lines of one job in a GitLab CI file: `- cmd` items, with `>` folded items joined.
fn job_script(yaml: &str, job: &str) -> Vec<String> {
    let mut lines = yaml.lines().skip_while(|l| *l != format!("{job}:"));
    lines.next().expect("the job");
    let mut lines = lines.skip_while(|l| l.trim() != "script:").skip(1);
    let mut out: Vec<String> = Vec::new();
    let mut folding = false;
    for l in lines.by_ref() {
        if !l.starts_with("    ") {
            break;
        }
        let t = l.trim();
        if let Some(item) = t.strip_prefix("- ") {
            folding = item == ">";
            if !folding {
                out.push(item.to_string());
            } else {
                out.push(String::new());
            }
        } else if folding && !t.starts_with('#') {
            let last = out.last_mut().unwrap();
            if !last.is_empty() {
                last.push(' ');
            }
            last.push_str(t);
        }
    }
    out
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn gitlab_update_job_pushes_a_merge_request_branch() {
    let root = tempfile::tempdir().unwrap();
    let bare = root.path().join("gitlab.git");
    let work = root.path().join("mail-config");
    std::fs::create_dir_all(&work).unwrap();
    git(
        root.path(),
        &["init", "-q", "--bare", bare.to_str().unwrap()],
    );
    git(&bare, &["config", "receive.advertisePushOptions", "true"]);
    // GitLab reads the push options; here a hook records them.
    let options_log = root.path().join("push-options.log");
    let hook = bare.join("hooks/pre-receive");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\ni=0\nwhile [ $i -lt \"${{GIT_PUSH_OPTION_COUNT:-0}}\" ]; do\n  eval \"echo \\\"\\$GIT_PUSH_OPTION_$i\\\"\" >> {}\n  i=$((i+1))\ndone\n",
            options_log.display()
        ),
    )
    .unwrap();
    Command::new("chmod").arg("+x").arg(&hook).status().unwrap();

    // A mail-config repository: the configuration, committed; the list comes from a file here.
    let list = root.path().join("liste.csv");
    std::fs::copy(support::example_csv(), &list).unwrap();
    std::fs::write(
        work.join("bits-tls.toml"),
        format!(
            "source = \"{}\"\n[[output]]\ntarget = \"postfix-policy\"\npath = \"postfix/bits_tls_policy\"\n",
            list.display()
        ),
    )
    .unwrap();
    std::fs::create_dir(work.join("postfix")).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    git(
        &work,
        &["-c", "user.name=t", "-c", "user.email=t@t", "add", "-A"],
    );
    git(
        &work,
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-qm",
            "start",
        ],
    );

    let yaml = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/deploy/gitlab-ci.yml"),
    )
    .unwrap();
    let script = job_script(&yaml, "update");
    assert!(script.len() >= 8, "{script:#?}");
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_bits-tls")).parent().unwrap();
    let push_url = "https://oauth2:secret@gitlab.example/group/mail-config.git";
    let out = Command::new("bash")
        .current_dir(&work)
        .arg("-ec")
        .arg(script.join("\n"))
        .env(
            "PATH",
            format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap()),
        )
        .env("HOME", root.path())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_COUNT", "1")
        .env(
            "GIT_CONFIG_KEY_0",
            format!("url.{}.insteadOf", bare.display()),
        )
        .env("GIT_CONFIG_VALUE_0", push_url)
        .env("CI_PIPELINE_SOURCE", "schedule")
        .env("CI_DEFAULT_BRANCH", "main")
        .env("CI_SERVER_HOST", "gitlab.example")
        .env("CI_PROJECT_PATH", "group/mail-config")
        .env("BITS_TLS_PUSH_TOKEN", "secret")
        .env("BRANCH", "bits-tls/update")
        .env("NO_COLOR", "1")
        .env_remove("BITS_TLS_CONFIG")
        .env_remove("BITS_TLS_STATE")
        .env_remove("BITS_TLS_SOURCE")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the job failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let files = git(&bare, &["ls-tree", "-r", "--name-only", "bits-tls/update"]);
    let files: Vec<&str> = files.lines().collect();
    assert!(files.contains(&"postfix/bits_tls_policy"), "{files:?}");
    assert!(files.contains(&"bits-tls.state.json"), "{files:?}");
    assert!(
        !files
            .iter()
            .any(|f| f.ends_with(".lock") || f.ends_with("plan.md")),
        "neither the lock nor the plan is committed: {files:?}"
    );
    let message = git(&bare, &["log", "-1", "--format=%B", "bits-tls/update"]);
    assert!(
        message.contains("### bits-tls: changes from the Bits forced-TLS list"),
        "{message}"
    );
    let options = std::fs::read_to_string(&options_log).unwrap();
    assert!(options.contains("merge_request.create"), "{options}");
    assert!(
        options.contains("merge_request.description=The plan"),
        "{options}"
    );
}
