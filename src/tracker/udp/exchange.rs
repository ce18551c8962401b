//! One announce or scrape to one UDP tracker (BEP 15): a state machine
//! that connects when it has no fresh connection id, sends the request,
//! resends with back-off and gives up, driven by the session as the
//! [module doc](super) shows.
//!
//! Layer 0: pure (no sockets, no clock: `now` is passed in). The packets
//! themselves are encoded and decoded in [`super::codec`].

use std::time::{Duration, Instant};

use super::codec::{
    decode_announce_reply, decode_connect_reply, decode_scrape_reply, encode_announce,
    encode_connect, encode_scrape, reply_header, MAX_SCRAPE_HASHES,
};
use crate::rng::Rng;
use crate::tracker::announce::{AnnounceRequest, AnnounceResponse};
use crate::tracker::scrape::ScrapeStats;
use crate::tracker::TrackerError;

/// How long a connection id may be used after its connect reply arrived
/// (BEP 15: one minute; trackers accept it for two, which leaves room for a
/// request in flight).
pub const CONNECTION_ID_LIFETIME: Duration = Duration::from_secs(60);

/// Retransmission timing of one exchange (BEP 15 "Time outs").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpTimeouts {
    /// Wait for a reply after the first send; each resend waits twice as
    /// long as the one before (BEP 15: 15 s).
    pub base: Duration,
    /// Resends before giving up (BEP 15: 8, so the last wait is
    /// 15 s × 2^8 = 64 min and an exchange gives up after about 2 h 8 min).
    pub max_retries: u32,
}

impl Default for UdpTimeouts {
    /// BEP 15's numbers: 15 s, doubled up to 8 times.
    fn default() -> Self {
        UdpTimeouts {
            base: Duration::from_secs(15),
            max_retries: 8,
        }
    }
}

impl UdpTimeouts {
    /// How long to wait for a reply after send number `retry` (0 for the
    /// first): `base × 2^retry`, never overflowing (the factor stops at
    /// `u32::MAX`, the product at `Duration::MAX`).
    pub fn wait(&self, retry: u32) -> Duration {
        self.base.saturating_mul(2u32.saturating_pow(retry))
    }

    /// How long an exchange with a tracker that never answers lasts, from
    /// the first send to giving up: the sum of every wait.
    pub fn give_up_after(&self) -> Duration {
        (0..=self.max_retries).fold(Duration::ZERO, |sum, retry| {
            sum.saturating_add(self.wait(retry))
        })
    }
}

/// Resends of an announce before the session gives up on a silent UDP
/// tracker: two, so three datagrams in all (one lost datagram, or two, is
/// survived), and with [`ANNOUNCE_TIMEOUTS`]'s 4 s base the exchange gives up
/// after 4 + 8 + 16 = 28 s. BEP 15's eight resends would hold the tier for
/// over two hours; libtorrent waits 10 to 30 s and never resends.
pub const ANNOUNCE_RETRIES: u32 = 2;

/// Timing of the session's UDP announces: BEP 15's doubling from 4 s rather
/// than 15 s (a tracker that answers at all does so in well under a second;
/// three tries over 28 s are still gentle on an overloaded one), stopping
/// after [`ANNOUNCE_RETRIES`] resends.
pub const ANNOUNCE_TIMEOUTS: UdpTimeouts = UdpTimeouts {
    base: Duration::from_secs(4),
    max_retries: ANNOUNCE_RETRIES,
};

/// A connection id and when its connect reply arrived; the session caches
/// one per tracker and passes it to the next [`UdpExchange::new`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpConnection {
    /// The id the tracker gave us.
    pub id: u64,
    /// When its connect reply arrived.
    pub obtained_at: Instant,
}

impl UdpConnection {
    /// Whether the id may still be used at `now`: less than
    /// [`CONNECTION_ID_LIFETIME`] after it was obtained.
    pub fn is_fresh(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.obtained_at) < CONNECTION_ID_LIFETIME
    }
}

/// The request an exchange makes once connected: an announce or a scrape.
pub trait UdpQuery {
    /// What a successful reply decodes to.
    type Reply;

    /// The request datagram.
    fn encode(&self, connection_id: u64, transaction_id: u32) -> Vec<u8>;

    /// Decodes the reply to the request sent with `transaction_id`.
    fn decode(&self, datagram: &[u8], transaction_id: u32) -> Result<Self::Reply, TrackerError>;
}

/// An announce over UDP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnounceQuery {
    /// What we tell the tracker.
    pub request: AnnounceRequest,
    /// Whether the tracker is reached over IPv6, which makes its peers
    /// 18-byte IPv6 entries (BEP 15).
    pub ipv6: bool,
}

impl UdpQuery for AnnounceQuery {
    type Reply = AnnounceResponse;

    fn encode(&self, connection_id: u64, transaction_id: u32) -> Vec<u8> {
        encode_announce(connection_id, transaction_id, &self.request)
    }

