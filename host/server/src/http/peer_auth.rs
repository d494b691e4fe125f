//! Telling a peer's gRPC call from anyone else's: both the cluster's
//! control plane and forwarded cart calls arrive on the public listener,
//! so a node signs every call it makes to a peer with the cluster's peer
//! secret ([`PeerKey`], from `corral_cluster::Cluster::peer_secret`), and
//! a node serves a control-plane call, or takes a cart call as forwarded,
//! only with a valid signature.
//!
//! The signature is the `x-corral-peer` metadata `NODE MS MAC`: the
//! calling node, the time it signed (Unix ms), and the BLAKE3 keyed hash
//! of both under the secret. It is checked in constant time and must be
//! less than [`MAX_SKEW`] old or ahead, so the secret never travels and a
//! captured signature is worth little for long. (It signs who calls and
//! when, not the message: put the public listener behind TLS where the
//! network between nodes is not trusted.)

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tonic::Status;
use tonic::metadata::{AsciiMetadataValue, MetadataMap};

/// The metadata carrying a peer's signature.
pub const PEER_AUTH: &str = "x-corral-peer";

/// How far a signature's time may be from this node's clock.
pub const MAX_SKEW: Duration = Duration::from_secs(120);

/// What a node signs its calls to peers with, and checks theirs against.
pub struct PeerKey {
    secret: [u8; 32],
    node: String,
}

/// What a signature covers: the node and the time.
fn mac(secret: &[u8; 32], node: &str, at_ms: u64) -> blake3::Hash {
    blake3::keyed_hash(secret, format!("corral-peer-v1\n{node}\n{at_ms}").as_bytes())
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

impl PeerKey {
    /// Node `node`'s key, from the cluster's peer secret.
    pub fn new(secret: [u8; 32], node: &str) -> PeerKey {
        PeerKey { secret, node: node.to_string() }
    }

    /// A signature for a call this node makes now.
    pub fn sign(&self) -> AsciiMetadataValue {
        let at_ms = now_ms();
        let signed = format!("{} {at_ms} {}", self.node, mac(&self.secret, &self.node, at_ms).to_hex());
        // Node ids are validated printable ASCII; a hex MAC and digits too.
        signed.parse().unwrap_or_else(|_| AsciiMetadataValue::from_static("invalid"))
    }

    /// Adds this node's signature to a call's metadata.
    pub fn attach(&self, metadata: &mut MetadataMap) {
        metadata.insert(PEER_AUTH, self.sign());
    }

    /// The calling peer's node id, if `metadata` carries a valid signature;
    /// otherwise `UNAUTHENTICATED`, saying why.
    pub fn verify(&self, metadata: &MetadataMap) -> Result<String, Status> {
        let Some(value) = metadata.get(PEER_AUTH) else {
            return Err(Status::unauthenticated(format!(
                "this call is for the cluster's nodes only: it needs their {PEER_AUTH} signature"
            )));
        };
        let invalid = |why: &str| Status::unauthenticated(format!("invalid {PEER_AUTH} signature: {why}"));
        let text = value.to_str().map_err(|_| invalid("not ASCII"))?;
        let mut parts = text.split(' ');
        let (Some(node), Some(at), Some(hex), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(invalid("expected `NODE MS MAC`"));
        };
        let at_ms: u64 = at.parse().map_err(|_| invalid("the time is not a number"))?;
        let given = blake3::Hash::from_hex(hex).map_err(|_| invalid("the MAC is not 64 hex digits"))?;
        // `blake3::Hash` compares in constant time.
        if given != mac(&self.secret, node, at_ms) {
            return Err(invalid("it was not made with this cluster's secret"));
        }
        if now_ms().abs_diff(at_ms) > MAX_SKEW.as_millis() as u64 {
            return Err(invalid(&format!(
                "signed {} s from this node's clock (at most {} s): check the nodes' clocks",
                now_ms().abs_diff(at_ms) / 1000,
                MAX_SKEW.as_secs()
            )));
        }
        Ok(node.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(value: &str) -> MetadataMap {
        let mut metadata = MetadataMap::new();
        metadata.insert(PEER_AUTH, value.parse().unwrap());
        metadata
    }

    #[test]
    fn a_peer_signature_is_accepted_and_anything_else_is_not() {
        let (ours, theirs) = (PeerKey::new([7; 32], "node-0"), PeerKey::new([7; 32], "node-1"));
        let mut signed = MetadataMap::new();
        theirs.attach(&mut signed);
        assert_eq!(ours.verify(&signed).unwrap(), "node-1");

        let stranger = PeerKey::new([8; 32], "node-1");
        let mut forged = MetadataMap::new();
        stranger.attach(&mut forged);
        assert_eq!(ours.verify(&forged).unwrap_err().code(), tonic::Code::Unauthenticated);
        assert_eq!(ours.verify(&MetadataMap::new()).unwrap_err().code(), tonic::Code::Unauthenticated);

        // Another node's name on a valid MAC, or a changed time, breaks it.
        let text = signed.get(PEER_AUTH).unwrap().to_str().unwrap().to_string();
        let (node, rest) = text.split_once(' ').unwrap();
        assert_eq!(node, "node-1");
        assert!(ours.verify(&metadata(&format!("node-2 {rest}"))).is_err());
        let (at, mac) = rest.split_once(' ').unwrap();
        let later: u64 = at.parse::<u64>().unwrap() + 1;
        assert!(ours.verify(&metadata(&format!("node-1 {later} {mac}"))).is_err());
        for garbage in ["", "node-1", "node-1 12 zz", "node-1 x 00", "a b c d"] {
            assert!(ours.verify(&metadata(garbage)).is_err(), "{garbage:?}");
        }
    }

    #[test]
    fn an_old_signature_is_refused() {
        let key = PeerKey::new([1; 32], "node-0");
        let old = now_ms() - MAX_SKEW.as_millis() as u64 - 5_000;
        let value = format!("node-0 {old} {}", mac(&[1; 32], "node-0", old).to_hex());
        let error = key.verify(&metadata(&value)).unwrap_err();
        assert!(error.message().contains("clock"), "{error:?}");
    }
}
