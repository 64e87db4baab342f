//! This host and its processes: its name, and whether a process it runs is the one some
//! record names. A pid alone is not enough, since pids are reused: a process is its pid and
//! its start time (clock ticks since boot, from /proc). Leases (a driver) and step process
//! records (a step's process group) both identify processes this way.

/// The host name: the kernel's, or `$HOSTNAME`, or `localhost`.
pub fn name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Reads /proc/<pid>/stat: `Ok(None)` when the process is gone (or a zombie), `Ok(Some(start))`
/// when it runs, `Err` when /proc cannot tell.
fn proc_start(pid: u32) -> Result<Option<u64>, ()> {
    let stat = i32::try_from(pid).ok().and_then(Stat::read);
    match stat {
        Some(stat) if !stat.zombie => Ok(Some(stat.start)),
        Some(_) => Ok(None),
        None if std::path::Path::new("/proc/self/stat").exists() => Ok(None),
        None => Err(()),
    }
}

/// The start time of a running process, if /proc tells it.
pub fn start_of(pid: u32) -> Option<u64> {
    proc_start(pid).ok().flatten()
}

/// Whether the process `pid` that started at `start` (when known) still runs: `None` when
/// /proc cannot tell.
pub fn alive(pid: u32, start: Option<u64>) -> Option<bool> {
    match proc_start(pid) {
        Ok(None) => Some(false),
        Ok(Some(now)) => Some(start.is_none_or(|s| s == now)),
        Err(()) => None,
    }
}

/// Whether the process group `pgid`, whose leader started at `start`, still has a live
/// member (zombies do not count: they run nothing, and may never be reaped where PID 1 does
/// not reap). A group id stays taken while any member lives, so once the leader is gone a
/// live group with that id can only be the same one; while the leader runs, its start time
/// must be the recorded one (a reused id otherwise).
pub fn group_alive(pgid: i32, start: Option<u64>) -> bool {
    if pgid <= 1 {
        return false;
    }
    let Ok(entries) = std::fs::read_dir("/proc") else {
        // No /proc: the kernel can still say whether the group exists.
        use nix::sys::signal::killpg;
        return killpg(nix::unistd::Pid::from_raw(pgid), None).is_ok();
    };
    let mut alive = false;
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Some(stat) = Stat::read(pid) else {
            continue;
        };
        if stat.pgrp != pgid || stat.zombie {
            continue;
        }
        if pid == pgid && start.is_some_and(|s| s != stat.start) {
            return false; // another process leads a group with the recorded id
        }
        alive = true;
    }
    alive
}

/// The fields of /proc/<pid>/stat this module reads.
struct Stat {
    zombie: bool,
    pgrp: i32,
    start: u64,
}

impl Stat {
    fn read(pid: i32) -> Option<Stat> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name (field 2) may hold spaces and parentheses: parse after the last ')'.
        let rest = stat.rsplit_once(')')?.1;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        Some(Stat {
            // fields[0] is field 3 (the state), fields[2] field 5 (pgrp), fields[19] field 22.
            zombie: matches!(fields.first(), Some(&"Z") | Some(&"X")),
            pgrp: fields.get(2)?.parse().ok()?,
            start: fields.get(19)?.parse().ok()?,
        })
    }
}
