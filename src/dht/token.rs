//! Announce tokens (BEP 5): the proof that an `announce_peer` comes from the
//! address we answered a `get_peers` from.
//!
//! Layer 0: pure (time is passed in, the secrets come from the caller's
//! seeded generator). A token is the first [`TOKEN_LEN`] bytes of
//! SHA-1(secret || source IP). The secret changes every
//! [`ROTATE_INTERVAL`]; the previous secret stays valid, so a token is
//! accepted for 5 to 10 minutes after it was handed out and nothing about
//! tokens is stored per node. A token made for another IP, or under a
//! secret two rotations old, is refused.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use sha1::{Digest, Sha1};

use crate::rng::Rng;

/// Bytes in a token we hand out: 64 bits cannot be guessed by a spoofer
/// within the ten minutes a token lives.
pub const TOKEN_LEN: usize = 8;

/// How often the secret changes (BEP 5: tokens up to ten minutes old are
/// accepted; two live secrets of five minutes each give that).
pub const ROTATE_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// Bytes of a secret.
const SECRET_LEN: usize = 16;

/// The current and previous token secrets.
#[derive(Debug, Clone)]
pub struct TokenSecrets {
    current: [u8; SECRET_LEN],
    previous: [u8; SECRET_LEN],
    rotate_at: Instant,
}

impl TokenSecrets {
    /// Fresh secrets drawn from `rng`; the first rotation is due at
    /// `now + ROTATE_INTERVAL`.
    pub fn new(rng: &mut Rng, now: Instant) -> TokenSecrets {
        TokenSecrets {
            current: random_secret(rng),
            previous: random_secret(rng),
            rotate_at: now + ROTATE_INTERVAL,
        }
    }

    /// The token for a node at `ip`.
    pub fn token(&self, ip: IpAddr) -> [u8; TOKEN_LEN] {
        make_token(&self.current, ip)
    }

    /// Whether `token` is one we handed to `ip` within the last two
    /// secrets' lifetimes.
    pub fn verify(&self, ip: IpAddr, token: &[u8]) -> bool {
        token == make_token(&self.current, ip) || token == make_token(&self.previous, ip)
    }

    /// When the secret next changes.
    pub fn next_rotation(&self) -> Instant {
        self.rotate_at
    }

    /// Rotates the secret when due (once per call, however late: a node
    /// that slept for an hour still accepts tokens from the last secret).
    pub fn rotate_if_due(&mut self, rng: &mut Rng, now: Instant) {
        if now < self.rotate_at {
            return;
        }
        self.previous = self.current;
        self.current = random_secret(rng);
        self.rotate_at = now + ROTATE_INTERVAL;
    }
}

fn random_secret(rng: &mut Rng) -> [u8; SECRET_LEN] {
    let mut secret = [0u8; SECRET_LEN];
    for chunk in secret.chunks_mut(8) {
        let word = rng.next_u64().to_be_bytes();
        chunk.copy_from_slice(word.get(..chunk.len()).unwrap_or_default());
    }
    secret
}

fn make_token(secret: &[u8; SECRET_LEN], ip: IpAddr) -> [u8; TOKEN_LEN] {
    let mut hasher = Sha1::new();
    hasher.update(secret);
    match ip {
        IpAddr::V4(v4) => hasher.update(v4.octets()),
        IpAddr::V6(v6) => hasher.update(v6.octets()),
    }
    let digest: [u8; 20] = hasher.finalize().into();
    let mut token = [0u8; TOKEN_LEN];
    token.copy_from_slice(digest.get(..TOKEN_LEN).unwrap_or(&[0; TOKEN_LEN]));
    token
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn a_token_verifies_for_its_ip_only() {
        let now = Instant::now();
        let secrets = TokenSecrets::new(&mut Rng::new(1), now);
        let token = secrets.token(A);
        assert_eq!(token.len(), TOKEN_LEN);
        assert!(secrets.verify(A, &token));
        assert!(!secrets.verify(B, &token), "spoofed from another IP");
        assert!(!secrets.verify(A, &token[..4]), "truncated");
        assert!(!secrets.verify(A, b""));
    }

    #[test]
    fn a_token_survives_one_rotation_but_not_two() {
        let mut rng = Rng::new(2);
        let t0 = Instant::now();
        let mut secrets = TokenSecrets::new(&mut rng, t0);
        let token = secrets.token(A);
        secrets.rotate_if_due(&mut rng, t0 + ROTATE_INTERVAL / 2);
        assert!(secrets.verify(A, &token), "no rotation before it is due");
        assert_eq!(secrets.next_rotation(), t0 + ROTATE_INTERVAL);
        let t1 = t0 + ROTATE_INTERVAL;
        secrets.rotate_if_due(&mut rng, t1);
        assert!(secrets.verify(A, &token), "previous secret still valid");
        assert_ne!(secrets.token(A), token, "new tokens from the new secret");
        secrets.rotate_if_due(&mut rng, t1);
        assert!(
            secrets.verify(A, &token),
            "rotation is idempotent at one instant"
        );
        secrets.rotate_if_due(&mut rng, t1 + ROTATE_INTERVAL);
        assert!(!secrets.verify(A, &token), "two rotations old");
    }

    #[test]
    fn different_seeds_give_different_tokens() {
        let now = Instant::now();
        let a = TokenSecrets::new(&mut Rng::new(3), now);
        let b = TokenSecrets::new(&mut Rng::new(4), now);
        assert_ne!(a.token(A), b.token(A));
        assert!(!b.verify(A, &a.token(A)));
    }
}
