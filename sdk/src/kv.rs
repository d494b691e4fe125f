//! Key-value storage (route and event-handler worlds). The free functions use
//! the plugin's private bucket; [`Bucket`] reaches a shared one the operator
//! granted.

use crate::bindings::route::corral::plugin::kv as host;
pub use crate::bindings::route::corral::plugin::kv::{Entry, KvError, Page};

/// A named bucket: `Bucket::own()` is the plugin's private one.
#[derive(Debug, Clone, Copy)]
pub struct Bucket<'a>(&'a str);

impl<'a> Bucket<'a> {
    /// The plugin's private bucket.
    pub fn own() -> Self {
        Bucket("")
    }

    /// A shared bucket granted in the plugin's sidecar.
    pub fn shared(name: &'a str) -> Self {
        Bucket(name)
    }

    /// Reads a value.
    pub fn get(self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        host::get(self.0, key)
    }

    /// Writes a value.
    pub fn set(self, key: &str, value: &[u8]) -> Result<(), KvError> {
        host::set(self.0, key, value)
    }

    /// Deletes a key; true if it existed.
    pub fn delete(self, key: &str) -> Result<bool, KvError> {
        host::delete(self.0, key)
    }

    /// One page of the keys starting with `prefix`.
    pub fn list(self, prefix: &str, cursor: Option<&str>, limit: u32) -> Result<Page, KvError> {
        host::list(self.0, prefix, cursor, limit)
    }

    /// Adds `delta` to a counter and returns the new value.
    pub fn increment(self, key: &str, delta: i64) -> Result<i64, KvError> {
        host::increment(self.0, key, delta)
    }

    /// Sets `key` to `new` only if it currently holds `expected`.
    pub fn compare_and_swap(self, key: &str, expected: Option<&[u8]>, new: Option<&[u8]>) -> Result<bool, KvError> {
        host::compare_and_swap(self.0, key, expected, new)
    }
}

/// Reads a value from the private bucket.
pub fn get(key: &str) -> Result<Option<Vec<u8>>, KvError> {
    Bucket::own().get(key)
}

/// Writes a value to the private bucket.
pub fn set(key: &str, value: &[u8]) -> Result<(), KvError> {
    Bucket::own().set(key, value)
}

/// Deletes a key from the private bucket.
pub fn delete(key: &str) -> Result<bool, KvError> {
    Bucket::own().delete(key)
}

/// Adds `delta` to a counter in the private bucket.
pub fn increment(key: &str, delta: i64) -> Result<i64, KvError> {
    Bucket::own().increment(key, delta)
}
