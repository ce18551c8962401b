//! Controlling torrents: pause, resume and remove, called directly on the
//! [`Session`] or, while it runs, from any thread through a
//! [`SessionHandle`].
//!
//! Layer 2. A handle queues a command and wakes the loop through the
//! session's mio `Waker` (as a stop does); the next tick carries the
//! commands out before any other phase, so a command never lands in the
//! middle of a phase.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use super::{Session, StopHandle, TorrentId};
use crate::close_reason::CloseReason;

/// Most commands waiting for the loop: a caller that floods the queue
/// (faster than one tick takes them) gets `false` back instead of memory
/// growing without bound.
pub const MAX_PENDING_COMMANDS: usize = 1024;

/// What a [`SessionHandle`] asks of the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Command {
    Pause(TorrentId),
    Resume(TorrentId),
    Remove(TorrentId),
}

/// Controls a running session from any thread. Cloning gives another
/// handle to the same session.
#[derive(Debug, Clone)]
pub struct SessionHandle {
    commands: Arc<Mutex<VecDeque<Command>>>,
    stop: StopHandle,
}

impl SessionHandle {
    /// Asks the loop to pause torrent `id` (see [`Session::pause`]).
    /// False when too many commands are already waiting.
    pub fn pause(&self, id: TorrentId) -> bool {
        self.send(Command::Pause(id))
    }

    /// Asks the loop to resume torrent `id` (see [`Session::resume`]).
    pub fn resume(&self, id: TorrentId) -> bool {
        self.send(Command::Resume(id))
    }

    /// Asks the loop to remove torrent `id` (see [`Session::remove`]).
    pub fn remove(&self, id: TorrentId) -> bool {
        self.send(Command::Remove(id))
    }

    /// Stops the whole session at once (as [`StopHandle::stop`]).
    pub fn stop(&self) {
        self.stop.stop();
    }

    fn send(&self, command: Command) -> bool {
        {
            let mut queue = self.commands.lock().unwrap_or_else(PoisonError::into_inner);
            if queue.len() >= MAX_PENDING_COMMANDS {
                return false;
            }
            queue.push_back(command);
        }
        self.stop.wake();
        true
    }
}

impl Session {
    /// A handle that controls this session from any thread while it runs.
    pub fn handle(&self) -> SessionHandle {
        SessionHandle {
            commands: Arc::clone(&self.commands),
            stop: self.stop.clone(),
        }
    }

    /// Pauses torrent `id`: its connections close, its trackers' announces
    /// in flight are dropped, its resume state is saved, and until
    /// [`Session::resume`] it dials nobody, accepts nobody and announces
    /// nothing. False when there is no such torrent.
    pub fn pause(&mut self, id: TorrentId) -> bool {
        let now = Instant::now();
        let Some(slot) = self.torrents.get_mut(id) else {
            return false;
        };
        if slot.paused {
            return true;
        }
        slot.paused = true;
        log::info!("{}: paused", slot.meta.name);
        self.disconnect_torrent(id, CloseReason::TorrentPaused, now);
        self.abandon_flights(id, now);
        self.save_resume(id, now);
        true
    }

    /// Resumes a paused torrent `id`: it dials and announces again. False
    /// when there is no such torrent.
    pub fn resume(&mut self, id: TorrentId) -> bool {
        let Some(slot) = self.torrents.get_mut(id) else {
            return false;
        };
        if slot.paused {
            slot.paused = false;
            slot.error = None;
            log::info!("{}: resumed", slot.meta.name);
        }
        true
    }

    /// Removes torrent `id` from the session: its connections close, its
    /// trackers are told `stopped` (within the exit budget), its resume
    /// state is saved and its lock released. Its files stay on disk. False
    /// when there is no such torrent.
    pub fn remove(&mut self, id: TorrentId) -> bool {
        if !self.torrents.contains(id) {
            return false;
        }
        let now = Instant::now();
        self.disconnect_torrent(id, CloseReason::TorrentRemoved, now);
        self.announce_on_exit(id);
        self.save_resume(id, now);
        let Some(slot) = self.torrents.try_remove(id) else {
            return false;
        };
        log::info!("{}: removed", slot.meta.name);
        true
    }

    /// Carries out the commands handles queued (first thing in a tick).
    pub(super) fn take_commands(&mut self) {
        let commands: Vec<Command> = self
            .commands
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
            .collect();
        for command in commands {
            let done = match command {
                Command::Pause(id) => self.pause(id),
                Command::Resume(id) => self.resume(id),
                Command::Remove(id) => self.remove(id),
            };
            if !done {
                log::warn!("{command:?}: no such torrent");
            }
        }
    }

    /// Closes every connection of torrent `id` for `reason`, telling its
    /// core now: the connections then belong to no torrent, so nothing
    /// later reaches a torrent that is gone or paused.
    fn disconnect_torrent(&mut self, id: TorrentId, reason: CloseReason, now: Instant) {
        for (key, conn) in self.conns.iter_mut() {
            if conn.torrent != Some(id) {
                continue;
            }
            if let Some(slot) = self.torrents.get_mut(id) {
                slot.torrent
                    .handle_disconnected(key, conn.addr, &reason, now);
            }
            conn.torrent = None;
            conn.close(reason.clone());
        }
        self.apply_actions(id, now);
    }
}
