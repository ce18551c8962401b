//! Looking up tracker host names without blocking the event loop.
//!
//! Layer 1: blocking name lookups, each on a short-lived helper thread; no
//! mio, and the clock is passed in. `getaddrinfo(3)`, which
//! [`ToSocketAddrs`] calls, blocks and has no timeout of its own: with a dead
//! DNS server it takes 5 s per try and server, often tens of seconds. Called
//! from the loop, that would freeze every peer; so the loop never calls it.
//!
//! ```text
//! session                              Resolver
//! lookup(host, port, now)              -> Ready(addr) | Pending | Failed(why)
//!                                         (Pending: a helper thread runs getaddrinfo
//!                                          and calls `notify` when it ends, which
//!                                          wakes the loop)
//! poll(now)                            takes in finished lookups, fails late ones
//! next_deadline()                      when the oldest pending lookup times out
//! ```
//!
//! The caller asks again on a later pass (after the wake-up) and gets the
//! answer from the cache. Bounds, all named below: an IP literal never
//! reaches the resolver; a name not answered within [`RESOLVE_TIMEOUT`]
//! fails (a late answer is still cached for the next try); at most
//! [`MAX_LOOKUP_THREADS`] threads exist at once, counting abandoned ones
//! still stuck in `getaddrinfo`; answers are kept for [`CACHE_TTL`] and
//! failures for [`FAILURE_TTL`]. Names come from the torrent's tiers, so
//! there are at most [`MAX_TIERS`](super::tiers::MAX_TIERS) of them waiting.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest a tracker's name may take to resolve before its announce fails
/// (the tier then backs off as after any failure). The loop never waits for
/// it; only that tier does. A working DNS answers in milliseconds, and glibc
/// gives up on one server after 5 s.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Most lookup threads alive at once, counting abandoned ones: a DNS server
/// that never answers parks at most this many threads, and further names
/// wait for a free one (within their own [`RESOLVE_TIMEOUT`]).
pub const MAX_LOOKUP_THREADS: usize = 4;

/// How long an answer is reused. `getaddrinfo` does not say the record's
/// TTL; five minutes covers a burst of announces (every tier starting, a
/// failover) without pinning an address a tracker has moved away from.
pub const CACHE_TTL: Duration = Duration::from_secs(5 * 60);

/// How long a failed lookup is remembered: tiers that share a host name
/// get the same verdict without asking again, and it is shorter than
/// [`FIRST_BACKOFF`](super::tiers::FIRST_BACKOFF), so a tier retrying after
/// its back-off looks the name up afresh.
pub const FAILURE_TTL: Duration = Duration::from_secs(10);

/// A blocking lookup of `host:port`, run on a helper thread.
pub type LookupFn = fn(&str, u16) -> io::Result<Vec<SocketAddr>>;

/// Called from a helper thread when its lookup ends (to wake the loop).
pub type Notify = Arc<dyn Fn() + Send + Sync>;

/// The system's resolver: `getaddrinfo` through [`ToSocketAddrs`].
pub fn system_lookup(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    (host, port).to_socket_addrs().map(Iterator::collect)
}

/// A host name (lowercase) and port.
type Name = (String, u16);

/// What a helper thread sends back.
type Answer = (Name, io::Result<Vec<SocketAddr>>);

/// The state of one name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The address to use.
    Ready(SocketAddr),
    /// Being looked up (or waiting for a free thread): ask again later.
    Pending,
    /// The lookup failed or timed out; why.
    Failed(String),
}

/// A name someone asked for and has no answer yet.
#[derive(Debug, Clone, Copy)]
struct Waiting {
    /// When it was first asked for: its [`RESOLVE_TIMEOUT`] counts from here.
    asked_at: Instant,
    /// Whether a thread is looking it up.
    running: bool,
}