    fn decode(
        &self,
        datagram: &[u8],
        transaction_id: u32,
    ) -> Result<AnnounceResponse, TrackerError> {
        decode_announce_reply(datagram, transaction_id, self.ipv6)
    }
}

/// A scrape over UDP of 1 to [`MAX_SCRAPE_HASHES`] torrents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrapeQuery {
    /// The torrents asked about, in order.
    info_hashes: Vec<[u8; 20]>,
}

impl ScrapeQuery {
    /// A scrape of `info_hashes`; `None` when there are none or more than
    /// [`MAX_SCRAPE_HASHES`] (split them over several scrapes).
    pub fn new(info_hashes: &[[u8; 20]]) -> Option<ScrapeQuery> {
        if info_hashes.is_empty() || info_hashes.len() > MAX_SCRAPE_HASHES {
            return None;
        }
        Some(ScrapeQuery {
            info_hashes: info_hashes.to_vec(),
        })
    }

    /// The torrents asked about; the reply's counts come in this order.
    pub fn info_hashes(&self) -> &[[u8; 20]] {
        &self.info_hashes
    }
}

impl UdpQuery for ScrapeQuery {
    type Reply = Vec<ScrapeStats>;

    fn encode(&self, connection_id: u64, transaction_id: u32) -> Vec<u8> {
        encode_scrape(connection_id, transaction_id, &self.info_hashes)
    }

    fn decode(
        &self,
        datagram: &[u8],
        transaction_id: u32,
    ) -> Result<Vec<ScrapeStats>, TrackerError> {
        decode_scrape_reply(datagram, transaction_id, self.info_hashes.len())
    }
}

/// One announce to one UDP tracker.
pub type UdpAnnounce = UdpExchange<AnnounceQuery>;

/// One scrape of one UDP tracker.
pub type UdpScrape = UdpExchange<ScrapeQuery>;

/// Where an exchange stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Waiting for the reply to the connect sent with this transaction id.
    Connecting {
        /// Kept across resends of the same connect.
        transaction_id: u32,
    },
    /// Waiting for the reply to the request sent with this transaction id,
    /// on the connection id in `UdpExchange::connection`.
    Requesting {
        /// Kept across resends of the same request.
        transaction_id: u32,
    },
    /// Finished: the result is in (or was taken from) `UdpExchange::result`.
    Done,
}

/// One exchange with one UDP tracker: connect if needed, then the request,
/// with BEP 15's resends (a pure state machine, driven as the module doc
/// shows).
///
/// A transaction id is drawn for each new packet (each connect, each
/// request) and kept when that same packet is sent again, so a late reply to
/// the first send still counts. The back-off step `n` counts every timeout of
/// the exchange, connect and request together, and is never reset: one
/// exchange therefore ends within `base × (2^(max_retries+1) − 1)` whatever
/// the tracker does, even one that answers every connect and nothing else.
#[derive(Debug)]
pub struct UdpExchange<Q: UdpQuery> {
    /// The request to make once connected.
    query: Q,
    /// When to resend and when to give up.
    timeouts: UdpTimeouts,
    /// Where transaction ids come from: forked from the session's generator.
    transaction_ids: Rng,
    /// The connection id in use (cached or obtained here), if any.
    connection: Option<UdpConnection>,
    /// Where the exchange stands.
    step: Step,
    /// Timeouts so far: BEP 15's `n`.
    retries: u32,
    /// The datagram waiting for `poll_transmit`.
    outgoing: Option<Vec<u8>>,
    /// When to act next: while a datagram waits, when it was queued (due at
    /// once); after it is sent, when it counts as lost.
    deadline: Option<Instant>,
    /// The outcome, until `poll_result` takes it.
    result: Option<Result<Q::Reply, TrackerError>>,
}

impl<Q: UdpQuery> UdpExchange<Q> {
    /// Starts an exchange at `now`: the request at once if `cached` is still
    /// fresh, a connect first otherwise. Transaction ids are drawn from a
    /// generator seeded from `rng`.
    pub fn new(
        query: Q,
        now: Instant,
        cached: Option<UdpConnection>,
        timeouts: UdpTimeouts,
        rng: &mut Rng,
    ) -> Self {
        let mut exchange = UdpExchange {
            query,
            timeouts,
            transaction_ids: Rng::new(rng.next_u64()),
            connection: cached,
            step: Step::Done,
            retries: 0,
            outgoing: None,
            deadline: None,
            result: None,
        };
        exchange.send_request(now);
        exchange
    }

