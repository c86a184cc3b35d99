//! The unified line diff of one output file, byte for byte as `similar`'s `TextDiff` prints it, without
//! its cost at scale: `TextDiff` hashes every line with SipHash to number the distinct lines. Here the
//! lines are numbered with foldhash (seeded per process), and `similar`'s own patience algorithm, hunk
//! grouping and hunk headers run on the numbers.

use similar::{Algorithm, ChangeTag, DiffOp, DiffTag, DiffableStr};
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
    // The lines both texts start and end with are equal without a diff: only the middle is numbered and
    // diffed, so a few changed lines in a 100,000-line table cost a comparison of the lines, not a hash
    // of every one (the counts and hunks are the same for the sorted tables bits-tls writes).
    let prefix = old.iter().zip(&new).take_while(|(a, b)| a == b).count();
    let suffix = old[prefix..]
        .iter()
        .rev()
        .zip(new[prefix..].iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    let (old_end, new_end) = (old.len() - suffix, new.len() - suffix);
    let (old_ids, new_ids) = number_lines(&old[prefix..old_end], &new[prefix..new_end]);
    let middle = similar::capture_diff_deadline(
        Algorithm::Patience,
        &old_ids,
        0..old_ids.len(),
        &new_ids,
        0..new_ids.len(),
        Some(deadline),
    );
    let mut ops = Vec::with_capacity(middle.len() + 2);
    push_op(&mut ops, equal(0, 0, prefix));
    for op in middle {
        push_op(&mut ops, shifted(op, prefix));
    }
    push_op(&mut ops, equal(old_end, new_end, suffix));
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

fn equal(old_index: usize, new_index: usize, len: usize) -> DiffOp {
    DiffOp::Equal {
        old_index,
        new_index,
        len,
    }
}

/// An operation on the middle, at its place in the whole texts.
fn shifted(op: DiffOp, by: usize) -> DiffOp {
    match op {
        DiffOp::Equal {
            old_index,
            new_index,
            len,
        } => equal(old_index + by, new_index + by, len),
        DiffOp::Delete {
            old_index,
            old_len,
            new_index,
        } => DiffOp::Delete {
            old_index: old_index + by,
            old_len,
            new_index: new_index + by,
        },
        DiffOp::Insert {
            old_index,
            new_index,
            new_len,
        } => DiffOp::Insert {
            old_index: old_index + by,
            new_index: new_index + by,
            new_len,
        },
        DiffOp::Replace {
            old_index,
            old_len,
            new_index,
            new_len,
        } => DiffOp::Replace {
            old_index: old_index + by,
            old_len,
            new_index: new_index + by,
            new_len,
        },
    }
}

/// Appends `op`, joining it to an equal run just before it, as one diff of the whole texts would have it.
fn push_op(ops: &mut Vec<DiffOp>, op: DiffOp) {
    if let DiffOp::Equal { len: 0, .. } = op {
        return;
    }
    if let (Some(DiffOp::Equal { len, .. }), DiffOp::Equal { len: more, .. }) =
        (ops.last_mut(), &op)
    {
        *len += more;
        return;
    }
    ops.push(op);
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

    /// `before` with the unified diff `text` applied: what a patch program makes of it.
    fn apply(before: &str, text: &str) -> String {
        let old = before.tokenize_lines();
        let mut out = String::new();
        let mut at = 0; // the next line of `old` not yet copied
        let mut lines = text.split_inclusive('\n').skip(2).peekable();
        while let Some(header) = lines.next() {
            let start: usize = header[4..]
                .split([',', ' '])
                .next()
                .unwrap()
                .parse()
                .unwrap();
            // `-0,0` is an empty old side; otherwise the 1-based first line.
            let start = start.saturating_sub(1).max(at);
            out.extend(old[at..start].iter().copied());
            at = start;
            while let Some(l) = lines.next_if(|l| !l.starts_with("@@")) {
                let no_newline = lines.next_if(|n| n.starts_with("\\ No newline")).is_some();
                match l.as_bytes()[0] {
                    b' ' => {
                        out.push_str(old[at]);
                        at += 1;
                    }
                    b'-' => at += 1,
                    _ if no_newline => out.push_str(&l[1..l.len() - 1]),
                    _ => out.push_str(&l[1..]),
                }
            }
        }
        out.extend(old[at..].iter().copied());
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn a_valid_diff_and_similars_where_the_ends_do_not_recur(
            before in proptest::collection::vec("[abc]{0,2}(\r?\n)?", 0..150),
            after in proptest::collection::vec("[abcd]{0,2}(\r?\n)?", 0..150),
        ) {
            let (before, after) = (before.concat(), after.concat());
            let (text, counts) = ours(&before, &after);
            // Always: a patch that makes `after` of `before`, with the counts it shows.
            prop_assert_eq!(apply(&before, &text), after.clone());
            let shown = |c: char| text.split_inclusive('\n').skip(2).filter(|l| l.starts_with(c)).count();
            prop_assert_eq!(counts, (shown('+'), shown('-')));
            // Where no line of the equal start or end recurs in the middle (the tables bits-tls
            // writes), the same bytes as similar's diff of the whole texts.
            let (old, new) = (before.tokenize_lines(), after.tokenize_lines());
            let prefix = old.iter().zip(&new).take_while(|(a, b)| a == b).count();
            let suffix = old[prefix..].iter().rev().zip(new[prefix..].iter().rev())
                .take_while(|(a, b)| a == b).count();
            let ends: Vec<&str> = old[..prefix].iter().chain(&old[old.len() - suffix..]).copied().collect();
            let middle = old[prefix..old.len() - suffix].iter().chain(&new[prefix..new.len() - suffix]);
            if !middle.clone().any(|l| ends.contains(l)) {
                prop_assert_eq!((text, counts), similar_diff(&before, &after));
            }
        }
    }
}