/// Name lookups on helper threads, with a cache.
pub struct Resolver {
    /// The blocking lookup the threads run.
    lookup: LookupFn,
    /// Called by a thread when its lookup ends.
    notify: Notify,
    /// Handed to each thread for its answer.
    sender: Sender<Answer>,
    /// Answers from threads, taken in by `poll`.
    answers: Receiver<Answer>,
    /// Names resolved: the address and when it was learned.
    found: HashMap<Name, (SocketAddr, Instant)>,
    /// Names that failed: why and when.
    failed: HashMap<Name, (String, Instant)>,
    /// Names asked for and not answered yet.
    waiting: HashMap<Name, Waiting>,
    /// Threads started and not yet answered (some may be abandoned).
    threads: usize,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("found", &self.found)
            .field("failed", &self.failed)
            .field("waiting", &self.waiting)
            .field("threads", &self.threads)
            .finish_non_exhaustive()
    }
}

impl Resolver {
    /// A resolver using the system's `getaddrinfo`; `notify` is called from
    /// a helper thread each time a lookup ends.
    pub fn new(notify: Notify) -> Resolver {
        Resolver::with_lookup(system_lookup, notify)
    }

    /// A resolver whose threads run `lookup` (tests use a scripted one).
    pub fn with_lookup(lookup: LookupFn, notify: Notify) -> Resolver {
        let (sender, answers) = channel();
        Resolver {
            lookup,
            notify,
            sender,
            answers,
            found: HashMap::new(),
            failed: HashMap::new(),
            waiting: HashMap::new(),
            threads: 0,
        }
    }

