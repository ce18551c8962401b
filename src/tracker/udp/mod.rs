//! The UDP tracker protocol: its packets, and a state machine for one
//! announce or scrape to one tracker (BEP 15, "UDP Tracker Protocol").
//!
//! Layer 0: pure (no sockets, no clock, no name resolution). The session owns
//! the socket and the clock and drives a [`UdpExchange`] the way quinn-proto's
//! connections are driven:
//!
//! ```text
//! session                                    UdpExchange
//! new(query, now, cached id, timeouts, rng)  queues a connect (or the request)
//! poll_transmit(now)                         -> a datagram to send, if any
//! handle_datagram(bytes, now)                a reply: connected, or done
//! handle_timeout(now) at next_deadline()     resend with back-off, or give up
//! poll_result()                              -> Ok(reply) or Err(TrackerError), once
//! ```
//!
//! An exchange is a connect (action 0) that yields a connection id, then the
//! request itself: an announce (action 1) or a scrape (action 2). A
//! connection id less than [`CONNECTION_ID_LIFETIME`] old may be passed in
//! to skip the connect; [`UdpExchange::connection`] hands the new one back
//! for the session to cache per tracker. An unanswered packet is sent again
//! after `base × 2^n` (BEP 15: 15 s × 2^n, n = 0..=8), and the exchange
//! gives up after the last wait. The connect is redone when the connection
//! id has expired by the time the request is (re)sent.
//!
//! BEP 15's full schedule lasts 2 h 8 min: it is how long to keep retrying
//! one tracker, not how long anything should wait for it. The session's
//! announces use [`ANNOUNCE_TIMEOUTS`] instead: the same doubling from 4 s
//! and [`ANNOUNCE_RETRIES`] resends, so a silent tracker is given up after
//! 28 s and its tier moves on (next URL, or its back-off) as after any
//! failure. libtorrent sends one datagram and gives up after 10 to 30 s of
//! silence (`tracker_receive_timeout`, `tracker_completion_timeout`).
//!
//! The module is in two parts: [`codec`] (the packets and `udp://` URLs)
//! and [`exchange`] (the state machine); everything public is re-exported
//! here.

pub mod codec;
pub mod exchange;
#[cfg(test)]
mod tracker_side;

pub use codec::{
    decode_announce_reply, decode_connect_reply, decode_scrape_reply, encode_announce,
    encode_connect, encode_scrape, parse_udp_url, reply_header, ANNOUNCE_REQUEST_LEN,
    CONNECT_REQUEST_LEN, MAX_DATAGRAM_LEN, MAX_SCRAPE_HASHES, PROTOCOL_ID,
};
pub use exchange::{
    AnnounceQuery, ScrapeQuery, UdpAnnounce, UdpConnection, UdpExchange, UdpQuery, UdpScrape,
    UdpTimeouts, ANNOUNCE_RETRIES, ANNOUNCE_TIMEOUTS, CONNECTION_ID_LIFETIME,
};
