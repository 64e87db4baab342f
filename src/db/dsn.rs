//! Connection URLs (DSNs) of `sql` steps: which engine a URL names, and the password in it.
//!
//! A DSN's password is a secret wherever the URL goes. This module is the one place that
//! finds it: in the user part (`postgres://app:PASSWORD@db/orders`, percent-encoded or not)
//! and in a `password=` query parameter; [`Dsn::secrets`] gives every form in which a
//! message could quote it, and [`Dsn::redacted`] the URL as it may be shown. It reads text
//! only (no driver), so the runbook checks, the plan and the engine all use it.

use percent_encoding::percent_decode_str;

/// The database engines `sql` steps speak to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    Postgres,
    Mysql,
}

impl Engine {
    /// How messages name it.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Postgres => "PostgreSQL",
            Engine::Mysql => "MySQL/MariaDB",
        }
    }
}

/// The URL schemes a DSN may have, with their engines.
pub const SCHEMES: &[(&str, Engine)] = &[
    ("postgres", Engine::Postgres),
    ("postgresql", Engine::Postgres),
    ("mysql", Engine::Mysql),
    ("mariadb", Engine::Mysql),
];

/// What is wrong with a DSN. The messages never quote the URL: it may hold a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DsnError {
    #[error("the DSN is not a URL with a scheme")]
    NoScheme,
    #[error("the DSN's scheme `{0}` is not a database this version of sensei speaks to")]
    UnknownScheme(String),
    #[error("the DSN is not a valid URL: {0}")]
    Invalid(String),
}

impl DsnError {
    /// How to fix it.
    pub fn hint(&self) -> &'static str {
        match self {
            DsnError::NoScheme | DsnError::UnknownScheme(_) => {
                "write `postgres://user:password@host:5432/db` (or `postgresql://`) for PostgreSQL, `mysql://user:password@host:3306/db` (or `mariadb://`) for MySQL or MariaDB"
            }
            DsnError::Invalid(_) => {
                "a DSN is a URL: `postgres://user:password@host:5432/db?sslmode=require`; percent-encode `@`, `:` and `/` inside the user or password (`%40`, `%3A`, `%2F`)"
            }
        }
    }
}

/// A parsed DSN.
#[derive(Clone)]
pub struct Dsn {
    pub engine: Engine,
    url: url::Url,
}

impl std::fmt::Debug for Dsn {
    // Never the password, not even in a debug dump.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dsn")
            .field("engine", &self.engine)
            .field("url", &self.redacted())
            .finish()
    }
}

/// The engine a DSN's scheme names, looking at the scheme alone (a template may follow it).
pub fn engine_of(text: &str) -> Result<Engine, DsnError> {
    let Some((scheme, _)) = text.trim().split_once("://") else {
        return Err(DsnError::NoScheme);
    };
    let scheme = scheme.to_ascii_lowercase();
    SCHEMES
        .iter()
        .find(|(s, _)| *s == scheme)
        .map(|(_, engine)| *engine)
        .ok_or(DsnError::UnknownScheme(scheme))
}

impl Dsn {
    pub fn parse(text: &str) -> Result<Dsn, DsnError> {
        let engine = engine_of(text)?;
        let url = url::Url::parse(text.trim()).map_err(|e| DsnError::Invalid(e.to_string()))?;
        Ok(Dsn { engine, url })
    }

    /// The URL as the driver takes it.
    pub fn as_str(&self) -> &str {
        self.url.as_str()
    }

    /// Every form of the password a message could quote: as written (percent-encoded), as
    /// decoded, and the value of a `password=` parameter. Empty when there is no password.
    pub fn secrets(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(written) = self.url.password() {
            out.push(written.to_owned());
            out.push(percent_decode_str(written).decode_utf8_lossy().into_owned());
        }
        for (key, value) in self.url.query_pairs() {
            if key == "password" {
                out.push(value.into_owned());
            }
        }
        for (key, value) in raw_query_pairs(&self.url) {
            if key == "password" {
                out.push(value.to_owned());
            }
        }
        out.retain(|s| !s.is_empty());
        out.sort();
        out.dedup();
        out
    }