    /// The datagram to send to the tracker now, if any. Call after `new` and
    /// after every `handle_*` until it returns `None`; the wait for a reply
    /// starts at `now`.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Vec<u8>> {
        let datagram = self.outgoing.take()?;
        // A wait too long for `Instant` to represent never ends.
        self.deadline = now.checked_add(self.timeouts.wait(self.retries));
        Some(datagram)
    }

    /// Takes in a datagram from the tracker's address.
    ///
    /// One too short to hold a transaction id, or whose id is not the one
    /// awaited, is ignored. One with our id ends the exchange with a reply
    /// or an error, except a good connect reply, which queues the request.
    pub fn handle_datagram(&mut self, datagram: &[u8], now: Instant) {
        let awaited = match self.step {
            Step::Connecting { transaction_id } | Step::Requesting { transaction_id } => {
                transaction_id
            }
            Step::Done => return,
        };
        match reply_header(datagram) {
            Some((_, transaction_id)) if transaction_id == awaited => {}
            _ => return,
        }
        if let Step::Connecting { .. } = self.step {
            match decode_connect_reply(datagram, awaited) {
                Ok(id) => {
                    self.connection = Some(UdpConnection {
                        id,
                        obtained_at: now,
                    });
                    self.send_request(now);
                }
                Err(error) => self.finish(Err(error)),
            }
        } else {
            let reply = self.query.decode(datagram, awaited);
            self.finish(reply);
        }
    }

    /// When [`UdpExchange::handle_timeout`] should next be called; `None`
    /// once finished (or when the wait is too long for `Instant`, with an
    /// absurd [`UdpTimeouts::base`]). While a datagram waits for
    /// `poll_transmit` this is the time it was queued, i.e. due at once.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Acts on the clock: when the datagram in flight has waited its full
    /// time, sends it again (reconnecting first if the connection id has
    /// expired) or, after [`UdpTimeouts::max_retries`] resends, gives up with
    /// [`TrackerError::Transport`]. Early calls do nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due = self.deadline.is_some_and(|deadline| deadline <= now);
        if self.step == Step::Done || self.outgoing.is_some() || !due {
            return;
        }
        if self.retries >= self.timeouts.max_retries {
            let sends = u64::from(self.retries) + 1;
            self.finish(Err(TrackerError::Transport(format!(
                "no reply from the UDP tracker after {sends} attempts"
            ))));
            return;
        }
        self.retries += 1;
        match self.step {
            Step::Connecting { transaction_id } => self.queue(encode_connect(transaction_id), now),
            Step::Requesting { transaction_id } => self.resend_request(transaction_id, now),
            Step::Done => {}
        }
    }

    /// The outcome, once: `Some` the first time it is called after the
    /// exchange finished, `None` before and after.
    pub fn poll_result(&mut self) -> Option<Result<Q::Reply, TrackerError>> {
        self.result.take()
    }

    /// Whether the exchange has finished (its result may already be taken).
    pub fn is_done(&self) -> bool {
        self.step == Step::Done
    }

    /// The connection id in use, for the session to cache per tracker; it
    /// may have expired by the time it is read (see
    /// [`UdpConnection::is_fresh`]).
    pub fn connection(&self) -> Option<UdpConnection> {
        self.connection
    }

    /// The request this exchange makes.
    pub fn query(&self) -> &Q {
        &self.query
    }

    /// Queues a new request with a new transaction id, or a connect first
    /// when there is no fresh connection id.
    fn send_request(&mut self, now: Instant) {
        let transaction_id = self.next_transaction_id();
        match self.fresh_connection_id(now) {
            Some(id) => {
                self.step = Step::Requesting { transaction_id };
                self.queue(self.query.encode(id, transaction_id), now);
            }
            None => {
                self.step = Step::Connecting { transaction_id };
                self.queue(encode_connect(transaction_id), now);
            }
        }
    }

    /// Queues the same request again, or a new connect if the connection id
    /// has expired meanwhile.
    fn resend_request(&mut self, transaction_id: u32, now: Instant) {
        match self.fresh_connection_id(now) {
            Some(id) => self.queue(self.query.encode(id, transaction_id), now),
            None => self.send_request(now),
        }
    }

    /// The connection id, if there is one and it may still be used at `now`.
    fn fresh_connection_id(&self, now: Instant) -> Option<u64> {
        self.connection
            .filter(|connection| connection.is_fresh(now))
            .map(|connection| connection.id)
    }

    /// Makes `datagram` the next one `poll_transmit` returns.
    fn queue(&mut self, datagram: Vec<u8>, now: Instant) {
        self.outgoing = Some(datagram);
        self.deadline = Some(now);
    }

    /// Ends the exchange with `result`.
    fn finish(&mut self, result: Result<Q::Reply, TrackerError>) {
        self.step = Step::Done;
        self.outgoing = None;
        self.deadline = None;
        self.result = Some(result);
    }

    /// A fresh random transaction id.
    fn next_transaction_id(&mut self) -> u32 {
        // The high half of a 64-bit draw; `to_be_bytes` avoids a narrowing cast.
        let [a, b, c, d, ..] = self.transaction_ids.next_u64().to_be_bytes();
        u32::from_be_bytes([a, b, c, d])
    }
}

#[cfg(test)]
mod tests;