    /// The address of `host:port`, if known; else starts looking it up (or
    /// keeps waiting) and says [`Lookup::Pending`]. Never blocks. An IP
    /// literal (`127.0.0.1`, `::1`, without brackets) is ready at once.
    pub fn lookup(&mut self, host: &str, port: u16, now: Instant) -> Lookup {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Lookup::Ready(SocketAddr::new(ip, port));
        }
        self.poll(now);
        let name = (host.to_ascii_lowercase(), port);
        if let Some((addr, _)) = self.found.get(&name) {
            return Lookup::Ready(*addr);
        }
        if let Some((why, _)) = self.failed.get(&name) {
            return Lookup::Failed(why.clone());
        }
        self.waiting.entry(name).or_insert(Waiting {
            asked_at: now,
            running: false,
        });
        self.start_waiting();
        Lookup::Pending
    }

    /// Takes in the lookups that ended, fails those older than
    /// [`RESOLVE_TIMEOUT`], forgets expired answers, and starts waiting
    /// names on free threads.
    pub fn poll(&mut self, now: Instant) {
        while let Ok((name, result)) = self.answers.try_recv() {
            self.threads = self.threads.saturating_sub(1);
            self.take_answer(name, result, now);
        }
        self.found
            .retain(|_, (_, at)| now.saturating_duration_since(*at) < CACHE_TTL);
        self.failed
            .retain(|_, (_, at)| now.saturating_duration_since(*at) < FAILURE_TTL);
        let late: Vec<Name> = self
            .waiting
            .iter()
            .filter(|(_, w)| now.saturating_duration_since(w.asked_at) >= RESOLVE_TIMEOUT)
            .map(|(name, _)| name.clone())
            .collect();
        for name in late {
            self.waiting.remove(&name);
            let why = format!(
                "cannot resolve {}: no answer within {} s",
                name.0,
                RESOLVE_TIMEOUT.as_secs()
            );
            self.failed.insert(name, (why, now));
        }
        self.start_waiting();
    }

    /// When the oldest pending lookup times out, if any is pending.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.waiting
            .values()
            .map(|w| w.asked_at + RESOLVE_TIMEOUT)
            .min()
    }

    /// Files one thread's answer. A late answer (its name already timed
    /// out) still fills the cache when it is an address.
    fn take_answer(&mut self, name: Name, result: io::Result<Vec<SocketAddr>>, now: Instant) {
        let was_waiting = self.waiting.remove(&name).is_some();
        let first = result.map(|addrs| addrs.into_iter().next());
        match first {
            Ok(Some(addr)) => {
                self.failed.remove(&name);
                self.found.insert(name, (addr, now));
            }
            Ok(None) if was_waiting => {
                let why = format!("{} has no address", name.0);
                self.failed.insert(name, (why, now));
            }
            Err(e) if was_waiting => {
                let why = format!("cannot resolve {}: {e}", name.0);
                self.failed.insert(name, (why, now));
            }
            _ => {}
        }
    }

    /// Starts a thread for each waiting name that has none, while fewer
    /// than [`MAX_LOOKUP_THREADS`] are alive.
    fn start_waiting(&mut self) {
        let idle: Vec<Name> = self
            .waiting
            .iter()
            .filter(|(_, w)| !w.running)
            .map(|(name, _)| name.clone())
            .collect();
        for name in idle {
            if self.threads >= MAX_LOOKUP_THREADS {
                return;
            }
            match self.spawn(name.clone()) {
                Ok(()) => {
                    self.threads += 1;
                    if let Some(w) = self.waiting.get_mut(&name) {
                        w.running = true;
                    }
                }
                Err(e) => {
                    let asked_at = self.waiting.remove(&name).map(|w| w.asked_at);
                    let why = format!("cannot start a lookup of {}: {e}", name.0);
                    self.failed
                        .insert(name, (why, asked_at.unwrap_or_else(Instant::now)));
                }
            }
        }
    }

    /// One helper thread: looks `name` up, sends the answer, wakes the loop.
    fn spawn(&self, name: Name) -> io::Result<()> {
        let (lookup, sender, notify) = (self.lookup, self.sender.clone(), Arc::clone(&self.notify));
        std::thread::Builder::new()
            .name("pollen-resolve".into())
            .spawn(move || {
                let result = lookup(&name.0, name.1);
                // The resolver may be gone (the session ended): nobody to tell.
                if sender.send((name, result)).is_ok() {
                    notify();
                }
            })
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use super::*;

    /// How long a test waits for helper threads before failing.
    const PATIENCE: Duration = Duration::from_secs(10);

    /// A notify that counts wake-ups.
    fn counter() -> (Notify, Arc<AtomicUsize>) {
        let count = Arc::new(AtomicUsize::new(0));
        let inner = Arc::clone(&count);
        let notify: Notify = Arc::new(move || {
            inner.fetch_add(1, Ordering::SeqCst);
        });
        (notify, count)
    }

    /// Waits (bounded) until `count` reaches `n`.
    fn wait_for(count: &AtomicUsize, n: usize) {
        let deadline = Instant::now() + PATIENCE;
        while count.load(Ordering::SeqCst) < n {
            assert!(Instant::now() < deadline, "no wake-up within {PATIENCE:?}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Blocks (bounded) until `release` is set, like a DNS server that does
    /// not answer until the test says so.
    fn hang_until(release: &AtomicBool) {
        let deadline = Instant::now() + PATIENCE;
        while !release.load(Ordering::SeqCst) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn loopback(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn ip_literals_never_reach_the_lookup() {
        fn refuse(_: &str, _: u16) -> io::Result<Vec<SocketAddr>> {
            panic!("an IP literal was looked up");
        }
        let (notify, wakes) = counter();
        let mut resolver = Resolver::with_lookup(refuse, notify);
        let now = Instant::now();
        assert_eq!(
            resolver.lookup("127.0.0.1", 6969, now),
            Lookup::Ready(loopback(6969))
        );
        assert_eq!(
            resolver.lookup("::1", 80, now),
            Lookup::Ready("[::1]:80".parse().unwrap())
        );
        assert_eq!(resolver.threads, 0);
        assert_eq!(wakes.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_name_is_looked_up_on_a_thread_then_served_from_the_cache() {
        static CALLS: AtomicUsize = AtomicUsize::new(0);
        fn answer(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
            assert_eq!(host, "tracker.example");
            CALLS.fetch_add(1, Ordering::SeqCst);
            Ok(vec![loopback(port), loopback(1)])
        }
        let (notify, wakes) = counter();
        let mut resolver = Resolver::with_lookup(answer, notify);
        let t0 = Instant::now();
        assert_eq!(
            resolver.lookup("Tracker.Example", 6969, t0),
            Lookup::Pending
        );
        assert_eq!(resolver.next_deadline(), Some(t0 + RESOLVE_TIMEOUT));
        wait_for(&wakes, 1);
        let t1 = t0 + Duration::from_millis(50);
        assert_eq!(
            resolver.lookup("tracker.example", 6969, t1),
            Lookup::Ready(loopback(6969)),
            "the first address"
        );
        assert_eq!(resolver.next_deadline(), None);
        assert_eq!(
            resolver.lookup(
                "tracker.example",
                6969,
                t1 + CACHE_TTL - Duration::from_secs(1)
            ),
            Lookup::Ready(loopback(6969))
        );
        assert_eq!(CALLS.load(Ordering::SeqCst), 1, "answered from the cache");
        // After the TTL it is looked up again.
        assert_eq!(
            resolver.lookup("tracker.example", 6969, t1 + CACHE_TTL),
            Lookup::Pending
        );
        wait_for(&wakes, 2);
        assert_eq!(CALLS.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_failed_lookup_is_reported_then_retried_after_its_ttl() {
        fn nxdomain(_: &str, _: u16) -> io::Result<Vec<SocketAddr>> {
            Err(io::Error::other("no such host"))
        }
        let (notify, wakes) = counter();
        let mut resolver = Resolver::with_lookup(nxdomain, notify);
        let t0 = Instant::now();
        assert_eq!(resolver.lookup("gone.example", 80, t0), Lookup::Pending);
        wait_for(&wakes, 1);
        let failed = resolver.lookup("gone.example", 80, t0);
        assert_eq!(
            failed,
            Lookup::Failed("cannot resolve gone.example: no such host".into())
        );
        assert_eq!(resolver.lookup("gone.example", 80, t0), failed, "shared");
        assert_eq!(
            resolver.lookup("gone.example", 80, t0 + FAILURE_TTL),
            Lookup::Pending
        );
    }

    #[test]
    fn a_hung_lookup_times_out_and_its_late_answer_is_kept() {
        static RELEASE: AtomicBool = AtomicBool::new(false);
        fn slow(_: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
            hang_until(&RELEASE);
            Ok(vec![loopback(port)])
        }
        let (notify, wakes) = counter();
        let mut resolver = Resolver::with_lookup(slow, notify);
        let t0 = Instant::now();
        // The caller is never held: it gets Pending while the thread hangs.
        assert_eq!(resolver.lookup("slow.example", 1, t0), Lookup::Pending);
        assert_eq!(
            resolver.lookup(
                "slow.example",
                1,
                t0 + RESOLVE_TIMEOUT - Duration::from_millis(1)
            ),
            Lookup::Pending
        );
        let late = t0 + RESOLVE_TIMEOUT;
        assert_eq!(
            resolver.lookup("slow.example", 1, late),
            Lookup::Failed("cannot resolve slow.example: no answer within 5 s".into())
        );
        assert_eq!(resolver.threads, 1, "the stuck thread still counts");
        RELEASE.store(true, Ordering::SeqCst);
        wait_for(&wakes, 1);
        assert_eq!(
            resolver.lookup("slow.example", 1, late),
            Lookup::Ready(loopback(1)),
            "the late answer serves the next try"
        );
        assert_eq!(resolver.threads, 0);
    }

    #[test]
    fn at_most_max_lookup_threads_run_and_the_rest_wait_their_turn() {
        static RELEASE: AtomicBool = AtomicBool::new(false);
        fn slow(_: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
            hang_until(&RELEASE);
            Ok(vec![loopback(port)])
        }
        let (notify, wakes) = counter();
        let mut resolver = Resolver::with_lookup(slow, notify);
        let t0 = Instant::now();
        let names = MAX_LOOKUP_THREADS + 2;
        for i in 0..names {
            assert_eq!(
                resolver.lookup(&format!("t{i}.example"), 1, t0),
                Lookup::Pending
            );
        }
        assert_eq!(resolver.threads, MAX_LOOKUP_THREADS);
        assert_eq!(resolver.waiting.values().filter(|w| !w.running).count(), 2);
        RELEASE.store(true, Ordering::SeqCst);
        // As threads end, the waiting names get theirs.
        let deadline = Instant::now() + PATIENCE;
        while resolver.next_deadline().is_some() {
            assert!(Instant::now() < deadline, "lookups never finished");
            resolver.poll(t0);
            std::thread::sleep(Duration::from_millis(5));
        }
        wait_for(&wakes, names);
        assert_eq!(resolver.threads, 0);
        for i in 0..names {
            assert_eq!(
                resolver.lookup(&format!("t{i}.example"), 1, t0),
                Lookup::Ready(loopback(1))
            );
        }
    }
}