    /// The URL with its password shown as `***`: `postgres://app:***@db:5432/orders`.
    pub fn redacted(&self) -> String {
        let mut shown = self.url.clone();
        if shown.password().is_some() {
            let _ = shown.set_password(Some(crate::runbook::render::MASK));
        }
        if shown.query_pairs().any(|(k, _)| k == "password") {
            let pairs: Vec<(String, String)> = shown
                .query_pairs()
                .map(|(k, v)| {
                    let v = if k == "password" {
                        crate::runbook::render::MASK.to_owned()
                    } else {
                        v.into_owned()
                    };
                    (k.into_owned(), v)
                })
                .collect();
            shown.query_pairs_mut().clear().extend_pairs(pairs);
        }
        shown.to_string()
    }

    /// Where it connects, for logs: `db:5432/orders as app`.
    pub fn target(&self) -> String {
        let host = self.url.host_str().unwrap_or("localhost");
        let port = self.url.port().map(|p| format!(":{p}")).unwrap_or_default();
        let db = self.url.path().trim_start_matches('/');
        let user = percent_decode_str(self.url.username()).decode_utf8_lossy();
        let user = if user.is_empty() {
            String::new()
        } else {
            format!(" as {user}")
        };
        format!("{host}{port}/{db}{user}")
    }
}

/// The query's pairs as written (not percent-decoded): a password written encoded in a
/// parameter is quoted that way too.
fn raw_query_pairs(url: &url::Url) -> Vec<(&str, &str)> {
    url.query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .collect()
}

/// The password forms of `text` if it is a database URL (see [`Dsn::secrets`]); nothing
/// for any other text. Used on every string a runbook's params and lists hold, so that a
/// DSN passed as a plain param is still masked.
pub fn secrets_in(text: &str) -> Vec<String> {
    if engine_of(text).is_err() {
        return Vec::new();
    }
    Dsn::parse(text).map(|d| d.secrets()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheme_names_the_engine_and_others_are_refused() {
        assert_eq!(engine_of("postgres://h/db"), Ok(Engine::Postgres));
        assert_eq!(engine_of("PostgreSQL://h/db"), Ok(Engine::Postgres));
        assert_eq!(engine_of("mysql://h/db"), Ok(Engine::Mysql));
        assert_eq!(engine_of("mariadb://h/db"), Ok(Engine::Mysql));
        assert_eq!(
            engine_of("sqlite://x.db"),
            Err(DsnError::UnknownScheme("sqlite".into()))
        );
        assert_eq!(engine_of("host=db user=app"), Err(DsnError::NoScheme));
    }

    #[test]
    fn every_form_of_the_password_is_a_secret_and_the_url_shows_without_it() {
        let dsn =
            Dsn::parse("postgres://app:p%40ss%2Fw0rd@db.internal:5432/orders?sslmode=require")
                .expect("valid");
        assert_eq!(dsn.engine, Engine::Postgres);
        assert_eq!(dsn.secrets(), ["p%40ss%2Fw0rd", "p@ss/w0rd"]);
        assert_eq!(
            dsn.redacted(),
            "postgres://app:***@db.internal:5432/orders?sslmode=require"
        );
        assert_eq!(dsn.target(), "db.internal:5432/orders as app");
        assert!(!format!("{dsn:?}").contains("w0rd"));

        let dsn = Dsn::parse("mysql://root@127.0.0.1:3306/shop?password=s3cr%21t").expect("ok");
        assert_eq!(dsn.secrets(), ["s3cr!t", "s3cr%21t"]);
        assert!(
            dsn.redacted().ends_with("?password=***"),
            "{}",
            dsn.redacted()
        );
        assert!(
            Dsn::parse("mysql://root@127.0.0.1/shop")
                .expect("ok")
                .secrets()
                .is_empty()
        );
    }

    #[test]
    fn other_text_holds_no_dsn_secret_and_errors_never_quote_the_url() {
        assert!(secrets_in("orders").is_empty());
        assert_eq!(secrets_in("mariadb://u:hunter22@h/db"), ["hunter22"]);
        let err = Dsn::parse("postgres://u:hunter22@[bad/db").expect_err("invalid");
        assert!(!err.to_string().contains("hunter22"));
    }
}
