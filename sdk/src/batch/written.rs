//! The values a batch's writes gave views, kept in the guest until they are
//! flushed to the host: a view is asked of the host once per batch, and the
//! host hears of each view once, with its last value. Keyed by tenant and
//! view id.
//!
//! A small open-addressing table rather than a `BTreeMap` or `HashMap`:
//! keys are told apart by a 64-bit hash first and compared word by word
//! after, never with `memcmp`, which wasi-libc implements as a byte loop,
//! and a lookup copies nothing (a copy of unknown length is a
//! `memory.copy`, a call out of the instance). A `BTreeMap` here spent more
//! instructions in `memcmp` than the host call it saved. The hash is fixed
//! (no per-instance seed), though no order of the table ever reaches a
//! view.

use super::Write;

/// Most bytes of values and keys kept; past it the batch flushes them.
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
    /// The index in the batch of the event that wrote the view last.
    event: u32,
    tenant: String,
    id: String,
    /// Lent out to the event that reads it, which writes the view next.
    lent: bool,
    value: Option<Vec<u8>>,
}

impl Written {
    /// Keeps what the write of `event`, of `tenant`, left in view `id`.
    pub(super) fn keep(&mut self, tenant: &str, id: &str, value: Option<Vec<u8>>, event: u32) {
        let size = value.as_ref().map_or(0, Vec::len);
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
                slot.event = event;
            }
            empty => {
                self.bytes += tenant.len() + id.len() + size;
                self.used += 1;
                let (tenant, id) = (tenant.to_string(), id.to_string());
                *empty = Some(Slot { hash, event, tenant, id, lent: false, value });
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

    /// Keeps `value` as the view lent last (`lent`): the write of `event`,
    /// which read it, with nothing kept in between.
    pub(super) fn put_back(&mut self, lent: Lent, value: Option<Vec<u8>>, event: u32) {
        if let Some(slot) = self.slots.get_mut(lent.0).and_then(Option::as_mut).filter(|slot| slot.lent) {
            self.bytes += value.as_ref().map_or(0, Vec::len);
            slot.lent = false;
            slot.value = value;
            slot.event = event;
        }
    }

    /// Whether what is kept has grown past its bound: time to flush.
    pub(super) fn is_full(&self) -> bool {
        self.bytes > KEPT_BYTES
    }

    /// Every view kept, as its last write, leaving none behind. Only
    /// between events: a view lent to an event has no value to give until
    /// the event puts one back (a batch whose event failed holding one
    /// flushes nothing and leaves those events to the host).
    pub(super) fn drain(&mut self) -> Vec<Write> {
        let writes = self
            .slots
            .iter_mut()
            .filter_map(Option::take)
            .map(|Slot { event, id, value, .. }| (event, id, value))
            .collect();
        self.used = 0;
        self.bytes = 0;
        writes
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
#[inline]
fn home(hash: u64) -> usize {
    hash as usize
}

/// `bytes` as little-endian words, each whole word, then the bytes left
/// over as one more ([`last_word`]), passed to `each` in turn until it
/// says stop; whether it never did. Two strings of one length are equal
/// exactly when their words are. Only loads, in a plain loop: gathering the
/// rest in a buffer would be a `memory.copy`, and iterator adapters cost
/// more than the loads here.
#[inline]
fn each_word(bytes: &[u8], mut each: impl FnMut(u64) -> bool) -> bool {
    let mut rest = bytes;
    while let Some((head, tail)) = rest.split_first_chunk::<8>() {
        if !each(u64::from_le_bytes(*head)) {
            return false;
        }
        rest = tail;
    }
    rest.is_empty() || each(last_word(bytes))
}

/// The last bytes of `bytes` (those after its whole words, and when there
/// are whole words the ones before, up to eight in all) as one word, read
/// with loads that may overlap.
#[inline]
fn last_word(bytes: &[u8]) -> u64 {
    let half = |bytes: Option<&[u8; 4]>| u64::from(bytes.map_or(0, |half| u32::from_le_bytes(*half)));
    match (bytes.last_chunk::<8>(), bytes.len()) {
        (Some(last), _) => u64::from_le_bytes(*last),
        (None, 4..) => half(bytes.first_chunk()) | half(bytes.last_chunk()) << 32,
        (None, _) => bytes.iter().fold(0, |word, &byte| (word << 8) | u64::from(byte)),
    }
}

/// A multiply-rotate hash (FxHash's) over the words of `bytes`, from `seed`.
#[inline]
fn hash(seed: u64, bytes: &str) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let bytes = bytes.as_bytes();
    let mut hash = seed ^ bytes.len() as u64;
    each_word(bytes, |word| {
        hash = (hash.rotate_left(5) ^ word).wrapping_mul(K);
        true
    });
    hash
}

/// The hash of view `id` of `tenant`, its bits mixed (murmur3's
/// finalizer): a multiply carries a word's bits only upwards, so without
/// it ids that differ in their last characters (`customer-0001`,
/// `customer-0002`) would share the low bits the table indexes by.
#[inline]
fn key_hash(tenant: &str, id: &str) -> u64 {
    let mut hash = hash(hash(0, tenant), id);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    hash ^ (hash >> 33)
}

/// Whether `a` and `b` hold the same bytes, compared a word at a time.
#[inline]
fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut other = b;
    each_word(a, |word| match other.split_first_chunk::<8>() {
        Some((head, tail)) => {
            other = tail;
            word == u64::from_le_bytes(*head)
        }
        None => word == last_word(b),
    })
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
        written.keep("acme", "v", Some(b"1".to_vec()), 0);
        written.keep("globex", "v", None, 0);
        assert!(written.lend("initech", "v").is_none(), "another tenant's view");
        assert!(written.lend("acme", "x").is_none(), "another view");
        assert_eq!(value(written.lend("globex", "v")), Some(None), "deleted in this batch");
        let (kept, lent) = written.lend("acme", "v").unwrap();
        assert_eq!(kept, Some(b"1".to_vec()));
        assert!(written.lend("acme", "v").is_none(), "lent already: ask the host");
        written.put_back(lent, Some(b"22".to_vec()), 1);
        assert_eq!(written.bytes, (4 + 1) + (6 + 1) + 2, "keys once, values as kept now");
        assert_eq!(value(written.lend("acme", "v")), Some(Some(b"22".to_vec())));
        written.keep("acme", "v", Some(b"333".to_vec()), 0);
        assert_eq!(value(written.lend("acme", "v")), Some(Some(b"333".to_vec())), "kept over a lent value");
    }

