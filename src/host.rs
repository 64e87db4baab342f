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
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // The command name (field 2) may hold spaces and parentheses: parse after the last ')'.
            let rest = stat.rsplit_once(')').map(|(_, r)| r).ok_or(())?;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            // fields[0] is field 3 (the state), so field 22 (starttime) is fields[19].
            if matches!(fields.first(), Some(&"Z") | Some(&"X")) {
                return Ok(None);
            }
            Ok(Some(
                fields.get(19).and_then(|s| s.parse().ok()).unwrap_or(0),
            ))
        }
        Err(_) if std::path::Path::new("/proc/self/stat").exists() => Ok(None),
        Err(_) => Err(()),
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

/// Whether the process group `pgid`, whose leader started at `start`, still has members. A
/// group id stays taken while any member lives, so once the leader is gone a live group with
/// that id can only be the same one (unless a new leader took the id, which the start time
/// tells).
pub fn group_alive(pgid: i32, start: Option<u64>) -> bool {
    use nix::sys::signal::killpg;
    use nix::unistd::Pid;
    if pgid <= 1 || killpg(Pid::from_raw(pgid), None).is_err() {
        return false;
    }
    let Ok(pid) = u32::try_from(pgid) else {
        return false;
    };
    match proc_start(pid) {
        // The leader runs: it must be the recorded one.
        Ok(Some(now)) => start.is_none_or(|s| s == now),
        // The leader is gone but members of its group remain.
        Ok(None) | Err(()) => true,
    }
}
