//! The terminal under `--tui`: raw keyboard input, the alternate screen,
//! the window size, and putting everything back on exit.
//!
//! Layer 3, with the rest of the command line: the session knows nothing
//! of terminals. It hands the view callback ([`pollen::session::ViewCallback`])
//! a [`pollen::ui::Snapshot`] once a second; [`start`] returns a callback that
//! renders it full-screen, and starts a thread that waits for the `q` key
//! and stops the session through its [`SessionHandle`]. Terminal modes are set with `stty` (no terminal crate, no
//! `unsafe`): it changes the settings of the terminal on its standard input,
//! which is ours. The saved settings (`stty -g`) are restored when the
//! [`Terminal`] is dropped, on every exit path that unwinds or returns.

use std::io::{self, IsTerminal, Read, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use pollen::session::{SessionHandle, ViewCallback};
use pollen::ui::{ENTER, LEAVE};

/// Size used when `stty size` cannot tell (not a terminal).
const FALLBACK_SIZE: (u16, u16) = (80, 24);

/// Whether standard output is a terminal (`--tui` draws there; when it is
/// not, the download shows the status line instead).
pub fn is_terminal() -> bool {
    io::stdout().is_terminal()
}

/// The terminal, switched to full-screen, single-key mode.
#[derive(Debug)]
pub struct Terminal {
    saved: Option<String>,
    /// Columns and rows.
    pub size: (u16, u16),
}

fn stty(args: &[&str]) -> Option<String> {
    let out = Command::new("stty")
        .args(args)
        .stdin(Stdio::inherit())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

impl Terminal {
    /// Saves the terminal settings, turns off line buffering and echo (so a
    /// single `q` arrives at once), and switches to the alternate screen.
    pub fn enter() -> Terminal {
        let saved = stty(&["-g"]);
        if saved.is_some() {
            let _ = stty(&["-icanon", "-echo", "min", "1", "time", "0"]);
        }
        let mut stdout = io::stdout().lock();
        let _ = stdout.write_all(ENTER.as_bytes());
        let _ = stdout.flush();
        Terminal {
            saved,
            size: Self::query_size(),
        }
    }

    /// The window size now (columns, rows).
    pub fn query_size() -> (u16, u16) {
        let Some(text) = stty(&["size"]) else {
            return FALLBACK_SIZE;
        };
        let mut parts = text.split_whitespace().map(|p| p.parse::<u16>().ok());
        match (parts.next().flatten(), parts.next().flatten()) {
            (Some(rows), Some(cols)) if rows > 0 && cols > 0 => (cols, rows),
            _ => FALLBACK_SIZE,
        }
    }

    /// Draws a frame (one write, so the screen does not flicker).
    pub fn draw(&mut self, frame: &str) {
        let mut stdout = io::stdout().lock();
        let _ = stdout.write_all(frame.as_bytes());
        let _ = stdout.flush();
    }
}

/// `--tui`: switches the terminal to the full-screen view and returns the
/// session's view callback that draws it (restoring the terminal when the
/// session drops it); a helper thread waits for `q` (or Ctrl-C's byte in
/// raw mode) and stops the session through `handle`.
pub fn start(handle: SessionHandle) -> ViewCallback {
    let resized = Arc::new(AtomicBool::new(false));
    let _ = signal_hook::flag::register(signal_hook::consts::SIGWINCH, Arc::clone(&resized));
    let mut terminal = Terminal::enter();
    // Blocks in read(2) until a key: no polling. Ends at end of input
    // (stdin not a terminal, e.g. /dev/null) or at the first quit key; the
    // process exiting ends it otherwise.
    std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        while let Ok(n @ 1..) = io::stdin().lock().read(&mut buf) {
            let keys = buf.get(..n).unwrap_or_default();
            if keys.iter().any(|&b| b == b'q' || b == b'Q' || b == 3) {
                handle.stop();
                return;
            }
        }
    });
    Box::new(move |snapshot| {
        if resized.swap(false, Ordering::Relaxed) {
            terminal.size = Terminal::query_size();
        }
        let (width, height) = terminal.size;
        terminal.draw(&pollen::ui::render(snapshot, width, height));
    })
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let mut stdout = io::stdout().lock();
        let _ = stdout.write_all(LEAVE.as_bytes());
        let _ = stdout.flush();
        if let Some(saved) = &self.saved {
            let _ = stty(&[saved.as_str()]);
        }
    }
}
