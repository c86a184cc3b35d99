//! The unified line diff of one output file, byte for byte as `similar`'s `TextDiff` prints it for the
//! tables bits-tls writes, without its cost at scale: `TextDiff` hashes every line with SipHash to
//! number the distinct lines, and its patience algorithm hashes every line again. Here the lines the
//! two texts share at their start and end are cut off first by comparing bytes (as git's diff does), so
//! a small change in a 100,000-line file costs one linear compare and a diff of the changed lines; the
//! lines left are numbered with foldhash (seeded per process), and `similar`'s own patience algorithm,
//! hunk grouping and hunk headers run on the numbers. Where lines repeat, the patience diff of the
//! middle alone may pair equal lines differently than one of the whole text: still a correct diff.

use similar::{ChangeTag, DiffOp, DiffTag, DiffableStr};
use std::fmt::Write as _;

/// `(prefix, before's middle, after's middle, suffix)`: the whole lines both texts start with, the
/// whole lines both end with, and what is left of each between them. `prefix + middle + suffix` is
/// each text again; the prefix and the suffix never overlap.
pub(super) fn trim_common<'a>(
    before: &'a str,
    after: &'a str,
) -> (&'a str, &'a str, &'a str, &'a str) {
    let (b, a) = (before.as_bytes(), after.as_bytes());
    let same = common_prefix(b, a);
    if same == b.len() && same == a.len() {
        return (before, "", "", "");
    }
    // The prefix ends after the last line break both share.
    let p = b[..same]
        .iter()
        .rposition(|c| *c == b'\n')
        .map_or(0, |i| i + 1);
    let (b_rest, a_rest) = (&b[p..], &a[p..]);
    let same_end = common_suffix(b_rest, a_rest);
    // The suffix starts at a line start in both texts: where both middles end, or after a line break
    // inside the shared bytes.
    let starts_line = |rest: &[u8], k: usize| k == rest.len() || rest[rest.len() - k - 1] == b'\n';
    let tail = &b_rest[b_rest.len() - same_end..];
    let s = if starts_line(b_rest, same_end) && starts_line(a_rest, same_end) {
        same_end
    } else {
        tail.iter()
            .position(|c| *c == b'\n')
            .map_or(0, |i| same_end - i - 1)
    };
    (
        &before[..p],
        &before[p..before.len() - s],
        &after[p..after.len() - s],
        &before[before.len() - s..],
    )
}

/// How many bytes `a` and `b` share at their start, found a block at a time (a `memcmp` each).
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    const BLOCK: usize = 256;
    let n = a.len().min(b.len());
    let mut i = 0;
    while i + BLOCK <= n && a[i..i + BLOCK] == b[i..i + BLOCK] {
        i += BLOCK;
    }
    i + a[i..n]
        .iter()
        .zip(&b[i..n])
        .take_while(|(x, y)| x == y)
        .count()
}

/// How many bytes `a` and `b` share at their end.
fn common_suffix(a: &[u8], b: &[u8]) -> usize {
    const BLOCK: usize = 256;
    let n = a.len().min(b.len());
    let (a, b) = (&a[a.len() - n..], &b[b.len() - n..]);
    let mut k = 0;
    while k + BLOCK <= n && a[n - k - BLOCK..n - k] == b[n - k - BLOCK..n - k] {
        k += BLOCK;
    }
    k + a[..n - k]
        .iter()
        .rev()
        .zip(b[..n - k].iter().rev())
        .take_while(|(x, y)| x == y)
        .count()
}

/// The diff of `before` → `after` with `radius` lines of context under a `--- from` / `+++ to` header
/// (empty when nothing changed), and the (added, removed) line counts.
#[cfg(test)]
pub(super) fn unified(
    before: &str,
    after: &str,
    from: &str,
    to: &str,
    radius: usize,
    deadline: std::time::Instant,
) -> (String, (usize, usize)) {
    unified_numbered(number(before, after), from, to, radius, deadline)
}

