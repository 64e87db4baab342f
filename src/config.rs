//! The configuration file (SPEC §6): one YAML file read by `sensei serve` and by local
//! commands alike (`--config FILE`, or `sensei.yaml` in the current directory when it exists).
//!
//! Local commands use `state_dir` or `store` (when `--state-dir` or `--store` is not given),
//! `lease_time`, `smtp`, `alerts`, `public_url` and `step_env`; the server's keys (`listen`,
//! `runbooks`, `tokens`)
//! are accepted here so that one file serves both.
//! Unknown keys are errors (a typo must not silently drop a setting), reported with the
//! file, line and column like every other parse error.

mod step_env;
mod store;

pub use step_env::{CLIENT_TOKEN_ENV, StepEnvSettings};
pub use store::DEFAULT_LEASE_TIME;

use crate::runbook::duration::Duration;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The file looked for in the current directory when `--config` is not given.
pub const DEFAULT_FILE: &str = "sensei.yaml";

/// The largest configuration file read.
const MAX_BYTES: usize = 1 << 20;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The server's address.
    pub listen: Option<String>,
    pub state_dir: Option<PathBuf>,
    /// `postgres://...` for a store shared by several servers (`store`).
    pub store: Option<String>,
    /// How long a driver's lease lasts without renewal (default 15s).
    pub lease_time: Option<Duration>,
    pub runbooks: Option<PathBuf>,
    /// The mail server alerts are sent through.
    pub smtp: Option<Smtp>,
    #[serde(default)]
    pub alerts: AlertSettings,
    /// The base URL links in alerts point to.
    pub public_url: Option<String>,
    /// Bearer tokens of the server (checked by the server).
    pub tokens: Option<Vec<serde_json::Value>>,
    /// What step processes get of Sensei's environment besides the fixed list.
    #[serde(default)]
    pub step_env: StepEnvSettings,
}

/// `smtp: { host, port, tls, from, username, password_env, ca_file }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Smtp {
    pub host: String,
    /// Default: 25 with `tls: none`, 587 with `starttls`, 465 with `tls`.
    pub port: Option<u16>,
    #[serde(default)]
    pub tls: Tls,
    /// The sender address.
    pub from: String,
    pub username: Option<String>,
    /// The environment variable holding the password (never the password itself).
    pub password_env: Option<String>,
    /// A PEM file of CA certificates trusted in addition to the built-in roots (a relay with
    /// a private CA); a relative path is relative to the current directory, like `state_dir`.
    pub ca_file: Option<PathBuf>,
}

impl Smtp {
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.tls {
            Tls::None => 25,
            Tls::Starttls => 587,
            Tls::Tls => 465,
        })
    }
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tls {
    /// Plain text (a relay on the same host or network).
    None,
    /// Plain connection upgraded with STARTTLS, which is required.
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS).
    Tls,
}

/// `alerts: { ... }`: how deliveries are made and retried.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertSettings {
    /// Webhook URLs that resolve to loopback, private or link-local addresses are refused
    /// unless this is true (against SSRF through runbooks).
    pub allow_private_urls: bool,
    /// How long a delivery is retried before it is recorded as failed.
    pub retry_for: Duration,
    /// The first retry's delay; each next one doubles, up to `max_backoff` (with jitter).
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// The longest one attempt (an SMTP session, an HTTP request) may take.
    pub timeout: Duration,
    /// How long `sensei run` (and the other driving commands) wait for their alerts to be
    /// delivered before they exit: briefly by default, so an unreachable endpoint does not
    /// hold an operator's terminal; what is left stays in the outbox.
    pub wait_on_exit: Duration,
}

impl Default for AlertSettings {
    fn default() -> Self {
        AlertSettings {
            allow_private_urls: false,
            retry_for: Duration::from_secs(3600),
            backoff: Duration::from_secs(10),
            max_backoff: Duration::from_secs(600),
            timeout: Duration::from_secs(10),
            wait_on_exit: Duration::from_secs(2),
        }
    }
}

/// A configuration file that could not be read or parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration file {}: {reason}", path.display())]
    Read { path: PathBuf, reason: String },
    #[error("{}{}: {message}", path.display(), at.map(|(l, c)| format!(":{l}:{c}")).unwrap_or_default())]
    Invalid {
        path: PathBuf,
        /// Line and column, 1-based.
        at: Option<(usize, usize)>,
        message: String,
    },
}