    #[test]
    fn a_tenant_and_id_never_run_into_another_pair() {
        let mut written = Written::default();
        written.keep("ab", "c", Some(b"ab/c".to_vec()), 0);
        written.keep("a", "bc", Some(b"a/bc".to_vec()), 0);
        assert_eq!(value(written.lend("a", "bc")), Some(Some(b"a/bc".to_vec())));
        assert_eq!(value(written.lend("ab", "c")), Some(Some(b"ab/c".to_vec())));
    }

    #[test]
    fn the_table_grows_and_finds_every_view_again() {
        let mut written = Written::default();
        for i in 0..1000 {
            written.keep(
                ["acme", "globex"][i % 2],
                &format!("view-{i}-with-a-longer-id"),
                Some(i.to_string().into()),
                0,
            );
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
            written.keep("acme", &format!("customer-{i:04}"), None, 0);
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
    fn a_drain_gives_each_views_last_write_once() {
        let mut written = Written::default();
        written.keep("acme", "small", Some(b"1".to_vec()), 0);
        written.keep("globex", "small", None, 1);
        let (_, lent) = written.lend("acme", "small").unwrap();
        written.put_back(lent, Some(b"2".to_vec()), 2);
        assert!(!written.is_full());
        written.keep("acme", "big", Some(vec![0; KEPT_BYTES]), 3);
        assert!(written.is_full(), "time to flush");
        let mut writes = written.drain();
        writes.sort();
        assert_eq!(
            writes,
            [
                (1, "small".into(), None),
                (2, "small".into(), Some(b"2".to_vec())),
                (3, "big".into(), Some(vec![0; KEPT_BYTES]))
            ]
        );
        assert!(!written.is_full() && written.drain().is_empty(), "nothing left");
        assert!(written.lend("acme", "small").is_none(), "flushed: read from the host");
        written.keep("acme", "small", Some(b"3".to_vec()), 4);
        assert_eq!(value(written.lend("acme", "small")), Some(Some(b"3".to_vec())), "the table is used again");
    }

    fn words(bytes: &[u8]) -> Vec<u64> {
        let mut words = Vec::new();
        each_word(bytes, |word| {
            words.push(word);
            true
        });
        words
    }

    #[test]
    fn words_compare_and_hash_every_byte() {
        assert!(same("orders.created", "orders.created"));
        assert!(!same("orders.created", "orders.createe"));
        assert!(!same("orders.created", "orders.createdx"));
        assert!(!same("abc", "abc\0"), "padding is not a byte");
        let word = |bytes: &[u8; 8]| u64::from_le_bytes(*bytes);
        let half = |bytes: &[u8; 4]| u64::from(u32::from_le_bytes(*bytes));
        assert_eq!(words(b"abcdefghij"), [word(b"abcdefgh"), word(b"cdefghij")]);
        assert_eq!(words(b"abcdefgh"), [word(b"abcdefgh")]);
        assert_eq!(words(b"abcde"), [half(b"abcd") | half(b"bcde") << 32]);
        assert_eq!(words(b"abc"), [0x61_62_63]);
        assert!(words(b"").is_empty());
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
