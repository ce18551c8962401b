//! Node ids and the XOR metric of Kademlia (BEP 5).
//!
//! Layer 0: pure. A node id and an info-hash are both 160-bit numbers; the
//! distance between two of them is their XOR, compared as a big-endian
//! number. The routing table files a node under the length of the prefix
//! its id shares with ours ([`NodeId::common_prefix_len`]).

use std::fmt;

use crate::rng::Rng;

/// Bytes in a node id (and an info-hash): 160 bits.
pub const ID_LEN: usize = 20;

/// Bits in a node id: the routing table has at most this many buckets.
pub const ID_BITS: usize = ID_LEN * 8;

/// A 160-bit node id, or an info-hash used as a lookup target.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct NodeId(pub [u8; ID_LEN]);

impl NodeId {
    /// A random id drawn from `rng`.
    pub fn random(rng: &mut Rng) -> NodeId {
        let mut bytes = [0u8; ID_LEN];
        for chunk in bytes.chunks_mut(8) {
            let word = rng.next_u64().to_be_bytes();
            chunk.copy_from_slice(word.get(..chunk.len()).unwrap_or_default());
        }
        NodeId(bytes)
    }

    /// The id in `bytes`, when it is exactly 20 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Option<NodeId> {
        bytes.try_into().ok().map(NodeId)
    }

    /// The XOR distance to `other`; compare distances with `Ord`.
    pub fn distance(&self, other: &NodeId) -> NodeId {
        let mut out = [0u8; ID_LEN];
        for ((o, a), b) in out.iter_mut().zip(self.0).zip(other.0) {
            *o = a ^ b;
        }
        NodeId(out)
    }

    /// How many leading bits `self` and `other` share (160 when equal).
    pub fn common_prefix_len(&self, other: &NodeId) -> usize {
        let mut bits = 0;
        for (a, b) in self.0.iter().zip(other.0.iter()) {
            let x = a ^ b;
            if x == 0 {
                bits += 8;
            } else {
                // At most 7: fits any usize.
                return bits + x.leading_zeros() as usize;
            }
        }
        bits
    }

    /// Bit `index` (0 is the most significant bit of the first byte).
    pub fn bit(&self, index: usize) -> bool {
        let byte = self.0.get(index / 8).copied().unwrap_or(0);
        byte & (0x80 >> (index % 8)) != 0
    }

    /// A random id that shares exactly `prefix_len` leading bits with
    /// `self` (so it falls in that bucket of `self`'s routing table): for
    /// refreshing a bucket. With `prefix_len` 160 or more, `self`.
    pub fn random_at_prefix(&self, prefix_len: usize, rng: &mut Rng) -> NodeId {
        if prefix_len >= ID_BITS {
            return *self;
        }
        let mut id = NodeId::random(rng);
        for index in 0..=prefix_len {
            let want = if index == prefix_len {
                !self.bit(index)
            } else {
                self.bit(index)
            };
            id.set_bit(index, want);
        }
        id
    }

    /// Sets bit `index` to `value`.
    fn set_bit(&mut self, index: usize, value: bool) {
        if let Some(byte) = self.0.get_mut(index / 8) {
            let mask = 0x80 >> (index % 8);
            if value {
                *byte |= mask;
            } else {
                *byte &= !mask;
            }
        }
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({self})")
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(first: u8) -> NodeId {
        let mut bytes = [0u8; ID_LEN];
        bytes[0] = first;
        NodeId(bytes)
    }

    #[test]
    fn distance_is_xor_and_orders_as_a_big_endian_number() {
        let a = id(0b1000_0000);
        let b = id(0b0100_0000);
        assert_eq!(a.distance(&a), NodeId::default());
        assert_eq!(a.distance(&b), id(0b1100_0000));
        assert!(id(1).distance(&id(0)) < id(2).distance(&id(0)));
        let mut low = [0u8; ID_LEN];
        low[19] = 0xff;
        assert!(NodeId(low) < id(1), "the first byte weighs most");
    }

    #[test]
    fn common_prefix_len_counts_shared_leading_bits() {
        assert_eq!(id(0).common_prefix_len(&id(0)), ID_BITS);
        assert_eq!(id(0b1000_0000).common_prefix_len(&id(0)), 0);
        assert_eq!(id(0b0000_0001).common_prefix_len(&id(0)), 7);
        let mut far = [0u8; ID_LEN];
        far[19] = 1;
        assert_eq!(NodeId(far).common_prefix_len(&id(0)), 159);
    }

    #[test]
    fn random_at_prefix_lands_in_that_bucket() {
        let mut rng = Rng::new(7);
        let me = NodeId::random(&mut rng);
        for prefix in [0, 1, 7, 8, 9, 100, 159] {
            for _ in 0..20 {
                let other = me.random_at_prefix(prefix, &mut rng);
                assert_eq!(me.common_prefix_len(&other), prefix, "prefix {prefix}");
            }
        }
        assert_eq!(me.random_at_prefix(ID_BITS, &mut rng), me);
    }

    #[test]
    fn from_slice_takes_exactly_twenty_bytes() {
        assert_eq!(NodeId::from_slice(&[1; 20]), Some(NodeId([1; 20])));
        assert_eq!(NodeId::from_slice(&[1; 19]), None);
        assert_eq!(NodeId::from_slice(&[1; 21]), None);
    }
}
