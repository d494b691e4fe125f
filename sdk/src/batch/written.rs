//! The values a batch's writes gave views, kept in the guest: the host
//! would return exactly these from `batch.current`, so a view is asked of
//! the host once per batch. Keyed by tenant and view id.
//!
//! A small open-addressing table rather than a `BTreeMap` or `HashMap`:
//! keys are told apart by a 64-bit hash first and compared word by word
//! after, never with `memcmp`, which wasi-libc implements as a byte loop,
//! and a lookup copies nothing (a copy of unknown length is a
//! `memory.copy`, a call out of the instance). A `BTreeMap` here spent more
//! instructions in `memcmp` than the host call it saved. The hash is fixed
//! (no per-instance seed), though no order of the table ever reaches a
//! view.

/// Most bytes of values and keys kept; past it the table starts afresh and
/// views are read from the host again.
const KEPT_BYTES: usize = 1 << 20;

/// Slots a table starts with (a power of two).
const FIRST_SLOTS: usize = 16;

#[derive(Default)]
pub(super) struct Written {
    /// A power of two long once anything is kept; at most half full.
    slots: Vec<Option<Slot>>,
    used: usize,
    /// Bytes of the keys and of the values kept now.
    bytes: usize,
}

/// Where [`Written::lend`] found a view: its slot.
pub(super) struct Lent(usize);

struct Slot {
    /// Of the tenant and the view id ([`key_hash`]).
    hash: u64,
    tenant: String,
    id: String,
    /// Lent out to the event that reads it, which writes the view next.
    lent: bool,
    value: Option<Vec<u8>>,
}

impl Written {
    /// Keeps what the write of an event of `tenant` left in view `id`.
    pub(super) fn keep(&mut self, tenant: &str, id: &str, value: Option<Vec<u8>>) {
        let size = value.as_ref().map_or(0, Vec::len);
        if self.bytes + tenant.len() + id.len() + size > KEPT_BYTES {
            self.forget();
        }
        if (self.used + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let hash = key_hash(tenant, id);
        let at = self.find(hash, tenant, id);
        match &mut self.slots[at] {
            Some(slot) => {
                self.bytes = self.bytes - slot.value.as_ref().map_or(0, Vec::len) + size;
                slot.lent = false;
                slot.value = value;
            }
            empty => {
                self.bytes += tenant.len() + id.len() + size;
                self.used += 1;
                *empty = Some(Slot { hash, tenant: tenant.to_string(), id: id.to_string(), lent: false, value });
            }
        }
    }

    /// The value kept for view `id` of `tenant`, handed over to the event
    /// that reads it, and where to [`put_back`](Self::put_back) the value
    /// that event writes; `None` when the view must be read from the host.
    pub(super) fn lend(&mut self, tenant: &str, id: &str) -> Option<(Option<Vec<u8>>, Lent)> {
        if self.used == 0 {
            return None;
        }
        let at = self.find(key_hash(tenant, id), tenant, id);
        let slot = self.slots[at].as_mut().filter(|slot| !slot.lent)?;
        slot.lent = true;
        let value = slot.value.take();
        self.bytes -= value.as_ref().map_or(0, Vec::len);
        Some((value, Lent(at)))
    }

    /// Keeps `value` as the view lent last (`lent`): the write of the
    /// event that read it, with nothing kept in between.
    pub(super) fn put_back(&mut self, lent: Lent, value: Option<Vec<u8>>) {
        if let Some(slot) = self.slots.get_mut(lent.0).and_then(Option::as_mut).filter(|slot| slot.lent) {
            self.bytes += value.as_ref().map_or(0, Vec::len);
            slot.lent = false;
            slot.value = value;
        }
        if self.bytes > KEPT_BYTES {
            self.forget();
        }
    }

    /// Drops everything kept.
    fn forget(&mut self) {
        self.slots.clear();
        self.used = 0;
        self.bytes = 0;
    }

    /// The slot holding view `id` of `tenant` (hashed to `hash`), or the
    /// empty slot where it would go. The table is never full.
    fn find(&self, hash: u64, tenant: &str, id: &str) -> usize {
        let mask = self.slots.len() - 1;
        let mut at = home(hash) & mask;
        loop {
            match &self.slots[at] {
                Some(slot) if slot.hash != hash || !same(&slot.tenant, tenant) || !same(&slot.id, id) => {
                    at = (at + 1) & mask;
                }
                _ => return at,
            }
        }
    }

    /// Doubles the slots (or makes the first ones) and places the kept
    /// values again.
    fn grow(&mut self) {
        let slots = (self.slots.len() * 2).max(FIRST_SLOTS);
        let old = std::mem::replace(&mut self.slots, (0..slots).map(|_| None).collect());
        for slot in old.into_iter().flatten() {
            let mut at = home(slot.hash) & (slots - 1);
            while self.slots[at].is_some() {
                at = (at + 1) & (slots - 1);
            }
            self.slots[at] = Some(slot);
        }
    }
}

/// Where a key hashed to `hash` is looked for first (masked to the table).
fn home(hash: u64) -> usize {
    hash as usize
}

/// `bytes` as little-endian words: the whole words, then the bytes left
/// over as one more ([`rest_word`]). Two strings of one length are equal
/// exactly when their words are. Only loads: gathering the rest in a buffer
/// would be a `memory.copy`.
fn words(bytes: &[u8]) -> impl Iterator<Item = u64> + '_ {
    bytes.chunks_exact(8).map(word).chain(rest_word(bytes))
}

