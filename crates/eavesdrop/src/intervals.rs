//! Bytes of a data stream by sequence number, with the holes left open.

use std::collections::BTreeMap;

/// Disjoint, non-adjacent runs of bytes keyed by their first sequence
/// number.  The first copy of a byte wins; later copies are counted.
#[derive(Clone, Debug, Default)]
pub struct IntervalMap {
    runs: BTreeMap<u64, Vec<u8>>,
}

/// What one [`IntervalMap::insert`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Inserted {
    pub new: u64,
    pub duplicate: u64,
    /// Duplicates whose value differs from the first copy.
    pub mismatched: u64,
}

impl std::ops::AddAssign for Inserted {
    fn add_assign(&mut self, o: Self) {
        self.new += o.new;
        self.duplicate += o.duplicate;
        self.mismatched += o.mismatched;
    }
}

impl IntervalMap {
    /// Adds `bytes` at sequence numbers from `start`.  Cheap when it
    /// extends the run before it, as in-order data does.
    pub fn insert(&mut self, start: u64, bytes: &[u8]) -> Inserted {
        let room = usize::try_from(u64::MAX - start).unwrap_or(usize::MAX);
        let bytes = &bytes[..bytes.len().min(room)];
        let end = start + bytes.len() as u64;
        let mut stats = Inserted::default();
        if bytes.is_empty() {
            return stats;
        }
        let mut compare = |new: &[u8], old: &[u8]| {
            stats.duplicate += new.len() as u64;
            stats.mismatched += new.iter().zip(old).filter(|(a, b)| a != b).count() as u64;
        };

        let pred = self
            .runs
            .range(..=start)
            .next_back()
            .map(|(&s, v)| (s, s + v.len() as u64));
        let (run_start, mut run) = match pred {
            Some((s, e)) if e >= start => (s, self.runs.remove(&s).unwrap_or_default()),
            _ => (start, Vec::new()),
        };

        let mut pos = start;
        let run_end = run_start + run.len() as u64;
        if pos < run_end {
            let upto = end.min(run_end);
            let old_from = (pos - run_start) as usize;
            compare(&bytes[..(upto - pos) as usize], &run[old_from..]);
            pos = upto;
        }
        while pos < end {
            let next = self.runs.range(pos..end).next().map(|(&s, _)| s);
            let Some(next_start) = next else {
                run.extend_from_slice(&bytes[(pos - start) as usize..]);
                stats.new += end - pos;
                break;
            };
            run.extend_from_slice(&bytes[(pos - start) as usize..(next_start - start) as usize]);
            stats.new += next_start - pos;
            let old = self.runs.remove(&next_start).unwrap_or_default();
            let upto = end.min(next_start + old.len() as u64);
            compare(
                &bytes[(next_start - start) as usize..(upto - start) as usize],
                &old,
            );
            run.extend_from_slice(&old);
            pos = upto;
        }
        if let Some(adjacent) = self.runs.remove(&(run_start + run.len() as u64)) {
            run.extend_from_slice(&adjacent);
        }
        self.runs.insert(run_start, run);
        stats
    }

    /// The runs in sequence order.
    pub fn runs(&self) -> impl Iterator<Item = (u64, &[u8])> {
        self.runs.iter().map(|(&s, v)| (s, v.as_slice()))
    }

    pub fn first(&self) -> Option<u64> {
        self.runs.keys().next().copied()
    }

    /// One past the last byte held.
    pub fn end(&self) -> Option<u64> {
        self.runs
            .iter()
            .next_back()
            .map(|(&s, v)| s + v.len() as u64)
    }

    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(m: &IntervalMap) -> Vec<(u64, Vec<u8>)> {
        m.runs().map(|(s, v)| (s, v.to_vec())).collect()
    }

    #[test]
    fn in_order_data_makes_one_run() {
        let mut m = IntervalMap::default();
        m.insert(10, b"abc");
        m.insert(13, b"def");
        assert_eq!(runs(&m), vec![(10, b"abcdef".to_vec())]);
    }

    #[test]
    fn gaps_stay_open_and_fill_in_later() {
        let mut m = IntervalMap::default();
        m.insert(0, b"ab");
        m.insert(5, b"fg");
        m.insert(9, b"j");
        assert_eq!(runs(&m).len(), 3);
        let s = m.insert(1, b"bcdefghi");
        assert_eq!(
            s,
            Inserted {
                new: 5,
                duplicate: 3,
                mismatched: 0
            }
        );
        assert_eq!(runs(&m), vec![(0, b"abcdefghij".to_vec())]);
    }

    #[test]
    fn first_copy_wins_and_differences_are_counted() {
        let mut m = IntervalMap::default();
        m.insert(0, b"abcd");
        let s = m.insert(2, b"XdY");
        assert_eq!(
            s,
            Inserted {
                new: 1,
                duplicate: 2,
                mismatched: 1
            }
        );
        assert_eq!(runs(&m), vec![(0, b"abcdY".to_vec())]);
    }

    #[test]
    fn insert_before_existing_runs_merges_them() {
        let mut m = IntervalMap::default();
        m.insert(4, b"ef");
        m.insert(8, b"ij");
        m.insert(0, b"abcd");
        assert_eq!(runs(&m), vec![(0, b"abcdef".to_vec()), (8, b"ij".to_vec())]);
        m.insert(6, b"gh");
        assert_eq!(runs(&m), vec![(0, b"abcdefghij".to_vec())]);
    }

    #[test]
    fn end_of_sequence_space_does_not_overflow() {
        let mut m = IntervalMap::default();
        m.insert(u64::MAX - 1, b"abc");
        assert_eq!(m.end(), Some(u64::MAX));
    }
}
