//! What each output file would become: the rendered text alone in a file that is new or wholly ours,
//! or between managed-block markers with every other byte of an admin's file kept; and its diff.

use crate::render::Target;
use std::path::PathBuf;

/// One file to keep in step: what to render, where to write it, and what to run after it changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub target: Target,
    pub path: PathBuf,
    /// argv, not a shell string; `{path}` is replaced by the output's path.
    pub hook: Option<Vec<String>>,
}

/// The managed-block markers. Their `<` and `>` are characters the comment filter
/// ([`crate::sanitize::comment`]) never lets through, so no text from the list can ever render as a
/// marker line and end the block early.
pub const BEGIN: &str = "# BEGIN bits-tls <managed block: edits inside are overwritten>";
pub const END: &str = "# END bits-tls <managed block>";
/// The markers of bits-tls 0.1, still recognised so an old file keeps its block. Their end marker is a
/// line an organisation's name could produce, so for them the block ends at the *last* such line.
const LEGACY_BEGIN: &str = "# BEGIN bits-tls (managed block: edits inside are overwritten)";
const LEGACY_END: &str = "# END bits-tls";

/// One line without its line break (`\n` or `\r\n`).
fn bare(line: &[u8]) -> &[u8] {
    let l = line.strip_suffix(b"\n").unwrap_or(line);
    l.strip_suffix(b"\r").unwrap_or(l)
}

/// A rendered text that holds a marker line would end its own block: refused before anything is written.
pub fn check_no_markers(rendered: &str) -> Result<(), String> {
    match rendered
        .lines()
        .find(|l| [BEGIN, END, LEGACY_BEGIN].contains(&l.trim_end_matches('\r')))
    {
        Some(l) => Err(format!(
            "the rendered output holds the managed-block marker line `{l}`"
        )),
        None => Ok(()),
    }
}

/// Where the managed block is in `old`: (index of its BEGIN line, index of its END line).
fn find_block(lines: &[&[u8]]) -> Option<(usize, usize)> {
    let b = lines
        .iter()
        .position(|l| bare(l) == BEGIN.as_bytes() || bare(l) == LEGACY_BEGIN.as_bytes())?;
    let e = if bare(lines[b]) == BEGIN.as_bytes() {
        (b + 1..lines.len()).find(|i| bare(lines[*i]) == END.as_bytes())?
    } else {
        (b + 1..lines.len()).rev().find(|i| {
            bare(lines[*i]) == LEGACY_END.as_bytes() || bare(lines[*i]) == END.as_bytes()
        })?
    };
    Some((b, e))
}

/// What the file should contain: `rendered` alone if the file is new or wholly ours; otherwise the
/// rendered text between BEGIN/END markers with every other byte of the file kept exactly (bytes that
/// are not UTF-8 too).
pub fn merge_managed_bytes(existing: Option<&[u8]>, rendered: &str, use_blocks: bool) -> Vec<u8> {
    let Some(old) = existing.filter(|e| !e.iter().all(u8::is_ascii_whitespace)) else {
        return rendered.as_bytes().to_vec();
    };
    if !use_blocks {
        return rendered.as_bytes().to_vec();
    }
    let block = format!("{BEGIN}\n{rendered}{END}\n");
    let lines: Vec<&[u8]> = old.split_inclusive(|b| *b == b'\n').collect();
    if let Some((b, e)) = find_block(&lines) {
        let mut out: Vec<u8> = lines[..b].concat();
        out.extend_from_slice(block.as_bytes());
        out.extend_from_slice(&lines[e + 1..].concat());
        return out;
    }
    if is_ours(old) {
        return rendered.as_bytes().to_vec();
    }
    let mut out = old.to_vec();
    if !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    out.extend_from_slice(block.as_bytes());
    out
}

/// [`merge_managed_bytes`] for text.
pub fn merge_managed(existing: Option<&str>, rendered: &str, use_blocks: bool) -> String {
    let bytes = merge_managed_bytes(existing.map(str::as_bytes), rendered, use_blocks);
    String::from_utf8(bytes).expect("text in, text out")
}

