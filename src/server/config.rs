//! The server's settings: the configuration file's server keys (SPEC §6: `listen`,
//! `state_dir`, `runbooks`, `tokens`), overridden by flags, checked once at start.
//!
//! The file is shared with local commands, so keys other parts of sensei read (`smtp`,
//! `alerts`, `public_url`) are accepted and left alone here; any other key is an error, so a
//! typo cannot silently drop a setting. Relative paths in the file are relative to the file's
//! directory. Token secrets never appear in the file itself: a SHA-256 digest, or the name of
//! an environment variable that holds the token.

use super::auth::{Role, TokenError, Tokens};
use serde::Deserialize;
use serde::de::IgnoredAny;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

/// The file read when `--config` is not given and it exists in the current directory.
pub const DEFAULT_FILE: &str = "sensei.yaml";
/// Request bodies larger than this get 413 unless configured otherwise.
pub const DEFAULT_BODY_LIMIT: usize = 1 << 20;
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);
const MAX_FILE_BYTES: usize = 1 << 20;

/// The configuration file as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub state_dir: Option<PathBuf>,
    /// `postgres://...`: not supported yet; refused with a clear error.
    pub store: Option<String>,
    pub runbooks: Option<PathBuf>,
    pub tokens: Option<Vec<TokenSpec>>,
    /// Read by the alert delivery, not by the server's HTTP side.
    pub smtp: Option<IgnoredAny>,
    pub alerts: Option<IgnoredAny>,
    pub public_url: Option<IgnoredAny>,
}

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
    pub runbooks: Option<PathBuf>,
    pub body_limit: Option<usize>,
}

/// Everything the server needs, checked.
#[derive(Debug)]
pub struct Settings {
    pub listen: SocketAddr,
    pub state_dir: PathBuf,
    pub runbooks: PathBuf,
    /// The runbooks directory was named (flag or file), so it must exist.
    pub runbooks_named: bool,
    pub tokens: Tokens,
    pub body_limit: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration file {}: {reason}", path.display())]
    Read { path: PathBuf, reason: String },
    #[error("{}{}: {message}", path.display(), at.map(|(l, c)| format!(":{l}:{c}")).unwrap_or_default())]
    Invalid {
        path: PathBuf,
        at: Option<(usize, usize)>,
        message: String,
    },
    #[error(
        "`{0}` is not a listen address; write HOST:PORT with an IP address, like 127.0.0.1:8080"
    )]
    Listen(String),
    #[error(
        "no tokens are configured, so the server only listens on a loopback address and {0} is not one; configure `tokens` in the configuration file, or listen on 127.0.0.1"
    )]
    NotLoopback(SocketAddr),
    #[error(
        "`store: {0}` is not supported yet: this server keeps its state in SQLite in `state_dir`"
    )]
    Store(String),
    #[error(transparent)]
    Token(#[from] TokenError),
}

impl FileConfig {
    /// Parses configuration text; `path` names it in errors.
    pub fn parse(path: &Path, text: &str) -> Result<FileConfig, ConfigError> {
        let invalid = |at, message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            at,
            message,
        };
        if text.len() > MAX_FILE_BYTES {
            return Err(invalid(None, "the file is larger than 1 MiB".into()));
        }
        if text.lines().all(|l| {
            let t = l.trim();
            t.is_empty() || t.starts_with('#') || t == "---"
        }) {
            return Ok(FileConfig::default());
        }
        let options = serde_saphyr::options! {
            budget: serde_saphyr::budget! {
                max_depth: 32,
                max_aliases: 100,
                max_anchors: 100,
                max_documents: 1,
                max_total_scalar_bytes: MAX_FILE_BYTES,
            },
            strict_booleans: true,
            with_snippet: false,
        };
        serde_saphyr::from_str_with_options(text, options).map_err(|e| {
            let at = e
                .location()
                .map(|l| (l.line() as usize, l.column() as usize));
            let message = e.without_snippet().to_string();
            let message = match message.rfind(" at line ") {
                Some(cut) => message[..cut].to_owned(),
                None => message,
            };
            invalid(at, message)
        })
    }

    fn read(path: &Path) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        FileConfig::parse(path, &text)
    }
}

impl Settings {
    /// Reads the configuration file (the one named, or `sensei.yaml` here when it exists),
    /// applies the flags over it, reads token secrets from the environment, and checks the
    /// whole.
    pub fn resolve(
        flags: &Flags,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Settings, ConfigError> {
        let path = match &flags.config {
            Some(path) => Some(path.clone()),
            None => Some(PathBuf::from(DEFAULT_FILE)).filter(|p| p.is_file()),
        };
        let (file, base) = match &path {
            Some(path) => (
                FileConfig::read(path)?,
                path.parent().map(Path::to_path_buf).unwrap_or_default(),
            ),
            None => (FileConfig::default(), PathBuf::new()),
        };
        Settings::from_parts(flags, file, &base, env)
    }

    /// The same from a parsed file whose relative paths are relative to `base`.
    pub fn from_parts(
        flags: &Flags,
        file: FileConfig,
        base: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Settings, ConfigError> {
        if let Some(store) = file.store {
            return Err(ConfigError::Store(store));
        }
        let listen = match flags.listen.as_ref().or(file.listen.as_ref()) {
            Some(text) => parse_listen(text)?,
            None => DEFAULT_LISTEN,
        };
        let in_file = |p: Option<PathBuf>| p.map(|p| base.join(p));
        let state_dir = flags
            .state_dir
            .clone()
            .or_else(|| in_file(file.state_dir))
            .unwrap_or_else(|| PathBuf::from(".sensei"));
        let named = flags.runbooks.clone().or_else(|| in_file(file.runbooks));
        let tokens = Tokens::from_specs(&file.tokens.unwrap_or_default(), env)?;
        if tokens.is_empty() && !listen.ip().is_loopback() {
            return Err(ConfigError::NotLoopback(listen));
        }
        Ok(Settings {
            listen,
            state_dir,
            runbooks_named: named.is_some(),
            runbooks: named.unwrap_or_else(|| PathBuf::from("runbooks")),
            tokens,
            body_limit: flags.body_limit.unwrap_or(DEFAULT_BODY_LIMIT),
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

    fn settings(yaml: &str, flags: &Flags) -> Result<Settings, ConfigError> {
        let file = FileConfig::parse(Path::new("sensei.yaml"), yaml)?;
        Settings::from_parts(flags, file, Path::new("/etc/sensei"), |name| {
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
        assert_eq!(s.state_dir, Path::new("/etc/sensei/.sensei"));
        assert_eq!(s.runbooks, Path::new("/etc/sensei/./runbooks"));
        assert_eq!(s.tokens.len(), 2);
        let flags = Flags {
            listen: Some("127.0.0.1:7000".into()),
            state_dir: Some("/var/lib/sensei".into()),
            ..Flags::default()
        };
        let s = settings(yaml, &flags).unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:7000");
        assert_eq!(s.state_dir, Path::new("/var/lib/sensei"));
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
        assert!(err.to_string().contains("root"), "{err}");
    }
}