/// Two texts cut and numbered for a diff: the lines both share at their start and end
/// ([`trim_common`]), the lines of each middle, and a number for each line (equal numbers for equal
/// lines, in both texts).
pub(super) struct Numbered<'a> {
    before: &'a str,
    after: &'a str,
    prefix: &'a str,
    suffix: &'a str,
    old_mid: Vec<&'a str>,
    new_mid: Vec<&'a str>,
    old_ids: Vec<u32>,
    new_ids: Vec<u32>,
    distinct: usize,
}

/// `before` and `after` cut and numbered (the one pass over every line that hashes it).
pub(super) fn number<'a>(before: &'a str, after: &'a str) -> Numbered<'a> {
    let (prefix, old_mid, new_mid, suffix) = trim_common(before, after);
    let old_mid = tokenize(old_mid);
    let new_mid = tokenize(new_mid);
    let (old_ids, new_ids, distinct) = number_lines(&old_mid, &new_mid);
    Numbered {
        before,
        after,
        prefix,
        suffix,
        old_mid,
        new_mid,
        old_ids,
        new_ids,
        distinct,
    }
}

impl Numbered<'_> {
    /// Lines only in `after` and only in `before`, counted as multisets from the numbers: what
    /// counting the middles' `str::lines` gives, when every middle line ends with `\n` and none holds a
    /// `\r` (the tables bits-tls writes); `None` otherwise.
    pub(super) fn multiset_counts(&self) -> Option<(usize, usize)> {
        let plain = |lines: &[&str]| {
            lines
                .iter()
                .all(|l| l.ends_with('\n') && !l.as_bytes()[..l.len() - 1].contains(&b'\r'))
        };
        if !plain(&self.old_mid) || !plain(&self.new_mid) {
            return None;
        }
        let mut count = vec![0i64; self.distinct];
        for id in &self.old_ids {
            count[*id as usize] -= 1;
        }
        for id in &self.new_ids {
            count[*id as usize] += 1;
        }
        Some(count.iter().fold((0, 0), |(a, r), n| {
            if *n > 0 {
                (a + *n as usize, r)
            } else {
                (a, r + (-*n) as usize)
            }
        }))
    }
}

/// [`unified`] of texts already numbered.
pub(super) fn unified_numbered(
    numbered: Numbered,
    from: &str,
    to: &str,
    radius: usize,
    deadline: std::time::Instant,
) -> (String, (usize, usize)) {
    let (ops, old, new) = diff_ops(numbered, radius, deadline);
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

/// The line operations that turn `before` into `after`, and the lines of each text they may show with
/// `radius` lines of context (the changed lines and that many around them).
fn diff_ops<'a>(
    numbered: Numbered<'a>,
    radius: usize,
    deadline: std::time::Instant,
) -> (Vec<DiffOp>, Window<'a>, Window<'a>) {
    let Numbered {
        before,
        after,
        prefix,
        suffix,
        old_mid,
        new_mid,
        old_ids,
        new_ids,
        ..
    } = numbered;
    let head = line_count(prefix);
    let mid_ops = super::patience::capture(&old_ids, &new_ids, deadline);
    // The whole text's operations: the shared prefix, the middle's shifted past it, the shared suffix;
    // equal runs that meet are one operation, as a diff of the whole text gives them.
    let tail = line_count(suffix);
    let mut ops: Vec<DiffOp> = Vec::with_capacity(mid_ops.len() + 2);
    let mut push = |op: DiffOp| {
        if let (Some(DiffOp::Equal { len, .. }), DiffOp::Equal { len: more, .. }) =
            (ops.last_mut(), op)
        {
            *len += more;
        } else if !(op.tag() == DiffTag::Equal && op.old_range().is_empty()) {
            ops.push(op);
        }
    };
    push(DiffOp::Equal {
        old_index: 0,
        new_index: 0,
        len: head,
    });
    for op in mid_ops {
        push(shift(op, head));
    }
    push(DiffOp::Equal {
        old_index: head + old_mid.len(),
        new_index: head + new_mid.len(),
        len: tail,
    });
    // The context comes from the end of the prefix and the start of the suffix, the same bytes in both.
    let above = last_lines(prefix, radius);
    let below = first_lines(suffix, radius);
    let window = |text: &'a str| Window {
        first: head - line_count(above),
        lines: tokenize(&text[prefix.len() - above.len()..text.len() - suffix.len() + below.len()]),
    };
    (ops, window(before), window(after))
}

