//! JSON, the payload convention: encode and decode with errors a guest can
//! return as a [`Failure`](crate::Failure).

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Failure;

/// Serialises `value` to JSON bytes.
pub fn to_bytes<T: Serialize>(value: &T) -> Result<Vec<u8>, Failure> {
    serde_json::to_vec(value).map_err(|e| Failure::new("encode", e.to_string()))
}

/// Parses JSON bytes; a parse error becomes a `bad-payload` failure.
pub fn from_bytes<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Failure> {
    serde_json::from_slice(bytes).map_err(|e| Failure::new("bad-payload", e.to_string()))
}
