//! The DHT state saved across restarts: our node id and the nodes of our
//! routing table, so a restarted pollen rejoins the DHT without a
//! bootstrap node and keeps its place in the id space.
//!
//! Layer 0: pure (the session writes the bytes atomically, like the resume
//! file). The file is a bencoded dictionary: `id` (20 bytes) and `nodes`
//! (compact node infos, 26 bytes each, at most [`MAX_SAVED_NODES`]). It is
//! read back as untrusted input: a damaged file is an error, and the
//! session then starts with a fresh id.
//!
//! STATUS: skeleton; the codec is being written (issue 15).

use std::fmt;

use super::id::NodeId;
use super::krpc::CompactNode;

/// Most nodes saved (and read back): a full table's good nodes are far
/// fewer than this on any real network; the file stays under 6 KiB.
pub const MAX_SAVED_NODES: usize = 200;

/// What is saved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedState {
    /// Our node id.
    pub id: NodeId,
    /// Nodes to ping at the next start.
    pub nodes: Vec<CompactNode>,
}

/// Why a saved state file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateFileError {
    /// Not a bencoded dictionary with an `id` of 20 bytes.
    Malformed(&'static str),
}

impl fmt::Display for StateFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateFileError::Malformed(what) => write!(f, "damaged DHT state: {what}"),
        }
    }
}

impl std::error::Error for StateFileError {}

/// The bytes of `state`.
pub fn encode(state: &SavedState) -> Vec<u8> {
    let _ = state;
    Vec::new() // SKELETON
}

/// Reads a saved state back.
pub fn decode(bytes: &[u8]) -> Result<SavedState, StateFileError> {
    let _ = bytes;
    Err(StateFileError::Malformed("skeleton"))
}
