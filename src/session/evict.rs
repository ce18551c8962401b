//! Making room at the connection cap: which connection a newcomer may
//! replace.
//!
//! Layer 2 (the session gathers the facts), with the choice itself pure:
//! [`pick_victim`] takes plain values and no clock, so it is tested from
//! tables. Without it, connections that hold a slot and do nothing (a
//! handshake, then keepalives forever) would lock every later peer out for
//! as long as they like: the cap refuses newcomers, and an idle peer that
//! sends keepalives is never timed out.
//!
//! The rule follows what real clients do at their connection limit
//! (libtorrent replaces peers that neither side is interested in before
//! useful ones; Transmission closes peers that exchange nothing for a
//! while, sooner the fuller its peer table): a newcomer is accepted at the
//! cap only if some connection, older than [`EVICT_GRACE`], is useless now:
//!
//! 1. still without a handshake (it never said which torrent it wants);
//! 2. not reading what we send (bytes queued for it have not moved);
//! 3. through the handshake, but neither side is interested in the other
//!    (no payload can flow either way).
//!
//! The first such class wins; within a class the oldest connection goes
//! (it had the longest chance). A useful connection (interested either
//! way, and reading) is never replaced, and neither is an outgoing connect
//! still in progress (it times out by itself). The grace period keeps
//! newcomers from replacing one another before they have had time to say
//! what they want.

use std::time::Duration;

/// How long a connection is safe from replacement: one choke epoch (BEP 3's
/// ten seconds) is ample for a peer to send its handshake, its bitfield and
/// INTERESTED (every client sends them at once), and it means a burst of
/// newcomers cannot churn each other out within one epoch.
pub(super) const EVICT_GRACE: Duration = Duration::from_secs(10);

/// What the session knows about one connection holding a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Occupant {
    /// The connection's slab key.
    pub key: usize,
    /// How long it has been open (for an outgoing one, since it connected).
    pub age: Duration,
    /// Where it is in its life.
    pub stage: OccupantStage,
    /// The peer has stopped reading what we send.
    pub stalled: bool,
    /// The peer is interested in us.
    pub peer_interested: bool,
    /// We are interested in the peer.
    pub am_interested: bool,
}

/// The life stages [`pick_victim`] tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OccupantStage {
    /// Our outgoing connect is still in progress.
    Connecting,
    /// Connected, no handshake from the peer yet.
    Handshaking,
    /// Through the handshake.
    Active,
}

/// Why an occupant may be replaced, most replaceable first (the order of
/// the variants is the order of preference).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Useless {
    /// No handshake after the grace period.
    NoHandshake,
    /// It stopped reading.
    NotReading,
    /// Neither side wants anything from the other.
    NothingToTrade,
}

/// Why `occupant` may be replaced, or `None` if it may not.
fn uselessness(occupant: &Occupant) -> Option<Useless> {
    if occupant.age < EVICT_GRACE {
        return None;
    }
    match occupant.stage {
        OccupantStage::Connecting => None,
        OccupantStage::Handshaking => Some(Useless::NoHandshake),
        OccupantStage::Active if occupant.stalled => Some(Useless::NotReading),
        OccupantStage::Active if !occupant.peer_interested && !occupant.am_interested => {
            Some(Useless::NothingToTrade)
        }
        OccupantStage::Active => None,
    }
}

/// The key of the connection a newcomer should replace, or `None` if every
/// occupant is useful (or too new to judge): the newcomer is then refused.
pub(super) fn pick_victim(occupants: &[Occupant]) -> Option<usize> {
    occupants
        .iter()
        .filter_map(|o| Some((uselessness(o)?, std::cmp::Reverse(o.age), o.key)))
        .min()
        .map(|(_, _, key)| key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idle(key: usize, age_secs: u64) -> Occupant {
        Occupant {
            key,
            age: Duration::from_secs(age_secs),
            stage: OccupantStage::Active,
            stalled: false,
            peer_interested: false,
            am_interested: false,
        }
    }

    fn leecher(key: usize, age_secs: u64) -> Occupant {
        Occupant {
            peer_interested: true,
            ..idle(key, age_secs)
        }
    }

    #[test]
    fn useful_peers_are_never_replaced() {
        let seed_we_want = Occupant {
            am_interested: true,
            ..idle(2, 600)
        };
        assert_eq!(pick_victim(&[leecher(1, 600), seed_we_want]), None);
        assert_eq!(pick_victim(&[]), None);
    }

    #[test]
    fn newcomers_are_safe_for_the_grace_period() {
        let young = EVICT_GRACE.as_secs() - 1;
        assert_eq!(pick_victim(&[idle(1, young)]), None);
        assert_eq!(pick_victim(&[idle(1, young), idle(2, young + 1)]), Some(2));
    }

    #[test]
    fn the_oldest_peer_with_nothing_to_trade_goes() {
        let occupants = [idle(1, 30), leecher(2, 900), idle(3, 60), idle(4, 45)];
        assert_eq!(pick_victim(&occupants), Some(3));
    }

    #[test]
    fn no_handshake_goes_before_not_reading_before_nothing_to_trade() {
        let no_handshake = Occupant {
            stage: OccupantStage::Handshaking,
            ..idle(1, 11)
        };
        let not_reading = Occupant {
            stalled: true,
            ..leecher(2, 12)
        };
        let bored = idle(3, 500);
        assert_eq!(
            pick_victim(&[bored, not_reading, no_handshake]),
            Some(no_handshake.key)
        );
        assert_eq!(pick_victim(&[bored, not_reading]), Some(not_reading.key));
        assert_eq!(pick_victim(&[bored]), Some(bored.key));
    }

    #[test]
    fn our_connects_in_progress_are_left_to_time_out() {
        let dialling = Occupant {
            stage: OccupantStage::Connecting,
            ..idle(1, 600)
        };
        assert_eq!(pick_victim(&[dialling]), None);
    }
}