/// The bytes of `bytes` after its whole words as one word, read with loads
/// that may overlap the whole words; none if there are no such bytes.
fn rest_word(bytes: &[u8]) -> Option<u64> {
    let rest = bytes.len() % 8;
    match (rest, bytes.len().checked_sub(8)) {
        (0, _) => None,
        (_, Some(from)) => Some(word(&bytes[from..])),
        (4.., None) => Some(u64::from(half(&bytes[..4])) | u64::from(half(&bytes[rest - 4..])) << 32),
        (_, None) => Some(bytes.iter().fold(0, |word, &byte| (word << 8) | u64::from(byte))),
    }
}

/// Eight bytes as a little-endian word.
fn word(bytes: &[u8]) -> u64 {
    <[u8; 8]>::try_from(bytes).map_or(0, u64::from_le_bytes)
}

/// Four bytes as a little-endian half word.
fn half(bytes: &[u8]) -> u32 {
    <[u8; 4]>::try_from(bytes).map_or(0, u32::from_le_bytes)
}

/// A multiply-rotate hash (FxHash's) over the words of `bytes`, from `seed`.
fn hash(seed: u64, bytes: &str) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let bytes = bytes.as_bytes();
    words(bytes).fold(seed ^ bytes.len() as u64, |hash, word| (hash.rotate_left(5) ^ word).wrapping_mul(K))
}

/// The hash of view `id` of `tenant`, its bits mixed (murmur3's
/// finalizer): a multiply carries a word's bits only upwards, so without
/// it ids that differ in their last characters (`customer-0001`,
/// `customer-0002`) would share the low bits the table indexes by.
fn key_hash(tenant: &str, id: &str) -> u64 {
    let mut hash = hash(hash(0, tenant), id);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    hash ^ (hash >> 33)
}

