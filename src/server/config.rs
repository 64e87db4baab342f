//! The server's settings: the server keys of the shared configuration file
//! ([`crate::config::Config`], SPEC §6: `listen`, `state_dir` or `store`, `lease_time`,
//! `runbooks`, `tokens`),
//! overridden by flags, checked once at start.
//!
//! Paths in the file are taken as local commands take them (relative to the current
//! directory), so `sensei serve` and `sensei status` with the same file use the same state
//! directory. Token secrets never appear in the file itself: a SHA-256 digest, or the name of
//! an environment variable that holds the token.

use super::auth::{Role, TokenError, Tokens};
use crate::config::Config;
use crate::store::Location;
use serde::Deserialize;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

/// Request bodies larger than this get 413 unless configured otherwise.
pub const DEFAULT_BODY_LIMIT: usize = 1 << 20;
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);

/// One bearer token: `{ name, roles, sha256 | token_env }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSpec {
    /// The identity callers with this token have (gate approvers are token names).
    pub name: String,
    pub roles: Vec<Role>,
    /// Hex SHA-256 of the token.
    pub sha256: Option<String>,
    /// An environment variable holding the token itself.
    pub token_env: Option<String>,
}

/// What flags say; each overrides the file's key.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    pub config: Option<PathBuf>,
    pub listen: Option<String>,
    pub state_dir: Option<PathBuf>,
    /// `--store`: a PostgreSQL URL.
    pub store: Option<String>,
    pub runbooks: Option<PathBuf>,
    pub body_limit: Option<usize>,
    pub shutdown_grace: Option<std::time::Duration>,
    /// The file's other keys as flags.
    pub keys: crate::config::KeyFlags,
}

/// Everything the server needs, checked.
#[derive(Debug)]
pub struct Settings {
    pub listen: SocketAddr,
    /// The store: SQLite in a state directory, or PostgreSQL shared with other servers.
    pub store: Location,
    /// How long a driver's lease lasts without renewal (`lease_time`).
    pub lease_time: std::time::Duration,
    pub runbooks: PathBuf,
    /// The runbooks directory was named (flag or file), so it must exist.
    pub runbooks_named: bool,
    pub tokens: Tokens,
    pub body_limit: usize,
    /// How long running steps may take to finish when the server stops.
    pub shutdown_grace: std::time::Duration,
    /// The whole file, for alert delivery (`smtp`, `alerts`, `public_url`).
    pub config: Config,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    File(#[from] crate::config::ConfigError),
    #[error("`tokens`, entry {index}: {message}")]
    TokenEntry { index: usize, message: String },
    #[error(
        "`{0}` is not a listen address; write HOST:PORT with an IP address, like 127.0.0.1:8080"
    )]
    Listen(String),
    #[error(
        "no tokens are configured, so the server only listens on a loopback address and {0} is not one; configure `tokens` in the configuration file, or listen on 127.0.0.1"
    )]
    NotLoopback(SocketAddr),
    #[error("{0}")]
    Store(String),
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("{0}")]
    Flag(String),
    #[error("{0}")]
    StepEnv(String),
}

