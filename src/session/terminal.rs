//! The terminal under `--tui`: raw keyboard input, the alternate screen,
//! the window size, and putting everything back on exit.
//!
//! Layer 2. Terminal modes are set with `stty` (no terminal crate, no
//! `unsafe`): it changes the settings of the terminal on its standard input,
//! which is ours. The saved settings (`stty -g`) are restored when the
//! [`Terminal`] is dropped, on every exit path that unwinds or returns.

use std::io::{self, Read, Write};
use std::process::{Command, Stdio};

use crate::ui::{ENTER, LEAVE};

/// Size used when `stty size` cannot tell (not a terminal).
const FALLBACK_SIZE: (u16, u16) = (80, 24);

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
    /// single `q` arrives at once, and reads never wait), and switches to
    /// the alternate screen.
    pub fn enter() -> Terminal {
        let saved = stty(&["-g"]);
        if saved.is_some() {
            let _ = stty(&["-icanon", "-echo", "min", "0", "time", "0"]);
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

    /// Reads the keys waiting on standard input (never blocks: `min 0`).
    /// Returns true when the user asked to quit (`q` or Ctrl-C's byte).
    pub fn quit_pressed(&mut self) -> bool {
        let mut buf = [0u8; 64];
        match io::stdin().lock().read(&mut buf) {
            Ok(n) => buf
                .get(..n)
                .unwrap_or_default()
                .iter()
                .any(|&b| b == b'q' || b == b'Q' || b == 3),
            Err(_) => false,
        }
    }
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
