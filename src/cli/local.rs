//! Local mode (SPEC §5): the store (`--store`, or the embedded one in `--state-dir`), the
//! caller's identity from
//! `--as` (default: the operating-system user), the configuration file (`--config`), and
//! finding a migration by id or prefix.

use super::{error, exit};
use crate::config::Config;
use crate::event::MigrationId;
use crate::store::{DB_FILE, Durability, Location, Migration, Store};
use std::path::PathBuf;

/// Flags every local command shares.
#[derive(Debug, Clone, clap::Args)]
pub struct Local {
    /// The state directory holding the embedded store (default: `state_dir` of the
    /// configuration file, else .sensei).
    #[arg(long, value_name = "DIR", env = "SENSEI_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// A PostgreSQL store shared by several servers, e.g. postgres://sensei@db/sensei
    /// (default: `store` of the configuration file, else the state directory's SQLite).
    #[arg(long, value_name = "URL", env = "SENSEI_STORE", hide_env_values = true)]
    pub store: Option<String>,
    /// Who you are, for gates and the audit trail (default: your user name). Local
    /// identities are not authenticated; decisions record that they were local.
    #[arg(long = "as", value_name = "NAME")]
    pub identity: Option<String>,
    /// The configuration file (smtp, alerts, public_url; see docs/alerts.md, "Configuration").
    /// Default: sensei.yaml in the current directory, when it exists.
    #[arg(long, value_name = "FILE", env = "SENSEI_CONFIG")]
    pub config: Option<PathBuf>,
    /// Talk to a Sensei server's REST API instead of the local store (inspecting and
    /// lifecycle commands), e.g. http://127.0.0.1:8080.
    #[arg(long, value_name = "URL", env = "SENSEI_SERVER")]
    pub server: Option<String>,
    /// The bearer token sent to `--server` (one of the server's tokens; see docs/api.md, "Auth").
    #[arg(
        long,
        value_name = "TOKEN",
        env = "SENSEI_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
}

impl Local {
    pub fn identity(&self) -> String {
        self.identity
            .clone()
            .or_else(|| std::env::var("USER").ok())
            .or_else(|| std::env::var("LOGNAME").ok())
            .filter(|s| !s.trim().is_empty())
            .or_else(|| {
                let uid = nix::unistd::getuid();
                nix::unistd::User::from_uid(uid)
                    .ok()
                    .flatten()
                    .map(|u| u.name)
            })
            .unwrap_or_else(|| "unknown".to_owned())
    }

    /// Refuses `--server` (or `SENSEI_SERVER`) for a command that only works on the local
    /// store, rather than silently working locally.
    pub fn local_only(&self, command: &str) -> Result<(), u8> {
        match &self.server {
            Some(url) => {
                error(format!(
                    "`sensei {command}` works on the local store, not through a server ({url}); unset SENSEI_SERVER or drop --server"
                ));
                Err(exit::USAGE)
            }
            None => Ok(()),
        }
    }

    /// The configuration, or says why it cannot be read (a usage error).
    pub fn config(&self) -> Result<Config, u8> {
        Config::load(self.config.as_deref()).map_err(|e| exit::fail(&e))
    }

    /// Where the store is: `--store`, `--state-dir` (or their variables), the
    /// configuration's `store` or `state_dir`, else `.sensei`.
    pub fn location(&self) -> Result<Location, u8> {
        self.config()?
            .store_location(self.store.as_deref(), self.state_dir.as_deref())
            .map_err(|message| {
                error(message);
                exit::USAGE
            })
    }

    /// Opens the store, or says why not (exit code for the failure).
    pub fn open(&self) -> Result<Store, u8> {
        Store::connect(&self.location()?, Durability::Full).map_err(|e| exit::fail(&e))
    }

    /// Opens the store only when it exists: inspecting commands should not create one.
    pub fn open_existing(&self) -> Result<Store, u8> {
        let location = self.location()?;
        if let Location::Dir(dir) = &location
            && !dir.join(DB_FILE).exists()
        {
            error(format!(
                "no migrations in {}: the state directory has no store yet (run `sensei run FILE` first, or pass --state-dir)",
                dir.display()
            ));
            return Err(exit::USAGE);
        }
        Store::connect(&location, Durability::Full).map_err(|e| exit::fail(&e))
    }
}

/// Finds a migration by id or unique prefix (`latest` for the newest).
pub fn find(store: &Store, id: &str) -> Result<Migration, u8> {
    let id = if id == "latest" {
        match store.latest() {
            Ok(Some(id)) => id,
            Ok(None) => {
                error("there are no migrations yet");
                return Err(exit::USAGE);
            }
            Err(e) => return Err(exit::fail(&e)),
        }
    } else {
        store.resolve_id(id).map_err(|e| exit::fail(&e))?
    };
    load(store, &id)
}

pub fn load(store: &Store, id: &MigrationId) -> Result<Migration, u8> {
    match store.migration(id) {
        Ok(Some(m)) => Ok(m),
        Ok(None) => {
            error(format!("no migration {id}"));
            Err(exit::USAGE)
        }
        Err(e) => Err(exit::fail(&e)),
    }
}
