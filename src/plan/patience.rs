//! `similar`'s patience diff (`similar::algorithms::patience`, itself after pijul's), on lines numbered
//! by [`super::line_diff`]: the same steps and so the same operations, but the lines that occur once
//! are found by counting their numbers in an array, where `similar` hashes every line with SipHash
//! (its `unique`), which was most of the cost of a diff over a whole 100,000-line table.

use similar::algorithms::{myers, Capture, Compact, DiffHook, NoFinishHook, Replace};
use similar::DiffOp;
use std::time::Instant;

/// The operations `similar::capture_diff_deadline(Algorithm::Patience, old, .., new, .., deadline)`
/// gives for two texts' line numbers (`old` and `new` number equal lines alike, from 0 up).
pub(super) fn capture(old: &[u32], new: &[u32], deadline: Instant) -> Vec<DiffOp> {
    let mut d = Compact::new(Replace::new(Capture::new()), old, new);
    let distinct = old.iter().chain(new).max().map_or(0, |m| *m as usize + 1);
    let old_unique = unique(old, distinct);
    let new_unique = unique(new, distinct);
    let old_keys: Vec<u32> = old_unique.iter().map(|i| old[*i]).collect();
    let new_keys: Vec<u32> = new_unique.iter().map(|i| new[*i]).collect();
    let mut p = Replace::new(Patience {
        d: &mut d,
        old,
        old_current: 0,
        old_end: old.len(),
        old_unique: &old_unique,
        new,
        new_current: 0,
        new_end: new.len(),
        new_unique: &new_unique,
        deadline,
    });
    let Ok(()) = myers::diff_deadline(
        &mut p,
        &old_keys,
        0..old_keys.len(),
        &new_keys,
        0..new_keys.len(),
        Some(deadline),
    );
    d.into_inner().into_inner().into_ops()
}

/// The indexes of the lines that occur once in `lines`, in order.
fn unique(lines: &[u32], distinct: usize) -> Vec<usize> {
    let mut seen = vec![0u8; distinct];
    for l in lines {
        let n = &mut seen[*l as usize];
        *n = n.saturating_add(1);
    }
    (0..lines.len())
        .filter(|i| seen[lines[*i] as usize] == 1)
        .collect()
}

struct Patience<'a, D> {
    d: &'a mut D,
    old: &'a [u32],
    old_current: usize,
    old_end: usize,
    old_unique: &'a [usize],
    new: &'a [u32],
    new_current: usize,
    new_end: usize,
    new_unique: &'a [usize],
    deadline: Instant,
}

impl<D: DiffHook> DiffHook for Patience<'_, D> {
    type Error = D::Error;
    fn equal(&mut self, old: usize, new: usize, len: usize) -> Result<(), D::Error> {
        for (old, new) in (old..old + len).zip(new..new + len) {
            let a0 = self.old_current;
            let b0 = self.new_current;
            while self.old_current < self.old_unique[old]
                && self.new_current < self.new_unique[new]
                && self.new[self.new_current] == self.old[self.old_current]
            {
                self.old_current += 1;
                self.new_current += 1;
            }
            if self.old_current > a0 {
                self.d.equal(a0, b0, self.old_current - a0)?;
            }
            let mut no_finish_d = NoFinishHook::new(&mut self.d);
            myers::diff_deadline(
                &mut no_finish_d,
                self.old,
                self.old_current..self.old_unique[old],
                self.new,
                self.new_current..self.new_unique[new],
                Some(self.deadline),
            )?;
            self.old_current = self.old_unique[old];
            self.new_current = self.new_unique[new];
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), D::Error> {
        myers::diff_deadline(
            self.d,
            self.old,
            self.old_current..self.old_end,
            self.new,
            self.new_current..self.new_end,
            Some(self.deadline),
        )
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]
        /// The same operations as `similar`'s patience diff, repeated numbers too.
        #[test]
        fn same_operations_as_similar(
            old in proptest::collection::vec(0u32..12, 0..120),
            new in proptest::collection::vec(0u32..12, 0..120),
        ) {
            let far = std::time::Instant::now() + std::time::Duration::from_secs(60);
            let theirs = similar::capture_diff_deadline(
                similar::Algorithm::Patience, &old, 0..old.len(), &new, 0..new.len(), Some(far),
            );
            prop_assert_eq!(super::capture(&old, &new, far), theirs);
        }
    }
}
