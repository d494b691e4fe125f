//! Cart errors as they cross between nodes: the owner's gRPC status carries
//! the error itself in binary metadata, so a call forwarded to the owner
//! fails exactly as it would have locally (a plugin's refusal stays a
//! refusal with its code, not a generic remote failure). Errors without a
//! wire form (a guest trap, a storage failure) travel as status and message.

use serde::{Deserialize, Serialize};
use tonic::Status;
use tonic::metadata::MetadataValue;

use crate::carts::CartError;
use corral_schemas::Violation;

/// The binary metadata entry holding the error.
const ERROR_METADATA: &str = "x-corral-cart-error-bin";

/// The errors that keep their shape across a forward.
#[derive(Serialize, Deserialize)]
#[serde(tag = "error", rename_all = "snake_case")]
enum Wire {
    UnknownPlugin { plugin: String },
    UnknownKind { plugin: String, kind: String, declared: Vec<String> },
    Invalid { message: String },
    Rejected { plugin: String, code: String, message: String },
    Diverged { plugin: String, cart: String, version: u64, detail: String },
    Overloaded { plugin: String, cart: String, max: usize },
    Busy { plugin: String, cart: String, detail: String },
    Mismatch { plugin: String, violation: Box<Violation> },
    InvalidPayload { plugin: String, kind: String, violation: Box<Violation> },
}

/// Adds `error` to `status` when it has a wire form.
pub(crate) fn attach(status: &mut Status, error: &CartError) {
    let wire = match error.clone() {
        CartError::UnknownPlugin { plugin } => Wire::UnknownPlugin { plugin },
        CartError::UnknownKind { plugin, kind, declared } => Wire::UnknownKind { plugin, kind, declared },
        CartError::Invalid(message) => Wire::Invalid { message },
        CartError::Rejected { plugin, code, message } => Wire::Rejected { plugin, code, message },
        CartError::Diverged { plugin, cart, version, detail } => Wire::Diverged { plugin, cart, version, detail },
        CartError::Overloaded { plugin, cart, max } => Wire::Overloaded { plugin, cart, max },
        CartError::Busy { plugin, cart, detail } => Wire::Busy { plugin, cart, detail },
        CartError::Mismatch { plugin, violation } => Wire::Mismatch { plugin, violation },
        CartError::InvalidPayload { plugin, kind, violation } => Wire::InvalidPayload { plugin, kind, violation },
        _ => return,
    };
    if let Ok(json) = serde_json::to_vec(&wire) {
        status.metadata_mut().insert_bin(ERROR_METADATA, MetadataValue::from_bytes(&json));
    }
}

/// The error a status carries, if it carries one.
pub(crate) fn detach(status: &Status) -> Option<CartError> {
    let bytes = status.metadata().get_bin(ERROR_METADATA)?.to_bytes().ok()?;
    Some(match serde_json::from_slice::<Wire>(&bytes).ok()? {
        Wire::UnknownPlugin { plugin } => CartError::UnknownPlugin { plugin },
        Wire::UnknownKind { plugin, kind, declared } => CartError::UnknownKind { plugin, kind, declared },
        Wire::Invalid { message } => CartError::Invalid(message),
        Wire::Rejected { plugin, code, message } => CartError::Rejected { plugin, code, message },
        Wire::Diverged { plugin, cart, version, detail } => CartError::Diverged { plugin, cart, version, detail },
        Wire::Overloaded { plugin, cart, max } => CartError::Overloaded { plugin, cart, max },
        Wire::Busy { plugin, cart, detail } => CartError::Busy { plugin, cart, detail },
        Wire::Mismatch { plugin, violation } => CartError::Mismatch { plugin, violation },
        Wire::InvalidPayload { plugin, kind, violation } => CartError::InvalidPayload { plugin, kind, violation },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_crosses_as_a_refusal() {
        let rejected = CartError::Rejected { plugin: "cart".into(), code: "no-delivery".into(), message: "é".into() };
        let mut status = Status::failed_precondition(rejected.to_string());
        attach(&mut status, &rejected);
        let back = detach(&status).unwrap();
        assert!(
            matches!(back, CartError::Rejected { ref code, ref message, .. } if code == "no-delivery" && message == "é")
        );
        let violation = Violation {
            schema: "cart/mutations/add".into(),
            path: "/qty".into(),
            rule: "minimum".into(),
            message: "0 is less than the minimum of 1".into(),
        };
        let refused =
            CartError::InvalidPayload { plugin: "cart".into(), kind: "add".into(), violation: Box::new(violation) };
        let mut status = Status::invalid_argument(refused.to_string());
        attach(&mut status, &refused);
        let back = detach(&status).unwrap();
        assert!(
            matches!(back, CartError::InvalidPayload { ref violation, .. } if violation.path == "/qty"),
            "{back:?}"
        );
        let mut plain = Status::unavailable("storage");
        attach(&mut plain, &CartError::Storage("disk".into()));
        assert!(detach(&plain).is_none());
    }
}