impl Config {
    /// The configuration named by `--config`, or `sensei.yaml` in the current directory when
    /// it exists, or the defaults.
    pub fn load(explicit: Option<&Path>) -> Result<Config, ConfigError> {
        match explicit {
            Some(path) => Config::from_file(path),
            None if Path::new(DEFAULT_FILE).is_file() => Config::from_file(Path::new(DEFAULT_FILE)),
            None => Ok(Config::default()),
        }
    }

    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let config = Config::parse(path, &text)?;
        // A CA file that cannot be used is said now, naming both files, rather than on the
        // first delivery.
        if let Some(smtp) = &config.smtp
            && smtp.ca_file.is_some()
        {
            crate::alert::email::tls_parameters(smtp).map_err(|message| ConfigError::Invalid {
                path: path.to_path_buf(),
                at: None,
                message,
            })?;
        }
        Ok(config)
    }

    /// Parses configuration text; `path` names it in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let invalid = |at, message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            at,
            message,
        };
        if text.len() > MAX_BYTES {
            return Err(invalid(None, "the file is larger than 1 MiB".into()));
        }
        if text.lines().all(|l| {
            let t = l.trim();
            t.is_empty() || t.starts_with('#') || t == "---"
        }) {
            return Ok(Config::default());
        }
        let options = serde_saphyr::options! {
            budget: serde_saphyr::budget! {
                max_depth: 32,
                max_aliases: 100,
                max_anchors: 100,
                max_documents: 1,
                max_total_scalar_bytes: MAX_BYTES,
            },
            strict_booleans: true,
            with_snippet: false,
        };
        let config: Config = serde_saphyr::from_str_with_options(text, options).map_err(|e| {
            let at = e
                .location()
                .map(|l| (l.line() as usize, l.column() as usize));
            let message = e.without_snippet().to_string();
            let message = match message.rfind(" at line ") {
                Some(cut) => message[..cut].to_owned(),
                None => message,
            };
            invalid(at, message)
        })?;
        if let Some(url) = &config.public_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err(invalid(
                None,
                format!("`public_url` must be an http(s) URL, not `{url}`"),
            ));
        }
        config
            .check_step_env()
            .map_err(|message| invalid(None, message))?;
        config
            .check_store()
            .map_err(|message| invalid(None, message))?;
        Ok(config)
    }

    /// The link to a migration in alerts, when `public_url` is set.
    pub fn migration_link(&self, id: &str) -> Option<String> {
        let base = self.public_url.as_deref()?.trim_end_matches('/');
        Some(format!("{base}/v1/migrations/{id}"))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("sensei.yaml"), text)
    }

    #[test]
    fn the_spec_example_parses() {
        let config = parse(
            "listen: 127.0.0.1:8080
state_dir: .sensei
runbooks: ./runbooks
smtp: { host: 127.0.0.1, port: 2525, tls: none, from: sensei@example.com, username: ops, password_env: SMTP_PASSWORD }
alerts: { allow_private_urls: false, retry_for: 1h }   # comment
public_url: https://sensei.example.com
tokens:
  - { name: alice, roles: [approver], token_env: SENSEI_TOKEN_ALICE }
",
        )
        .unwrap();
        let smtp = config.smtp.as_ref().unwrap();
        assert_eq!((smtp.port(), smtp.tls), (2525, Tls::None));
        assert_eq!(config.alerts.retry_for.as_millis(), 3_600_000);
        assert_eq!(config.alerts.wait_on_exit.as_millis(), 2_000);
        assert_eq!(
            config.migration_link("m-1").as_deref(),
            Some("https://sensei.example.com/v1/migrations/m-1")
        );
    }

    #[test]
    fn errors_name_the_file_line_and_column() {
        let err = parse("alerts:\n  retry_four: 1h\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("sensei.yaml:2:3: "), "{err}");
        assert!(err.contains("retry_four"), "{err}");
        let err = parse("smtp: { host: h, from: a@b, tls: ssl }\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("sensei.yaml:1:"), "{err}");
        let err = parse("alerts: { retry_for: soon }\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("soon"), "{err}");
    }

    #[test]
    fn an_empty_file_is_the_defaults() {
        let config = parse("# nothing yet\n").unwrap();
        assert!(config.smtp.is_none());
        assert!(!config.alerts.allow_private_urls);
    }
}

/// The configuration keys as `sensei serve` flags (SPEC §6: every key is also a flag); a
/// flag wins over the file.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct KeyFlags {
    /// `public_url`: the base URL links in alerts point to.
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// `alerts.allow_private_urls`: allow webhook URLs on loopback and private networks.
    #[arg(long)]
    pub allow_private_urls: bool,
    /// `lease_time`: how long a driver's lease lasts without renewal (default 15s).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub lease_time: Option<Duration>,
    /// `alerts.retry_for`: how long a delivery is retried (e.g. 1h).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub alerts_retry_for: Option<Duration>,
    /// `smtp.host` (with `--smtp-from`, enough to send email).
    #[arg(long, value_name = "HOST")]
    pub smtp_host: Option<String>,
    /// `smtp.port`.
    #[arg(long, value_name = "PORT")]
    pub smtp_port: Option<u16>,
    /// `smtp.tls`: none, starttls or tls.
    #[arg(long, value_name = "MODE", value_parser = ["none", "starttls", "tls"])]
    pub smtp_tls: Option<String>,
    /// `smtp.from`: the sender address.
    #[arg(long, value_name = "ADDRESS")]
    pub smtp_from: Option<String>,
    /// `smtp.username`.
    #[arg(long, value_name = "NAME")]
    pub smtp_username: Option<String>,
    /// `smtp.password_env`: the environment variable holding the SMTP password.
    #[arg(long, value_name = "VAR")]
    pub smtp_password_env: Option<String>,
    /// `smtp.ca_file`: extra CA certificates (PEM) to trust.
    #[arg(long, value_name = "FILE")]
    pub smtp_ca_file: Option<PathBuf>,
    /// A `tokens` entry, as comma-separated `key=value` pairs:
    /// `name=alice,roles=approver+viewer,token_env=SENSEI_TOKEN_ALICE` (or `sha256=<hex>`).
    /// Repeatable; added to the file's tokens.
    #[arg(long = "token-entry", value_name = "ENTRY")]
    pub tokens: Vec<String>,
    /// A `step_env.pass` entry: a variable of this environment passed to every step.
    /// Repeatable; added to the file's list.
    #[arg(long = "step-env-pass", value_name = "VAR")]
    pub step_env_pass: Vec<String>,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    Duration::parse(text).map_err(|e| e.to_string())
}

impl KeyFlags {
    /// Applies the flags over a loaded configuration.
    pub fn apply(&self, config: &mut Config) -> Result<(), String> {
        if let Some(url) = &self.public_url {
            config.public_url = Some(url.clone());
        }
        if self.allow_private_urls {
            config.alerts.allow_private_urls = true;
        }
        if let Some(d) = self.lease_time {
            config.lease_time = Some(d);
        }
        if let Some(d) = self.alerts_retry_for {
            config.alerts.retry_for = d;
        }
        self.apply_smtp(config)?;
        for entry in &self.tokens {
            let mut object = serde_json::Map::new();
            for pair in entry.split(',').filter(|p| !p.trim().is_empty()) {
                let (key, value) = pair.split_once('=').ok_or_else(|| {
                    format!("--token-entry `{entry}`: `{pair}` is not key=value (e.g. name=alice,roles=approver,token_env=VAR)")
                })?;
                let value = match key.trim() {
                    "roles" => {
                        serde_json::json!(value.split('+').map(str::trim).collect::<Vec<_>>())
                    }
                    _ => serde_json::json!(value.trim()),
                };
                object.insert(key.trim().to_owned(), value);
            }
            config
                .tokens
                .get_or_insert_with(Vec::new)
                .push(serde_json::Value::Object(object));
        }
        config
            .step_env
            .pass
            .extend(self.step_env_pass.iter().cloned());
        Ok(())
    }

    fn apply_smtp(&self, config: &mut Config) -> Result<(), String> {
        let any = self.smtp_host.is_some()
            || self.smtp_port.is_some()
            || self.smtp_tls.is_some()
            || self.smtp_from.is_some()
            || self.smtp_username.is_some()
            || self.smtp_password_env.is_some()
            || self.smtp_ca_file.is_some();
        if !any {
            return Ok(());
        }
        let smtp = match config.smtp.take() {
            Some(smtp) => smtp,
            None => Smtp {
                host: self
                    .smtp_host
                    .clone()
                    .ok_or("--smtp-* flags need --smtp-host (or `smtp.host` in the file)")?,
                port: None,
                tls: Tls::default(),
                from: self
                    .smtp_from
                    .clone()
                    .ok_or("--smtp-* flags need --smtp-from (or `smtp.from` in the file)")?,
                username: None,
                password_env: None,
                ca_file: None,
            },
        };
        let tls = match self.smtp_tls.as_deref() {
            Some("none") => Tls::None,
            Some("tls") => Tls::Tls,
            Some(_) => Tls::Starttls,
            None => smtp.tls,
        };
        config.smtp = Some(Smtp {
            host: self.smtp_host.clone().unwrap_or(smtp.host),
            port: self.smtp_port.or(smtp.port),
            tls,
            from: self.smtp_from.clone().unwrap_or(smtp.from),
            username: self.smtp_username.clone().or(smtp.username),
            password_env: self.smtp_password_env.clone().or(smtp.password_env),
            ca_file: self.smtp_ca_file.clone().or(smtp.ca_file),
        });
        Ok(())
    }
}
