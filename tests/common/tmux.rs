//! tmux as the terminal of a test: a detached session of a given size runs
//! one shell command; its pane is read back as text; the session is killed
//! when the [`Tmux`] is dropped, so no test leaves one behind.

use std::process::Command;

/// A detached tmux session, killed on drop.
pub struct Tmux {
    name: String,
}

impl Tmux {
    /// Starts session `name`, `cols` x `rows`, running `command` (a shell
    /// command line). `keep` keeps the pane after the command exits, so its
    /// last lines can still be read.
    pub fn start(name: &str, cols: u16, rows: u16, command: &str, keep: bool) -> Tmux {
        let (cols, rows) = (cols.to_string(), rows.to_string());
        let status = Command::new("tmux")
            .args(["new-session", "-d", "-s", name, "-x", &cols, "-y", &rows])
            .arg(command)
            .status()
            .expect("run tmux");
        assert!(status.success(), "tmux new-session failed: {status}");
        let tmux = Tmux {
            name: name.to_string(),
        };
        if keep {
            let _ = Command::new("tmux")
                .args(["set-option", "-t", name, "remain-on-exit", "on"])
                .status();
        }
        tmux
    }

    /// The pane's text. `joined` (`-J`) joins wrapped lines, so a line that
    /// wrapped shows as one line wider than the pane.
    pub fn capture(&self, joined: bool) -> String {
        let mut args = vec!["capture-pane", "-p"];
        if joined {
            args.push("-J");
        }
        let out = Command::new("tmux")
            .args(args)
            .args(["-t", &self.name])
            .output()
            .expect("run tmux");
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// Types `keys` into the pane (tmux key names, e.g. `q` or `C-c`).
    pub fn send_keys(&self, keys: &str) {
        let _ = Command::new("tmux")
            .args(["send-keys", "-t", &self.name, keys])
            .status();
    }

    /// Whether the command in the pane has exited (with `keep`, the pane
    /// stays; tmux's "Pane is dead" text is not always on screen, so ask
    /// tmux itself).
    pub fn pane_dead(&self) -> bool {
        Command::new("tmux")
            .args(["list-panes", "-t", &self.name, "-F", "#{pane_dead}"])
            .output()
            .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "1")
    }

    /// Whether the session still exists (its command has not exited, or
    /// the pane is kept).
    pub fn alive(&self) -> bool {
        Command::new("tmux")
            .args(["has-session", "-t", &self.name])
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.name])
            .status();
    }
}
