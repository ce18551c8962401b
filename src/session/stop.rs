//! The stop handle: how another thread (a library caller, a GUI, a daemon's
//! control socket) asks a running session to stop, at once.
//!
//! Layer 2. Setting a flag alone would be seen only when the loop next
//! wakes (up to a second later, when it is idle); so the handle also wakes
//! the loop through the session's mio `Waker`, and the tick that follows
//! sees the flag. Signals need no waker: a signal interrupts `epoll_wait`
//! by itself (it is never restarted), and the CLI's handler sets the flag.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use mio::Waker;

/// Stops a running session from any thread: it finishes its current pass,
/// announces `stopped`, saves its resume state and returns from `run`.
/// Cloning gives another handle to the same session.
#[derive(Debug, Clone, Default)]
pub struct StopHandle {
    flag: Arc<AtomicBool>,
    /// The loop to wake; set when the handle is attached to a session.
    waker: Arc<Mutex<Option<Arc<Waker>>>>,
}

impl StopHandle {
    /// A handle not yet attached to a session (a stop asked before the
    /// session starts is seen at its first pass).
    pub fn new() -> StopHandle {
        StopHandle::default()
    }

    /// Asks the session to stop, and wakes its loop if it sleeps.
    pub fn stop(&self) {
        self.flag.store(true, Ordering::Relaxed);
        let waker = self.waker.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(waker) = waker.as_ref() {
            // A failed wake only delays the stop to the loop's next timer.
            let _ = waker.wake();
        }
    }

    /// Whether a stop was asked.
    pub fn is_stopping(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }

    /// The flag itself, for code that can only set a flag (a signal handler).
    pub fn flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.flag)
    }

    /// Wakes the loop (if attached), so it looks at what was asked of it.
    pub(super) fn wake(&self) {
        let waker = self.waker.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(waker) = waker.as_ref() {
            // A failed wake only delays the request to the loop's next timer.
            let _ = waker.wake();
        }
    }

    /// Points this handle (and its clones) at the loop `waker` wakes.
    pub(super) fn attach(&self, waker: Arc<Waker>) {
        *self.waker.lock().unwrap_or_else(PoisonError::into_inner) = Some(waker);
    }
}