/// The lines of `file` outside its managed block, with their line numbers (from 1).
/// A file without a block is wholly ours and has none.
pub fn outside_block(file: &[u8]) -> Vec<(usize, &[u8])> {
    let lines: Vec<&[u8]> = file.split_inclusive(|b| *b == b'\n').collect();
    let Some((b, e)) = find_block(&lines) else {
        return Vec::new();
    };
    lines
        .iter()
        .enumerate()
        .filter(|(i, _)| !(b..=e).contains(i))
        .map(|(i, l)| (i + 1, bare(l)))
        .collect()
}

/// `key value` of a Postfix lookup-table line (keys compare without case), if it is one.
fn table_entry(line: &str) -> Option<(String, String)> {
    let t = line.trim();
    if t.is_empty() || t.starts_with('#') || line.starts_with(char::is_whitespace) {
        return None;
    }
    let (k, v) = t.split_once(char::is_whitespace).unwrap_or((t, ""));
    Some((
        k.to_ascii_lowercase(),
        v.split_whitespace().collect::<Vec<_>>().join(" "),
    ))
}

/// Hand-written lines outside the managed block of a Postfix table that repeat a listed key with
/// another value. `postmap` keeps the first entry of a key, so a line above the block (`bits.no
/// encrypt`) silently weakens the listed one; a line below it is silently ignored.
pub fn shadowing_lines(out: &Output, merged: &[u8], rendered: &str) -> Vec<crate::list::Warning> {
    use crate::render::BuiltIn;
    if !matches!(
        out.target,
        Target::BuiltIn(BuiltIn::PostfixPolicy | BuiltIn::PostfixSenders)
    ) {
        return Vec::new();
    }
    let outside = outside_block(merged);
    if outside.is_empty() {
        return Vec::new();
    }
    let listed: std::collections::HashMap<String, String> =
        rendered.lines().filter_map(table_entry).collect();
    let lines: Vec<&[u8]> = merged.split_inclusive(|b| *b == b'\n').collect();
    let begin = find_block(&lines).map_or(0, |(b, _)| b + 1);
    let path = crate::sanitize::for_terminal(&out.path.display().to_string());
    outside
        .into_iter()
        .filter_map(|(n, line)| {
            let line = String::from_utf8_lossy(line);
            let (key, value) = table_entry(&line)?;
            let want = listed.get(&key).filter(|w| **w != value)?;
            let shown = crate::sanitize::excerpt(line.trim(), 120);
            Some(crate::list::Warning::general(if n < begin {
                format!("`{path}` line {n}: `{shown}` above the managed block overrides the listed entry `{key} {want}` (postmap keeps the first entry of a key); remove it or add an [[override]]")
            } else {
                format!("`{path}` line {n}: `{shown}` below the managed block repeats the listed key `{key}` and is ignored by postmap")
            }))
        })
        .collect()
}

/// A file bits-tls wrote whole: its header says so in the first lines.
fn is_ours(text: &[u8]) -> bool {
    text.split(|b| *b == b'\n')
        .take(3)
        .any(|l| l.starts_with(b"# Generated by bits-tls "))
}