impl Settings {
    /// Reads the configuration file (the one named, or `sensei.yaml` here when it exists),
    /// applies the flags over it, reads token secrets from the environment, and checks the
    /// whole.
    pub fn resolve(
        flags: &Flags,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Settings, ConfigError> {
        let config = Config::load(flags.config.as_deref())?;
        Settings::from_config(flags, config, env)
    }

    /// The same from a parsed configuration.
    pub fn from_config(
        flags: &Flags,
        mut config: Config,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Settings, ConfigError> {
        flags.keys.apply(&mut config).map_err(ConfigError::Flag)?;
        // Again with the flags' tokens, password variable and pass-through names.
        config.check_step_env().map_err(ConfigError::StepEnv)?;
        config.check_store().map_err(ConfigError::Store)?;
        let store = config
            .store_location(flags.store.as_deref(), flags.state_dir.as_deref())
            .map_err(ConfigError::Store)?;
        let listen = match flags.listen.as_ref().or(config.listen.as_ref()) {
            Some(text) => parse_listen(text)?,
            None => DEFAULT_LISTEN,
        };
        let named = flags.runbooks.clone().or_else(|| config.runbooks.clone());
        let specs = config
            .tokens
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, value)| {
                serde_json::from_value::<TokenSpec>(value.clone()).map_err(|e| {
                    ConfigError::TokenEntry {
                        index: i + 1,
                        message: e.to_string(),
                    }
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let tokens = Tokens::from_specs(&specs, env)?;
        if tokens.is_empty() && !listen.ip().is_loopback() {
            return Err(ConfigError::NotLoopback(listen));
        }
        Ok(Settings {
            listen,
            store,
            lease_time: crate::engine::lease_time(config.lease_time()),
            runbooks_named: named.is_some(),
            runbooks: named.unwrap_or_else(|| PathBuf::from("runbooks")),
            tokens,
            body_limit: flags.body_limit.unwrap_or(DEFAULT_BODY_LIMIT),
            shutdown_grace: flags
                .shutdown_grace
                .unwrap_or(std::time::Duration::from_secs(30)),
            config,
        })
    }
}

/// `HOST:PORT` with an IP address; `localhost:PORT` is 127.0.0.1.
fn parse_listen(text: &str) -> Result<SocketAddr, ConfigError> {
    let text = text.trim();
    let parsed = match text.strip_prefix("localhost:") {
        Some(port) => port
            .parse::<u16>()
            .ok()
            .map(|p| SocketAddr::from((Ipv4Addr::LOCALHOST, p))),
        None => text.parse().ok(),
    };
    parsed.ok_or_else(|| ConfigError::Listen(text.to_owned()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    use std::path::Path;

    fn settings(yaml: &str, flags: &Flags) -> Result<Settings, ConfigError> {
        let config = Config::parse(Path::new("sensei.yaml"), yaml)?;
        Settings::from_config(flags, config, |name| {
            (name == "TOKEN_ALICE").then(|| "alice-secret".to_owned())
        })
    }

    #[test]
    fn the_spec_example_parses_and_flags_win() {
        let yaml = "listen: 0.0.0.0:9000\nstate_dir: .sensei\nrunbooks: ./runbooks\n\
            smtp: { host: 127.0.0.1, port: 2525, tls: none, from: s@example.com }\n\
            alerts: { allow_private_urls: false, retry_for: 1h }\n\
            public_url: https://sensei.example.com\n\
            tokens:\n  - { name: alice, roles: [approver], token_env: TOKEN_ALICE }\n  \
            - { name: bot, roles: [operator], sha256: 5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8 }\n";
        let s = settings(yaml, &Flags::default()).unwrap();
        assert_eq!(s.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(s.store, Location::Dir(".sensei".into()));
        assert_eq!(s.runbooks, Path::new("./runbooks"));
        assert_eq!(s.tokens.len(), 2);
        let flags = Flags {
            listen: Some("127.0.0.1:7000".into()),
            state_dir: Some("/var/lib/sensei".into()),
            ..Flags::default()
        };
        let s = settings(yaml, &flags).unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:7000");
        assert_eq!(s.store, Location::Dir("/var/lib/sensei".into()));
    }

    #[test]
    fn without_tokens_only_loopback() {
        let err = settings("listen: 0.0.0.0:8080\n", &Flags::default())
            .err()
            .map(|e| e.to_string())
            .unwrap();
        assert!(err.contains("0.0.0.0:8080 is not one"), "{err}");
        assert!(settings("listen: localhost:8081\n", &Flags::default()).is_ok());
        assert!(settings("", &Flags::default()).is_ok());
    }

    #[test]
    fn unknown_keys_and_roles_are_errors_with_positions() {
        let err = settings("listne: 1\n", &Flags::default()).err().unwrap();
        assert!(err.to_string().starts_with("sensei.yaml:1:1: "), "{err}");
        let err = settings(
            "tokens:\n  - { name: a, roles: [root], sha256: ab }\n",
            &Flags::default(),
        )
        .err()
        .unwrap();
        assert!(
            err.to_string().starts_with("`tokens`, entry 1: ") && err.to_string().contains("root"),
            "{err}"
        );
    }
}
