//! The process group of one running step: signals go to the whole group, members that were
//! re-parented to the engine are reaped, and a guard kills the group if the run is abandoned
//! (its future dropped), so no step process outlives its owner unnoticed.

use super::Reaper;
use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use std::time::Duration;
use tokio::time::Instant;

/// How long `finish` waits for killed members to disappear before giving up on them (a process
/// in uninterruptible sleep dies only when it wakes; its SIGKILL is already pending).
const GONE_LIMIT: Duration = Duration::from_secs(2);

/// Makes this process the "child subreaper" (Linux): when a step's shell dies, its orphaned
/// children are re-parented to the engine instead of PID 1, so the engine can reap them. Without
/// it a killed tree lingers as zombies wherever PID 1 does not reap (containers without an init),
/// and the group never disappears. Process-wide, set once, on the first `run`.
pub(super) fn adopt_orphans() {
    #[cfg(target_os = "linux")]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // Best effort: without it, only reaping of orphans is lost.
            let _ = nix::sys::prctl::set_child_subreaper(true);
        });
    }
}

/// A step's process group, registered with the reaper for as long as it may exist.
#[derive(Debug)]
pub(super) struct Group<'r> {
    pgid: Pid,
    reaper: Option<&'r Reaper>,
    released: bool,
}

impl<'r> Group<'r> {
    /// Takes ownership of the group `pgid` (the pid of its leader, already spawned).
    pub(super) fn new(pgid: i32, reaper: Option<&'r Reaper>) -> Self {
        if let Some(reaper) = reaper {
            reaper.watch(pgid);
        }
        Group {
            pgid: Pid::from_raw(pgid),
            reaper,
            released: false,
        }
    }

    /// Asks every member to stop (SIGTERM).
    pub(super) fn terminate(&self) {
        let _ = killpg(self.pgid, Signal::SIGTERM);
    }

    /// Kills every member (SIGKILL).
    pub(super) fn kill(&self) {
        let _ = killpg(self.pgid, Signal::SIGKILL);
    }

    /// After the leader has been reaped: kills what is left, reaps members re-parented to us,
    /// waits (bounded) until the group no longer exists, then unregisters it from the reaper.
    /// In the common case (no member left) this is one `killpg` and no wait.
    pub(super) async fn finish(mut self) {
        self.kill();
        let deadline = Instant::now() + GONE_LIMIT;
        let mut pause = Duration::from_millis(1);
        while self.exists() && Instant::now() < deadline {
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(20));
        }
        self.release();
    }

    /// Reaps our zombie children in the group, then asks the kernel whether any member is left.
    /// Only called after the leader was reaped by tokio, so `waitpid` cannot steal its status.
    fn exists(&self) -> bool {
        let members = Pid::from_raw(-self.pgid.as_raw());
        while let Ok(status) = waitpid(members, Some(WaitPidFlag::WNOHANG)) {
            if status == WaitStatus::StillAlive {
                break;
            }
        }
        killpg(self.pgid, None) != Err(Errno::ESRCH)
    }

    fn release(&mut self) {
        self.released = true;
        if let Some(reaper) = self.reaper {
            reaper.unwatch(self.pgid.as_raw());
        }
    }
}

impl Drop for Group<'_> {
    /// The run was abandoned before `finish` (its future dropped). Usually the leader is not
    /// reaped yet, which pins the group id, so the kill cannot reach a stranger; if it was, its
    /// group was already killed when it exited, and this kill follows within microseconds.
    fn drop(&mut self) {
        if !self.released {
            self.kill();
            self.release();
        }
    }
}