/// Some consecutive lines of a text, indexed by their line index in the whole text.
struct Window<'a> {
    first: usize,
    lines: Vec<&'a str>,
}

impl<'a> std::ops::Index<usize> for Window<'a> {
    type Output = &'a str;
    fn index(&self, i: usize) -> &&'a str {
        &self.lines[i - self.first]
    }
}

/// The lines of `text` as `similar` splits them (after `\n`, `\r\n` or a lone `\r`), found bytewise.
fn tokenize(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut start = 0;
    for_each_line_end(text, |end| {
        lines.push(&text[start..end]);
        start = end;
    });
    if start < text.len() {
        lines.push(&text[start..]);
    }
    lines
}

/// Calls `f` with the end (exclusive) of each line break of `text`, as [`tokenize`] splits it.
fn for_each_line_end(text: &str, mut f: impl FnMut(usize)) {
    let b = text.as_bytes();
    let mut i = 0;
    while let Some(at) = b[i..].iter().position(|c| *c == b'\n' || *c == b'\r') {
        i += at;
        if b[i] == b'\r' && b.get(i + 1) == Some(&b'\n') {
            i += 1;
        }
        i += 1;
        f(i);
    }
}

/// The number of lines of `text` as [`tokenize`] splits it (the last may lack its line break).
fn line_count(text: &str) -> usize {
    let mut n = 0;
    let mut last = 0;
    for_each_line_end(text, |end| {
        n += 1;
        last = end;
    });
    n + usize::from(last < text.len())
}

/// The last `k` lines of `text` split at `\n` alone (so at least `k` lines as [`tokenize`] splits them),
/// where `text` is empty or ends with a `\n`.
fn last_lines(text: &str, k: usize) -> &str {
    let mut start = text.len();
    for _ in 0..k {
        match text[..start.saturating_sub(1)].rfind('\n') {
            Some(i) => start = i + 1,
            None => return text,
        }
    }
    &text[start..]
}

/// The first `k` lines of `text` split at `\n` alone (so at least `k` lines as [`tokenize`] splits them).
fn first_lines(text: &str, k: usize) -> &str {
    let mut end = 0;
    for _ in 0..k {
        match text[end..].find('\n') {
            Some(i) => end += i + 1,
            None => return text,
        }
    }
    &text[..end]
}