/// Whether `a` and `b` hold the same bytes, compared a word at a time.
fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len()
        && a.chunks_exact(8).zip(b.chunks_exact(8)).all(|(a, b)| word(a) == word(b))
        && rest_word(a) == rest_word(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(lent: Option<(Option<Vec<u8>>, Lent)>) -> Option<Option<Vec<u8>>> {
        lent.map(|(value, _)| value)
    }

    #[test]
    fn values_are_lent_per_tenant_once_and_kept_again() {
        let mut written = Written::default();
        assert!(written.lend("acme", "v").is_none(), "nothing kept: ask the host");
        written.keep("acme", "v", Some(b"1".to_vec()));
        written.keep("globex", "v", None);
        assert!(written.lend("initech", "v").is_none(), "another tenant's view");
        assert!(written.lend("acme", "x").is_none(), "another view");
        assert_eq!(value(written.lend("globex", "v")), Some(None), "deleted in this batch");
        let (kept, lent) = written.lend("acme", "v").unwrap();
        assert_eq!(kept, Some(b"1".to_vec()));
        assert!(written.lend("acme", "v").is_none(), "lent already: ask the host");
        written.put_back(lent, Some(b"22".to_vec()));
        assert_eq!(written.bytes, (4 + 1) + (6 + 1) + 2, "keys once, values as kept now");
        assert_eq!(value(written.lend("acme", "v")), Some(Some(b"22".to_vec())));
        written.keep("acme", "v", Some(b"333".to_vec()));
        assert_eq!(value(written.lend("acme", "v")), Some(Some(b"333".to_vec())), "kept over a lent value");
    }

    #[test]
    fn a_tenant_and_id_never_run_into_another_pair() {
        let mut written = Written::default();
        written.keep("ab", "c", Some(b"ab/c".to_vec()));
        written.keep("a", "bc", Some(b"a/bc".to_vec()));
        assert_eq!(value(written.lend("a", "bc")), Some(Some(b"a/bc".to_vec())));
        assert_eq!(value(written.lend("ab", "c")), Some(Some(b"ab/c".to_vec())));
    }

    #[test]
    fn the_table_grows_and_finds_every_view_again() {
        let mut written = Written::default();
        for i in 0..1000 {
            written.keep(["acme", "globex"][i % 2], &format!("view-{i}-with-a-longer-id"), Some(i.to_string().into()));
        }
        assert_eq!(written.used, 1000);
        assert!(written.slots.len() >= 2000 && written.slots.len().is_power_of_two());
        for i in (0..1000).rev() {
            let kept = value(written.lend(["acme", "globex"][i % 2], &format!("view-{i}-with-a-longer-id")));
            assert_eq!(kept, Some(Some(i.to_string().into_bytes())), "view {i}");
        }
        assert!(written.lend("globex", "view-0-with-a-longer-id").is_none(), "view 0 is acme's");
    }

    #[test]
    fn ids_that_differ_in_their_last_characters_spread_over_the_slots() {
        let mut written = Written::default();
        for i in 0..1000 {
            written.keep("acme", &format!("customer-{i:04}"), None);
        }
        let mask = written.slots.len() - 1;
        let longest = (0..1000)
            .map(|i| {
                let id = format!("customer-{i:04}");
                let hash = key_hash("acme", &id);
                (written.find(hash, "acme", &id) + written.slots.len() - (home(hash) & mask)) & mask
            })
            .max();
        assert!(longest.is_some_and(|probes| probes < 32), "longest probe run: {longest:?}");
    }

    #[test]
    fn past_the_bound_everything_is_forgotten() {
        let mut written = Written::default();
        written.keep("acme", "small", Some(b"1".to_vec()));
        written.keep("acme", "big", Some(vec![0; KEPT_BYTES - 100]));
        written.keep("acme", "next", Some(vec![0; 200]));
        assert!(written.lend("acme", "small").is_none(), "forgotten: read from the host again");
        assert!(written.lend("acme", "big").is_none());
        let (kept, lent) = written.lend("acme", "next").unwrap();
        assert_eq!(kept, Some(vec![0; 200]));
        written.put_back(lent, Some(vec![0; KEPT_BYTES]));
        assert!(written.lend("acme", "next").is_none(), "a value past the bound is not kept");
    }

    #[test]
    fn words_compare_and_hash_every_byte() {
        assert!(same("orders.created", "orders.created"));
        assert!(!same("orders.created", "orders.createe"));
        assert!(!same("orders.created", "orders.createdx"));
        assert!(!same("abc", "abc\0"), "padding is not a byte");
        assert_eq!(words(b"abcdefghij").collect::<Vec<_>>(), [word(b"abcdefgh"), word(b"cdefghij")]);
        assert_eq!(words(b"abcde").collect::<Vec<_>>(), [u64::from(half(b"abcd")) | u64::from(half(b"bcde")) << 32]);
        assert_eq!(words(b"abc").collect::<Vec<_>>(), [0x61_62_63]);
        for len in 0..20 {
            let a: String = ('a'..='z').take(len).collect();
            for at in 0..len {
                let mut b = a.clone().into_bytes();
                b[at] = b'!';
                let b = String::from_utf8(b).unwrap();
                assert!(!same(&a, &b), "{a:?} and {b:?} differ at {at}");
                assert_ne!(hash(0, &a), hash(0, &b));
            }
            assert!(same(&a, &a.clone()));
        }
        assert_ne!(hash(0, "abc"), hash(0, "abc\0"));
        assert_ne!(key_hash("ab", "c"), key_hash("a", "bc"));
    }
}
