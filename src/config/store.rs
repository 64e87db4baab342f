//! Where the store is (`store`, `state_dir`) and how long a driver's lease lasts
//! (`lease_time`): read by local commands and by the server alike, so both find the same
//! store from the same file.

use super::Config;
use crate::store::Location;
use std::path::{Path, PathBuf};

/// A driver's lease when `lease_time` is not set: another server takes a migration over
/// at most this long after its driver's last renewal (SPEC §4).
pub const DEFAULT_LEASE_TIME: std::time::Duration = std::time::Duration::from_secs(15);

/// The shortest and longest lease accepted.
const LEASE_BOUNDS: (u64, u64) = (1_000, 3_600_000);

impl Config {
    /// Where the store is: the flags first (`--store URL`, then `--state-dir DIR`), then
    /// the file's `store`, then its `state_dir`, else `.sensei`.
    pub fn store_location(
        &self,
        store_flag: Option<&str>,
        state_dir_flag: Option<&Path>,
    ) -> Result<Location, String> {
        if let Some(url) = store_flag {
            check_store_url(url, "--store")?;
            return Ok(Location::Postgres(url.to_owned()));
        }
        if let Some(dir) = state_dir_flag {
            return Ok(Location::Dir(dir.to_path_buf()));
        }
        if let Some(url) = &self.store {
            return Ok(Location::Postgres(url.clone()));
        }
        Ok(Location::Dir(
            self.state_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from(".sensei")),
        ))
    }

    /// How long a driver's lease lasts without renewal (`lease_time`, default 15 s).
    pub fn lease_time(&self) -> std::time::Duration {
        self.lease_time.map_or(DEFAULT_LEASE_TIME, |d| {
            std::time::Duration::from_millis(d.as_millis())
        })
    }

    /// `store` and `lease_time` as the file has them, checked.
    pub(crate) fn check_store(&self) -> Result<(), String> {
        if let Some(url) = &self.store {
            check_store_url(url, "`store`")?;
        }
        if let Some(lease) = self.lease_time {
            let ms = lease.as_millis();
            if ms < LEASE_BOUNDS.0 || ms > LEASE_BOUNDS.1 {
                return Err(format!(
                    "`lease_time` must be between 1s and 1h, not {lease}: a shorter lease is lost on every pause of a busy server, a longer one stalls a failover"
                ));
            }
        }
        Ok(())
    }
}

fn check_store_url(url: &str, what: &str) -> Result<(), String> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(());
    }
    Err(format!(
        "{what} must be a postgres:// URL (e.g. postgres://sensei@db.internal/sensei), not `{}`; the embedded SQLite store is the default and lives in `state_dir` (--state-dir)",
        crate::store::redact(url)
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(text: &str) -> Result<Config, super::super::ConfigError> {
        Config::parse(Path::new("sensei.yaml"), text)
    }

    #[test]
    fn flags_win_over_the_file_and_sqlite_is_the_default() {
        let config = parse("store: postgres://db/sensei\nstate_dir: /var/lib/sensei\n").unwrap();
        assert_eq!(
            config.store_location(None, None).unwrap(),
            Location::Postgres("postgres://db/sensei".into())
        );
        assert_eq!(
            config
                .store_location(None, Some(Path::new("here")))
                .unwrap(),
            Location::Dir("here".into())
        );
        assert_eq!(
            config
                .store_location(Some("postgresql://other/s"), Some(Path::new("here")))
                .unwrap(),
            Location::Postgres("postgresql://other/s".into())
        );
        assert_eq!(
            Config::default().store_location(None, None).unwrap(),
            Location::Dir(".sensei".into())
        );
        assert_eq!(Config::default().lease_time(), DEFAULT_LEASE_TIME);
    }

    #[test]
    fn a_store_that_is_not_postgres_and_a_silly_lease_are_refused_in_words() {
        let err = parse("store: mysql://root:hunter2@db/x\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("must be a postgres:// URL"), "{err}");
        assert!(
            !err.contains("hunter2"),
            "a password is never echoed: {err}"
        );
        let err = Config::default()
            .store_location(Some("/tmp/dir"), None)
            .unwrap_err();
        assert!(err.contains("--store must be a postgres:// URL"), "{err}");
        let err = parse("lease_time: 100ms\n").unwrap_err().to_string();
        assert!(err.contains("between 1s and 1h"), "{err}");
        assert_eq!(
            parse("lease_time: 30s\n").unwrap().lease_time(),
            std::time::Duration::from_secs(30)
        );
    }
}