/// One output file's change, with the output it belongs to (and so its hook).
#[derive(Debug, Clone)]
pub struct FileChange {
    pub output: Output,
    /// The file's current content as text (`None`: it does not exist); bytes that are not UTF-8 show
    /// as U+FFFD here, but are kept in [`FileChange::content`].
    pub before: Option<String>,
    /// The new content as text, for diffs.
    pub after: String,
    /// The exact bytes to write.
    pub content: Vec<u8>,
    pub status: FileStatus,
    /// Unified diff, empty when unchanged; a summary instead when the change is too large to show.
    pub diff: String,
    /// (lines added, lines removed).
    counts: (usize, usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileStatus {
    Create,
    Update,
    Unchanged,
}

/// A change of more lines than this gets a summary instead of a line diff: nobody reads a longer diff,
/// and computing it is what would make a large change slow.
pub const MAX_DIFF_LINES: usize = 5000;

/// The longest a line diff may take before it settles for a coarser (still correct) one.
const DIFF_DEADLINE: std::time::Duration = std::time::Duration::from_secs(2);

impl FileChange {
    pub fn new(output: Output, before: Option<Vec<u8>>, content: Vec<u8>) -> FileChange {
        let status = match &before {
            None => FileStatus::Create,
            Some(b) if *b == content => FileStatus::Unchanged,
            Some(_) => FileStatus::Update,
        };
        let before_text = before
            .as_deref()
            .map(|b| String::from_utf8_lossy(b).into_owned());
        let after = String::from_utf8_lossy(&content).into_owned();
        let (diff, counts) = if status == FileStatus::Unchanged {
            (String::new(), (0, 0))
        } else {
            let shown = output.path.display().to_string();
            let from = if before.is_some() {
                &shown
            } else {
                "/dev/null"
            };
            line_diff(before_text.as_deref().unwrap_or(""), &after, from, &shown)
        };
        FileChange {
            output,
            before: before_text,
            after,
            content,
            status,
            diff,
            counts,
        }
    }

    pub fn path(&self) -> &std::path::Path {
        &self.output.path
    }

    /// The target's name (`postfix-policy`, …, `template`).
    pub fn target(&self) -> &'static str {
        self.output.target.name()
    }

    pub fn changed(&self) -> bool {
        self.status != FileStatus::Unchanged
    }

    /// (lines added, lines removed).
    pub fn counts(&self) -> (usize, usize) {
        self.counts
    }
}

/// Lines only in `after` and only in `before`, counted as multisets: linear, and for the sorted tables
/// bits-tls writes the same numbers a line diff gives.
fn line_counts(before: &str, after: &str) -> (usize, usize) {
    let mut count: std::collections::HashMap<&str, i64> = std::collections::HashMap::new();
    for l in before.lines() {
        *count.entry(l).or_default() -= 1;
    }
    for l in after.lines() {
        *count.entry(l).or_default() += 1;
    }
    count.values().fold((0, 0), |(a, r), n| {
        if *n > 0 {
            (a + *n as usize, r)
        } else {
            (a, r + (-*n) as usize)
        }
    })
}

/// A unified diff with two lines of context and its counts, in time that stays near linear: a change of
/// more than [`MAX_DIFF_LINES`] lines is summarised, and the patience algorithm with a deadline keeps
/// even a pathological smaller one bounded.
fn line_diff(before: &str, after: &str, from: &str, to: &str) -> (String, (usize, usize)) {
    let (added, removed) = line_counts(before, after);
    if added + removed > MAX_DIFF_LINES {
        let text = format!(
            "--- {from}\n+++ {to}\n# the line diff is not shown: {added} lines added and {removed} removed (more than {MAX_DIFF_LINES} changed lines)\n"
        );
        return (text, (added, removed));
    }
    let diff = similar::TextDiff::configure()
        .algorithm(similar::Algorithm::Patience)
        .deadline(std::time::Instant::now() + DIFF_DEADLINE)
        .diff_lines(before, after);
    let mut added = 0;
    let mut removed = 0;
    for op in diff.ops() {
        for change in diff.iter_changes(op) {
            match change.tag() {
                similar::ChangeTag::Insert => added += 1,
                similar::ChangeTag::Delete => removed += 1,
                similar::ChangeTag::Equal => {}
            }
        }
    }
    let text = diff
        .unified_diff()
        .context_radius(2)
        .header(from, to)
        .to_string();
    (text, (added, removed))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWN_TOP: &str = "# own\nlocal.example verify\n";
    const OWN_TAIL: &str = "tail.example verify\n";

    /// An organisation named `END bits-tls` renders as the comment `# END bits-tls`. It must never end
    /// the block: the next sync would take the rest of the old block for the admin's own lines.
    #[test]
    fn list_text_cannot_end_the_block() {
        let hostile = format!(
            "# {}\nbits.no verify\n",
            crate::sanitize::comment("END bits-tls <managed block>")
        );
        assert!(check_no_markers(&hostile).is_ok());
        let file = format!("{OWN_TOP}{BEGIN}\n{hostile}{END}\n{OWN_TAIL}");
        let merged = merge_managed(Some(&file), "fno.no verify\n", true);
        assert_eq!(
            merged,
            format!("{OWN_TOP}{BEGIN}\nfno.no verify\n{END}\n{OWN_TAIL}")
        );
        // No text the comment filter lets through is a marker line.
        for name in [
            BEGIN,
            END,
            "END bits-tls <managed block>",
            "BEGIN bits-tls <x>",
        ] {
            let line = format!(
                "# {}",
                crate::sanitize::comment(name.trim_start_matches("# "))
            );
            assert!(line != BEGIN && line != END, "{line}");
        }
        assert!(check_no_markers(&format!("x\n{END}\n")).is_err());
    }

    /// A block written by bits-tls 0.1 (old markers) that already holds a fake end marker from the list
    /// is replaced up to its last end marker, and gets the new markers.
    #[test]
    fn legacy_blocks_are_migrated_up_to_their_last_end_marker() {
        let file = format!(
            "{OWN_TOP}{LEGACY_BEGIN}\n# END bits-tls\nold.no verify\n{LEGACY_END}\n{OWN_TAIL}"
        );
        let merged = merge_managed(Some(&file), "new.no verify\n", true);
        assert_eq!(
            merged,
            format!("{OWN_TOP}{BEGIN}\nnew.no verify\n{END}\n{OWN_TAIL}")
        );
    }

    #[test]
    fn bytes_outside_the_block_are_kept_even_when_not_utf8() {
        let mut file = b"# caf\xe9 latin-1\r\nlocal.example verify\n".to_vec();
        file.extend_from_slice(format!("{BEGIN}\nold.no verify\n{END}\n").as_bytes());
        file.extend_from_slice(b"\xff tail\xfe\n");
        let merged = merge_managed_bytes(Some(&file), "new.no verify\n", true);
        let mut want = b"# caf\xe9 latin-1\r\nlocal.example verify\n".to_vec();
        want.extend_from_slice(format!("{BEGIN}\nnew.no verify\n{END}\n").as_bytes());
        want.extend_from_slice(b"\xff tail\xfe\n");
        assert_eq!(merged, want);
    }

    #[test]
    fn hand_written_lines_that_shadow_a_listed_key_are_reported() {
        let out = Output {
            target: Target::BuiltIn(crate::render::BuiltIn::PostfixPolicy),
            path: "policy".into(),
            hook: None,
        };
        let rendered = "bits.no verify protocols=x\nfno.no verify\n";
        let file = format!(
            "BITS.no encrypt\nfno.no verify\nother.no may\n{BEGIN}\n{rendered}{END}\nfno.no may\n"
        );
        let w = shadowing_lines(&out, file.as_bytes(), rendered);
        assert_eq!(w.len(), 2, "{w:#?}");
        assert!(w[0]
            .message
            .contains("line 1: `BITS.no encrypt` above the managed block overrides"));
        assert!(w[1]
            .message
            .contains("line 8: `fno.no may` below the managed block"));
        // A file that is wholly ours has nothing outside a block.
        assert!(shadowing_lines(&out, rendered.as_bytes(), rendered).is_empty());
    }

    /// A large change stays fast: counts without a line diff past MAX_DIFF_LINES.
    #[test]
    fn a_large_change_is_summarised_in_linear_time() {
        let before: String = (0..50_000).map(|i| format!("d{i}.no verify\n")).collect();
        let after: String = (0..150_000)
            .map(|i| format!("d{}.no verify\n", i * 7 % 200_000))
            .collect();
        let start = std::time::Instant::now();
        let out = Output {
            target: Target::BuiltIn(crate::render::BuiltIn::PostfixPolicy),
            path: "p".into(),
            hook: None,
        };
        let f = FileChange::new(out, Some(before.into_bytes()), after.into_bytes());
        assert!(
            start.elapsed() < std::time::Duration::from_secs(3),
            "{:?}",
            start.elapsed()
        );
        assert!(
            f.diff.contains("the line diff is not shown"),
            "{}",
            &f.diff[..200]
        );
        let (a, r) = f.counts();
        assert!(a > 100_000 && r > 0, "{a} {r}");
    }
}
