//! `step_env`: which variables of Sensei's environment every step gets besides the fixed
//! list ([`crate::process::INHERITED`]), and the rule that none of them is a secret Sensei
//! itself reads (API tokens, the SMTP password, the CLI's token; a runbook's trigger and
//! alert keys are checked where runbooks are loaded, with [`StepEnvSettings::refuse`]).

use super::Config;
use serde::Deserialize;

/// The variable the CLI reads the bearer token for `--server` from: a secret of Sensei's too.
pub const CLIENT_TOKEN_ENV: &str = "SENSEI_TOKEN";

/// The variable `--store` is read from: a PostgreSQL URL, which may hold its password.
pub const STORE_ENV: &str = "SENSEI_STORE";

/// `step_env: { pass: [NAME, ...] }`: variables of Sensei's environment passed to every step
/// by name, besides the fixed list ([`crate::process::INHERITED`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepEnvSettings {
    #[serde(default)]
    pub pass: Vec<String>,
}

impl StepEnvSettings {
    /// Refuses a pass-through name that is one of `secrets` (name, what it holds): a step
    /// never gets a secret Sensei itself reads.
    pub fn refuse(&self, secrets: &[(String, String)]) -> Result<(), String> {
        for name in &self.pass {
            if let Some((_, what)) = secrets.iter().find(|(secret, _)| secret == name) {
                return Err(format!(
                    "`step_env.pass` names `{name}`, which holds {what}: a step never gets a secret Sensei reads; remove `{name}` from `step_env.pass` (or `--step-env-pass`)"
                ));
            }
        }
        Ok(())
    }

    /// Names that are not environment variable names.
    fn check_names(&self) -> Result<(), String> {
        match self
            .pass
            .iter()
            .find(|n| !crate::runbook::valid_env_name(n))
        {
            Some(name) => Err(format!(
                "`step_env.pass`: `{name}` is not an environment variable name (letters, digits and `_`, not starting with a digit)"
            )),
            None => Ok(()),
        }
    }
}

impl Config {
    /// The environment variables this configuration reads a secret from, each with what
    /// it holds: token values, the SMTP password, the CLI's `SENSEI_TOKEN`, and the store's
    /// URL (`SENSEI_STORE`).
    pub fn secret_envs(&self) -> Vec<(String, String)> {
        let mut secrets = vec![
            (
                CLIENT_TOKEN_ENV.to_owned(),
                "the bearer token the CLI sends to `--server`".to_owned(),
            ),
            (
                STORE_ENV.to_owned(),
                "the store's URL, which may hold its password (`--store`)".to_owned(),
            ),
        ];
        for token in self.tokens.iter().flatten() {
            if let Some(var) = token.get("token_env").and_then(|v| v.as_str()) {
                let name = token.get("name").and_then(|v| v.as_str()).unwrap_or("?");
                secrets.push((var.to_owned(), format!("the API token `{name}` (`tokens`)")));
            }
        }
        if let Some(var) = self.smtp.as_ref().and_then(|s| s.password_env.as_ref()) {
            secrets.push((
                var.clone(),
                "the SMTP password (`smtp.password_env`)".to_owned(),
            ));
        }
        secrets
    }

    /// Checks `step_env` against the rest: valid names, none of them a secret this
    /// configuration reads, and no secret kept in a variable every step inherits.
    pub fn check_step_env(&self) -> Result<(), String> {
        self.step_env.check_names()?;
        let secrets = self.secret_envs();
        self.step_env.refuse(&secrets)?;
        match secrets
            .iter()
            .find(|(name, _)| crate::process::always_inherited(name))
        {
            Some((name, what)) => Err(format!(
                "`{name}` holds {what}, but every step inherits `{name}`: keep the secret in a variable of its own"
            )),
            None => Ok(()),
        }
    }

    /// What step processes inherit from this process's environment under this
    /// configuration.
    pub fn inherited_env(&self) -> crate::process::Inherited {
        crate::process::Inherited::from_process(&self.step_env.pass)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::path::Path;

    fn parse(text: &str) -> Result<Config, crate::config::ConfigError> {
        Config::parse(Path::new("sensei.yaml"), text)
    }

    #[test]
    fn step_env_passes_names_but_never_a_secret_sensei_reads() {
        let config = parse("step_env: { pass: [PGHOST, PGUSER] }\n").unwrap();
        assert_eq!(config.step_env.pass, ["PGHOST", "PGUSER"]);
        let refused = |text: &str| parse(text).unwrap_err().to_string();
        let err = refused(
            "smtp: { host: h, from: a@b, password_env: MAIL_PW }\nstep_env: { pass: [MAIL_PW] }\n",
        );
        assert!(
            err.starts_with("sensei.yaml: `step_env.pass` names `MAIL_PW`, which holds the SMTP password (`smtp.password_env`)"),
            "{err}"
        );
        let err = refused("tokens:\n  - { name: a, roles: [admin], token_env: HOME }\n");
        assert!(
            err.contains(
                "`HOME` holds the API token `a` (`tokens`), but every step inherits `HOME`"
            ),
            "{err}"
        );
        let err = refused("step_env: { pass: [SENSEI_STORE] }\n");
        assert!(
            err.contains("`SENSEI_STORE`, which holds the store's URL"),
            "{err}"
        );
        let err = refused("step_env: { pass: [PGHOST], keep: [X] }\n");
        assert!(err.starts_with("sensei.yaml:1:"), "{err}");
    }
}
