//! The watchdog that kills step process groups when the engine dies.
//!
//! The engine starts `sensei __reap` once, in its own process group (so a Ctrl-C on the terminal
//! does not reach it), and keeps the write end of its stdin. Before awaiting a step it writes
//! `+<pgid>`, after the group is gone `-<pgid>`. When the engine exits or dies, even by SIGKILL,
//! the kernel closes the pipe; the watchdog reads end of file and kills every group still listed.

use super::ProcessError;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::collections::BTreeSet;
use std::io::{BufRead, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// A handle on the running watchdog; clones share it. When the last clone is dropped the pipe
/// closes, the watchdog kills what is still registered and exits, and the drop waits for it.
#[derive(Debug, Clone)]
pub struct Reaper {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    stdin: Mutex<Option<ChildStdin>>,
    child: Child,
    healthy: AtomicBool,
}

impl Reaper {
    /// Starts the watchdog (normally `sensei __reap`) in its own process group.
    pub fn spawn(program: &Path, args: &[&str]) -> Result<Reaper, ProcessError> {
        // The watchdog needs no environment, and should not hold Sensei's secrets where
        // anything else could read them (`/proc/<pid>/environ`).
        let mut child = Command::new(program)
            .args(args)
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|source| ProcessError::ReaperSpawn {
                program: program.to_owned(),
                source,
            })?;
        let stdin = child.stdin.take();
        Ok(Reaper {
            inner: Arc::new(Inner {
                stdin: Mutex::new(stdin),
                child,
                healthy: AtomicBool::new(true),
            }),
        })
    }

    /// Starts this very binary's watchdog, `sensei __reap` (the CLI's drivers and the
    /// server's alike).
    pub fn spawn_sensei() -> Result<Reaper, ProcessError> {
        let exe = std::env::current_exe().map_err(|source| ProcessError::ReaperSpawn {
            program: PathBuf::from("sensei"),
            source,
        })?;
        Reaper::spawn(&exe, &["__reap"])
    }

    /// Registers a process group to kill if the engine dies.
    pub fn watch(&self, pgid: i32) {
        self.send(&format!("+{pgid}\n"));
    }

    /// Unregisters a process group that no longer exists.
    pub fn unwatch(&self, pgid: i32) {
        self.send(&format!("-{pgid}\n"));
    }

    /// False once a message could not be delivered (the watchdog died): groups started after
    /// that are not killed if the engine dies. The engine may log it or start a new reaper.
    pub fn healthy(&self) -> bool {
        self.inner.healthy.load(Ordering::Relaxed)
    }

    /// The watchdog's process id (also its process group id).
    pub fn id(&self) -> u32 {
        self.inner.child.id()
    }

    fn send(&self, message: &str) {
        let mut stdin = self
            .inner
            .stdin
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // One write of a few bytes: atomic on a pipe, and it cannot block for long because the
        // watchdog does nothing but read.
        let delivered = match stdin.as_mut() {
            Some(pipe) => pipe.write_all(message.as_bytes()).is_ok(),
            None => false,
        };
        if !delivered {
            self.inner.healthy.store(false, Ordering::Relaxed);
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Close the pipe first: that is what tells the watchdog to finish.
        drop(
            self.stdin
                .get_mut()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        let _ = self.child.wait();
    }
}

/// One message from the engine.
#[derive(Debug, PartialEq, Eq)]
enum Message {
    Watch(i32),
    Unwatch(i32),
}

/// Parses `+<pgid>` or `-<pgid>`. Group ids 0 and 1 are refused: `killpg(0)` would be the
/// watchdog's own group, and 1 is init's.
fn parse(line: &str) -> Option<Message> {
    let line = line.trim();
    let (sign, number) = line.split_at_checked(1)?;
    let pgid: i32 = number.parse().ok().filter(|&pgid| pgid > 1)?;
    match sign {
        "+" => Some(Message::Watch(pgid)),
        "-" => Some(Message::Unwatch(pgid)),
        _ => None,
    }
}

/// The body of `sensei __reap`: tracks the groups named on `input`; at its end (the engine
/// exited or died) sends SIGKILL to every group still tracked. Returns the exit code, 0.
pub fn reap_main(input: impl BufRead) -> i32 {
    let mut groups = BTreeSet::new();
    // A read error is treated like the end of input: the engine is gone either way.
    for line in input.lines().map_while(Result::ok) {
        match parse(&line) {
            Some(Message::Watch(pgid)) => {
                groups.insert(pgid);
            }
            Some(Message::Unwatch(pgid)) => {
                groups.remove(&pgid);
            }
            None => eprintln!("sensei __reap: ignoring the line `{line}`"),
        }
    }
    for pgid in groups {
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;
    use std::os::unix::process::ExitStatusExt;

    fn sleeper() -> Child {
        Command::new("sleep")
            .arg("300")
            .process_group(0)
            .spawn()
            .expect("spawn sleep")
    }

    fn pgid(child: &Child) -> i32 {
        i32::try_from(child.id()).expect("pid fits i32")
    }

    #[test]
    fn parses_plus_and_minus_and_refuses_everything_else() {
        assert_eq!(parse("+1234"), Some(Message::Watch(1234)));
        assert_eq!(parse("-1234\r"), Some(Message::Unwatch(1234)));
        for bad in [
            "", "+", "1234", "*12", "+12x", "+0", "+1", "+-5", "-1", "+ 12",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn end_of_input_kills_every_watched_group() {
        let mut first = sleeper();
        let mut second = sleeper();
        let input = format!("+{}\nnoise\n+{}\n", pgid(&first), pgid(&second));
        assert_eq!(reap_main(Cursor::new(input)), 0);
        for child in [&mut first, &mut second] {
            let status = child.wait().expect("wait");
            assert_eq!(status.signal(), Some(Signal::SIGKILL as i32));
            assert_eq!(
                killpg(Pid::from_raw(pgid(child)), None),
                Err(nix::errno::Errno::ESRCH)
            );
        }
    }

    #[test]
    fn an_unwatched_group_is_left_alone() {
        let mut child = sleeper();
        let pgid = pgid(&child);
        assert_eq!(reap_main(Cursor::new(format!("+{pgid}\n-{pgid}\n"))), 0);
        // Had the watchdog sent SIGKILL, it would win over this later SIGTERM.
        nix::sys::signal::kill(Pid::from_raw(pgid), Signal::SIGTERM).expect("kill");
        let status = child.wait().expect("wait");
        assert_eq!(status.signal(), Some(Signal::SIGTERM as i32));
    }
}
