//! The unified line diff of one output file, byte for byte as `similar`'s `TextDiff` prints it, without
//! its cost at scale: `TextDiff` hashes every line with SipHash to number the distinct lines. Here the
//! lines are numbered with foldhash (seeded per process), and `similar`'s own patience algorithm, hunk
//! grouping and hunk headers run on the numbers.

use similar::{Algorithm, ChangeTag, DiffTag, DiffableStr};
use std::fmt::Write as _;

/// The diff of `before` → `after` with `radius` lines of context under a `--- from` / `+++ to` header
/// (empty when nothing changed), and the (added, removed) line counts.
pub(super) fn unified(
    before: &str,
    after: &str,
    from: &str,
    to: &str,
    radius: usize,
    deadline: std::time::Instant,
) -> (String, (usize, usize)) {
    let old = before.tokenize_lines();
    let new = after.tokenize_lines();
    let (old_ids, new_ids) = number_lines(&old, &new);
    let ops = similar::capture_diff_deadline(
        Algorithm::Patience,
        &old_ids,
        0..old_ids.len(),
        &new_ids,
        0..new_ids.len(),
        Some(deadline),
    );
    let (mut added, mut removed) = (0, 0);
    for op in &ops {
        let (tag, old_range, new_range) = op.as_tag_tuple();
        match tag {
            DiffTag::Equal => {}
            DiffTag::Delete => removed += old_range.len(),
            DiffTag::Insert => added += new_range.len(),
            DiffTag::Replace => {
                removed += old_range.len();
                added += new_range.len();
            }
        }
    }
    let mut text = String::new();
    for hunk in similar::group_diff_ops(ops, radius) {
        if hunk.is_empty() {
            continue;
        }
        if text.is_empty() {
            let _ = writeln!(text, "--- {from}\n+++ {to}");
        }
        let _ = writeln!(text, "{}", similar::udiff::UnifiedHunkHeader::new(&hunk));
        for op in &hunk {
            for change in op.iter_changes(&old, &new) {
                let sign = match change.tag() {
                    ChangeTag::Equal => ' ',
                    ChangeTag::Delete => '-',
                    ChangeTag::Insert => '+',
                };
                text.push(sign);
                text.push_str(change.value());
                if !change.value().ends_with_newline() {
                    text.push_str("\n\\ No newline at end of file\n");
                }
            }
        }
    }
    (text, (added, removed))
}

/// Each line as a number, equal numbers for equal lines (in both texts).
fn number_lines<'a>(old: &[&'a str], new: &[&'a str]) -> (Vec<u32>, Vec<u32>) {
    let mut ids: foldhash::HashMap<&'a str, u32> = foldhash::HashMap::default();
    ids.reserve(old.len().max(new.len()));
    let mut number = |lines: &[&'a str]| -> Vec<u32> {
        lines
            .iter()
            .map(|l| {
                let next = ids.len() as u32;
                *ids.entry(*l).or_insert(next)
            })
            .collect()
    };
    let old_ids = number(old);
    let new_ids = number(new);
    (old_ids, new_ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn similar_diff(before: &str, after: &str) -> (String, (usize, usize)) {
        let diff = similar::TextDiff::configure()
            .algorithm(Algorithm::Patience)
            .diff_lines(before, after);
        let mut counts = (0, 0);
        for change in diff.iter_all_changes() {
            match change.tag() {
                ChangeTag::Insert => counts.0 += 1,
                ChangeTag::Delete => counts.1 += 1,
                ChangeTag::Equal => {}
            }
        }
        let text = diff
            .unified_diff()
            .context_radius(2)
            .header("a", "b")
            .to_string();
        (text, counts)
    }

    fn ours(before: &str, after: &str) -> (String, (usize, usize)) {
        let far = std::time::Instant::now() + std::time::Duration::from_secs(60);
        unified(before, after, "a", "b", 2, far)
    }

    #[test]
    fn same_bytes_as_similar_on_edge_cases() {
        let cases = [
            ("", ""),
            ("a\n", "a\n"),
            ("a\n", "b"),
            ("a", "a\n"),
            ("a\r\nb\r\n", "a\r\nc\r\n"),
            ("x\nx\nx\ny\n", "x\ny\nx\nx\n"),
            ("", "new\nfile\n"),
            ("gone\n", ""),
        ];
        for (before, after) in cases {
            assert_eq!(
                ours(before, after),
                similar_diff(before, after),
                "{before:?} → {after:?}"
            );
        }
        // Large enough for similar's own line numbering (over 100 lines), with repeated lines.
        let before: String = (0..400).map(|i| format!("line {}\n", i % 37)).collect();
        let after = before
            .replace("line 5\n", "line five\n")
            .replacen("line 9\n", "", 3);
        assert_eq!(ours(&before, &after), similar_diff(&before, &after));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn same_bytes_as_similar(
            before in proptest::collection::vec("[abc]{0,2}(\r?\n)?", 0..150),
            after in proptest::collection::vec("[abcd]{0,2}(\r?\n)?", 0..150),
        ) {
            let (before, after) = (before.concat(), after.concat());
            prop_assert_eq!(ours(&before, &after), similar_diff(&before, &after));
        }
    }
}
