//! A flat, immutable hash table from 64-bit name hashes to small values.
//!
//! Built once from a list of `(hash, value)` pairs and never changed: a new policy builds a
//! new table. The pairs are sorted and laid out in hash order with gaps (a load factor of
//! about 0.85), so every key sits at or just after its home slot and a lookup, hit or miss,
//! reads one or two neighbouring cache lines and stops at the first larger key. Keys are
//! 8 bytes and values are kept in a parallel array, so a table of 2 million names with a
//! `u16` value costs about 12 bytes a name.
//!
//! Keys are hashes, not names: two different names colliding on all 64 bits would share an
//! entry. With 2 million names the chance that any query collides is about 1 in 10^13.

/// The table. `V` is a small `Copy` value (a category-set id, an entry range).
#[derive(Clone, Debug)]
pub struct HashIndex<V> {
    keys: Box<[u64]>,
    vals: Box<[V]>,
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
        let mut keys: Vec<u64> = vec![0; slots as usize + 1];
        let mut vals: Vec<V> = vec![V::default(); slots as usize + 1];
        let mut next_free = 0usize;
        for (key, val) in pairs {
            let pos = home(key, slots).max(next_free);
            if pos >= keys.len() {
                keys.resize(pos + 1, 0);
                vals.resize(pos + 1, V::default());
            }
            keys[pos] = key;
            vals[pos] = val;
            next_free = pos + 1;
        }
        // A trailing empty slot ends every probe.
        keys.push(0);
        vals.push(V::default());
        HashIndex {
            keys: keys.into_boxed_slice(),
            vals: vals.into_boxed_slice(),
            slots,
            len,
        }
    }

    /// The value stored for `key` (a hash from [`crate::host`]).
    #[inline]
    pub fn get(&self, key: u64) -> Option<V> {
        let mut i = home(key, self.slots);
        loop {
            let k = *self.keys.get(i)?;
            if k == key {
                return self.vals.get(i).copied();
            }
            if k == 0 || k > key {
                return None;
            }
            i += 1;
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
        self.keys.len() * 8 + self.vals.len() * std::mem::size_of::<V>()
    }
}

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
            for p in probes {
                prop_assert_eq!(t.get(p), keys.contains(&p).then_some(p ^ 0x55));
            }
        }
    }
}
