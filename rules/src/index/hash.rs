//! A flat, immutable hash table from 64-bit name hashes to small values.
//!
//! Built once from a list of `(hash, value)` pairs and never changed: a new policy builds a
//! new table. The pairs are sorted and laid out in hash order with gaps (a load factor of
//! about 0.85), so every key sits at or just after its home slot and a lookup, hit or miss,
//! reads one or two neighbouring cache lines and stops at the first larger key. A key and
//! its value share a slot, so a hit costs the same single cache miss as a miss; with a
//! `u16` value a slot is 16 bytes, about 19 bytes a name at this load factor.
//!
//! Keys are hashes, not names: two different names colliding on all 64 bits would share an
//! entry. With 2 million names the chance that any query collides is about 1 in 10^13.

/// The table. `V` is a small `Copy` value (a category-set id, an entry range).
#[derive(Clone, Debug)]
pub struct HashIndex<V> {
    /// `(key, value)`; key 0 marks an empty slot.
    table: Box<[(u64, V)]>,
    slots: u64,
    len: usize,
}

impl<V: Copy + Default> Default for HashIndex<V> {
    fn default() -> Self {
        HashIndex::build(Vec::new(), |_, _| {})
    }
}

impl<V: Copy + Default> HashIndex<V> {
    /// Builds the table. Pairs with the same hash are combined with `merge(existing, new)`.
    pub fn build(mut pairs: Vec<(u64, V)>, mut merge: impl FnMut(&mut V, V)) -> Self {
        pairs.sort_unstable_by_key(|&(k, _)| k);
        pairs.dedup_by(|next, kept| {
            if next.0 == kept.0 {
                merge(&mut kept.1, next.1);
                true
            } else {
                false
            }
        });
        let len = pairs.len();
        let slots = (len as u64 * 20 / 17).max(1);
        let mut table: Vec<(u64, V)> = vec![(0, V::default()); slots as usize + 1];
        let mut next_free = 0usize;
        for (key, val) in pairs {
            let pos = home(key, slots).max(next_free);
            if pos >= table.len() {
                table.resize(pos + 1, (0, V::default()));
            }
            table[pos] = (key, val);
            next_free = pos + 1;
        }
        // A trailing empty slot ends every probe.
        table.push((0, V::default()));
        let mut table = table.into_boxed_slice();
        advise_huge_pages(&mut table);
        HashIndex { table, slots, len }
    }

    /// The value stored for `key` (a hash from [`crate::host`]).
    #[inline]
    pub fn get(&self, key: u64) -> Option<V> {
        let mut i = home(key, self.slots);
        loop {
            let &(k, v) = self.table.get(i)?;
            if k == key {
                return Some(v);
            }
            if k == 0 || k > key {
                return None;
            }
            i += 1;
        }
    }

    /// Calls `found` with the value of each key present. The first probe of every key is
    /// read before any is compared, so the cache misses of a host's suffixes overlap instead
    /// of queueing one behind the other.
    #[inline]
    pub fn get_each(&self, keys: &[u64], mut found: impl FnMut(usize, V)) {
        let mut first = [0u64; 16];
        for (slot, &key) in first.iter_mut().zip(keys) {
            *slot = self.table.get(home(key, self.slots)).map_or(0, |e| e.0);
        }
        for (i, &key) in keys.iter().enumerate() {
            // A first probe that is empty or already past the key means a miss: no second read.
            if first.get(i).is_some_and(|&k| k == 0 || k > key) {
                continue;
            }
            if let Some(v) = self.get(key) {
                found(i, v);
            }
        }
    }

    /// Number of distinct keys.
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Bytes held by the table's arrays.
    pub fn heap_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.table)
    }
}

/// Asks the kernel to back a large, finished table with 2 MiB pages (and to move it onto
/// them now): a random lookup then costs a cache miss without a page walk. Only a hint; it
/// does nothing where transparent huge pages are off.
/// Linux 6.1's synchronous collapse into huge pages (not in every libc crate release yet).
#[cfg(target_os = "linux")]
const MADV_COLLAPSE: libc::c_int = 25;

#[cfg(target_os = "linux")]
#[expect(
    unsafe_code,
    reason = "madvise on memory this table owns; a hint with no effect on its contents"
)]
fn advise_huge_pages<T>(table: &mut [T]) {
    const PAGE: usize = 4096;
    let bytes = std::mem::size_of_val(table);
    if bytes < (4 << 20) {
        return;
    }
    let start = table.as_mut_ptr() as usize;
    let aligned = start.next_multiple_of(PAGE);
    let len = (bytes - (aligned - start)) / PAGE * PAGE;
    // SAFETY: [aligned, aligned + len) lies inside `table`, which is live and owned here;
    // MADV_HUGEPAGE changes how the kernel backs the pages, never what they hold.
    unsafe {
        libc::madvise(aligned as *mut libc::c_void, len, libc::MADV_HUGEPAGE);
        libc::madvise(aligned as *mut libc::c_void, len, MADV_COLLAPSE);
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages<T>(_table: &mut [T]) {}

#[inline]
fn home(key: u64, slots: u64) -> usize {
    ((u128::from(key) * u128::from(slots)) >> 64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn empty_table_finds_nothing() {
        let t: HashIndex<u16> = HashIndex::default();
        assert_eq!(t.get(42), None);
        assert!(t.is_empty());
    }

    #[test]
    fn duplicates_are_merged() {
        let t = HashIndex::build(vec![(7, 1u16), (9, 2), (7, 4)], |a, b| *a |= b);
        assert_eq!(t.get(7), Some(5));
        assert_eq!(t.get(9), Some(2));
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn crowded_keys_at_the_end_still_found() {
        let keys: Vec<(u64, u32)> = (0..100).map(|i| (u64::MAX - i, i as u32)).collect();
        let t = HashIndex::build(keys, |_, _| {});
        for i in 0..100u64 {
            assert_eq!(t.get(u64::MAX - i), Some(i as u32));
        }
        assert_eq!(t.get(u64::MAX - 100), None);
    }

    proptest! {
        #[test]
        fn finds_exactly_what_was_inserted(keys in prop::collection::hash_set(1u64.., 0..2000), probes in prop::collection::vec(1u64.., 0..200)) {
            let pairs: Vec<(u64, u64)> = keys.iter().map(|&k| (k, k ^ 0x55)).collect();
            let t = HashIndex::build(pairs, |_, _| {});
            for &k in &keys {
                prop_assert_eq!(t.get(k), Some(k ^ 0x55));
            }
            for p in &probes {
                prop_assert_eq!(t.get(*p), keys.contains(p).then_some(p ^ 0x55));
            }
            let mut seen = Vec::new();
            t.get_each(&probes[..probes.len().min(16)], |_, v| seen.push(v));
            let want: Vec<u64> = probes.iter().take(16).filter(|p| keys.contains(p)).map(|p| p ^ 0x55).collect();
            prop_assert_eq!(seen, want);
        }
    }
}