/// `op` with both of its indexes moved on by `by` lines.
fn shift(op: DiffOp, by: usize) -> DiffOp {
    match op {
        DiffOp::Equal {
            old_index,
            new_index,
            len,
        } => DiffOp::Equal {
            old_index: old_index + by,
            new_index: new_index + by,
            len,
        },
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

/// Each line as a number, equal numbers for equal lines (in both texts), and how many numbers there are.
fn number_lines<'a>(old: &[&'a str], new: &[&'a str]) -> (Vec<u32>, Vec<u32>, usize) {
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
    (old_ids, new_ids, ids.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn similar_diff(before: &str, after: &str) -> (String, (usize, usize)) {
        let diff = similar::TextDiff::configure()
            .algorithm(similar::Algorithm::Patience)
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
            ("a\rb\rc\nd\n", "a\rb\rc\ne\n"),
            ("x\n1\r2\r3\n", "x\n1\r2\r4\n"),
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

    /// Applies `ops` to `before`'s lines: they must cover both texts in order, and every equal run must
    /// be equal lines.
    fn check_ops(before: &str, after: &str) -> Result<(), String> {
        let far = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let (old, new) = (before.tokenize_lines(), after.tokenize_lines());
        let (mut i, mut j) = (0, 0);
        for op in diff_ops(number(before, after), 2, far).0 {
            let (tag, o, n) = op.as_tag_tuple();
            // (`similar` gives an insertion an old index of its own choosing, and a deletion a new one.)
            if (tag != DiffTag::Insert && o.start != i) || (tag != DiffTag::Delete && n.start != j)
            {
                return Err(format!("{op:?} does not continue at {i}, {j}"));
            }
            if tag == DiffTag::Equal && old[o.clone()] != new[n.clone()] {
                return Err(format!("{op:?} pairs different lines"));
            }
            if tag != DiffTag::Insert {
                i = o.end;
            }
            if tag != DiffTag::Delete {
                j = n.end;
            }
        }
        if (i, j) != (old.len(), new.len()) {
            return Err(format!("the operations end at {i}, {j}"));
        }
        Ok(())
    }

    /// A file's lines, each distinct (as in the tables bits-tls writes): `mask` picks which of `pool`.
    fn distinct_lines(pool: &[String], mask: &[bool]) -> String {
        pool.iter()
            .zip(mask)
            .filter(|(_, keep)| **keep)
            .map(|(l, _)| l.as_str())
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        /// With distinct lines the diff is byte for byte `similar`'s.
        #[test]
        fn same_bytes_as_similar(
            pool in proptest::collection::vec("[abcd]{0,3}(\r?\n)?", 0..150),
            old in proptest::collection::vec(proptest::bool::weighted(0.8), 150),
            new in proptest::collection::vec(proptest::bool::weighted(0.8), 150),
        ) {
            let mut seen = std::collections::HashSet::new();
            let pool: Vec<String> = pool
                .into_iter()
                .filter(|l| l.ends_with('\n') && seen.insert(l.trim_end().to_string()))
                .collect();
            let (before, after) = (distinct_lines(&pool, &old), distinct_lines(&pool, &new));
            prop_assert_eq!(ours(&before, &after), similar_diff(&before, &after));
        }

        /// With repeated lines the diff may pair equal lines differently than `similar`'s, but it is a
        /// correct one with the same shape of counts.
        #[test]
        fn a_correct_diff_with_repeated_lines(
            before in proptest::collection::vec("[abc]{0,2}(\r?\n|\r)?", 0..150),
            after in proptest::collection::vec("[abcd]{0,2}(\r?\n|\r)?", 0..150),
        ) {
            let (before, after) = (before.concat(), after.concat());
            prop_assert_eq!(check_ops(&before, &after), Ok(()));
            let (old, new) = (before.tokenize_lines().len(), after.tokenize_lines().len());
            let (added, removed) = ours(&before, &after).1;
            prop_assert_eq!(new + removed, old + added);
        }
    }

    #[test]
    fn lines_split_as_similar_splits_them() {
        for text in [
            "",
            "a",
            "a\n",
            "a\r",
            "a\r\nb",
            "\r\r\n\n\rx",
            "\u{e9}\r\u{e9}\n",
        ] {
            assert_eq!(tokenize(text), text.tokenize_lines(), "{text:?}");
            assert_eq!(line_count(text), text.tokenize_lines().len(), "{text:?}");
        }
    }

    /// The shared first and last lines are cut at line starts in both texts, never inside a line.
    #[test]
    fn the_trim_keeps_whole_lines() {
        assert_eq!(
            trim_common("a\nb\nc\n", "a\nB\nc\n"),
            ("a\n", "b\n", "B\n", "c\n")
        );
        assert_eq!(trim_common("ab\nc", "b\nc"), ("", "ab\n", "b\n", "c"));
        assert_eq!(trim_common("x\nab", "x\nb"), ("x\n", "ab", "b", ""));
        assert_eq!(trim_common("a\n", "a\n"), ("a\n", "", "", ""));
        assert_eq!(trim_common("a\n", "a\na\n"), ("a\n", "", "a\n", ""));
        assert_eq!(trim_common("a", "a\n"), ("", "a", "a\n", ""));
    }

    /// A small change in a large file is diffed in about the time of comparing the bytes.
    #[test]
    fn a_small_change_in_a_large_file_is_cheap() {
        let before: String = (0..200_000).map(|i| format!("d{i}.no verify\n")).collect();
        let after = before.replace("d100000.no verify\n", "d100000.no encrypt\n");
        let start = std::time::Instant::now();
        let (text, counts) = ours(&before, &after);
        assert_eq!(counts, (1, 1));
        assert!(text.contains("@@ -99999,5 +99999,5 @@\n"), "{text}");
        assert!(
            start.elapsed() < std::time::Duration::from_millis(600),
            "{:?}",
            start.elapsed()
        );
    }
}
