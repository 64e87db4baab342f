//! Who calls (SPEC §6): bearer tokens from the configuration, each with a name and roles.
//! Every role may read; `operator` creates migrations and runs lifecycle operations,
//! `approver` decides gates, `admin` does everything. Presented tokens are hashed with
//! SHA-256 and compared with every configured digest in constant time, without stopping at a
//! match. With no tokens configured every caller is `local` with every role (the server then
//! listens on loopback only, which `config` enforces).
//!
//! Handlers state what they need by their extractor: [`Reader`], [`Operator`], [`Approver`].

use super::config::TokenSpec;
use super::error::ApiError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

/// A role a token grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Operator,
    Approver,
    Admin,
}

/// What a call needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    Read,
    /// Create migrations, lifecycle operations.
    Operate,
    /// Decide gates.
    Approve,
    /// What only an admin may do: roll back past a point of no return.
    Administer,
}

impl Permission {
    fn role(self) -> &'static str {
        match self {
            Permission::Read => "viewer",
            Permission::Operate => "operator",
            Permission::Approve => "approver",
            Permission::Administer => "admin",
        }
    }
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Approver => "approver",
            Role::Admin => "admin",
        }
    }

    pub fn grants(self, permission: Permission) -> bool {
        matches!(
            (self, permission),
            (_, Permission::Read)
                | (Role::Admin, _)
                | (Role::Operator, Permission::Operate)
                | (Role::Approver, Permission::Approve)
        )
    }
}

/// The identity of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's name, or `local` without tokens.
    pub name: String,
    pub roles: Vec<Role>,
    /// False for `local`: nobody proved who they are.
    pub authenticated: bool,
}

impl Caller {
    pub fn local() -> Caller {
        Caller {
            name: "local".to_owned(),
            roles: vec![Role::Admin],
            authenticated: false,
        }
    }

    pub fn require(&self, permission: Permission) -> Result<(), ApiError> {
        if self.roles.iter().any(|r| r.grants(permission)) {
            return Ok(());
        }
        Err(ApiError::Forbidden(format!(
            "{} may not do this: it needs the `{}` or `admin` role",
            self.name,
            permission.role()
        )))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token `{0}` needs exactly one of `sha256` and `token_env`")]
    Secret(String),
    #[error(
        "token `{0}`: `sha256` must be 64 hexadecimal digits (the SHA-256 of the token, as `sha256sum` prints it)"
    )]
    Digest(String),
    #[error(
        "tokens `{0}` and `{1}` have the same secret, so a caller with it would be either; give each its own token"
    )]
    SameSecret(String, String),
    #[error("token `{name}`: the environment variable {var} is not set or empty")]
    Env { name: String, var: String },
    #[error("token `{0}` has no roles; give it some of viewer, operator, approver, admin")]
    NoRoles(String),
    #[error("two tokens are named `{0}`; token names are identities and must be unique")]
    Duplicate(String),
    #[error("a token's name must not be empty or `local` (reserved for callers without tokens)")]
    Name,
}

#[derive(Debug, Clone)]
struct Entry {
    name: String,
    roles: Vec<Role>,
    digest: [u8; 32],
}

/// The configured tokens, by digest.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    entries: Vec<Entry>,
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(&Sha256::digest(bytes));
    out
}

/// A configured digest: 64 hex digits in either letter case (`sha256sum` writes lower case,
/// PowerShell's `Get-FileHash` upper case), nothing else. Digests are compared as bytes, so
/// both spellings name the same token.
fn parse_digest(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    let mut out = [0u8; 32];
    if text.len() != 2 * out.len() {
        return None;
    }
    base16ct::mixed::decode(text, &mut out).ok()?;
    Some(out)
}

impl Tokens {
    /// Checks the specs and reads secrets named by `token_env` through `env`.
    pub fn from_specs(
        specs: &[TokenSpec],
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Tokens, TokenError> {
        let mut entries: Vec<Entry> = Vec::new();
        for spec in specs {
            let name = spec.name.trim();
            if name.is_empty() || name == "local" {
                return Err(TokenError::Name);
            }
            if entries.iter().any(|e| e.name == name) {
                return Err(TokenError::Duplicate(name.to_owned()));
            }
            if spec.roles.is_empty() {
                return Err(TokenError::NoRoles(name.to_owned()));
            }
            let digest = match (&spec.sha256, &spec.token_env) {
                (Some(hex), None) => {
                    parse_digest(hex).ok_or_else(|| TokenError::Digest(name.to_owned()))?
                }
                (None, Some(var)) => {
                    let token =
                        env(var)
                            .filter(|t| !t.is_empty())
                            .ok_or_else(|| TokenError::Env {
                                name: name.to_owned(),
                                var: var.clone(),
                            })?;
                    sha256(token.as_bytes())
                }
                _ => return Err(TokenError::Secret(name.to_owned())),
            };
            if let Some(same) = entries.iter().find(|e| e.digest == digest) {
                return Err(TokenError::SameSecret(same.name.clone(), name.to_owned()));
            }
            entries.push(Entry {
                name: name.to_owned(),
                roles: spec.roles.clone(),
                digest,
            });
        }
        Ok(Tokens { entries })
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The caller an `Authorization` header value names.
    pub fn authenticate(&self, header: Option<&[u8]>) -> Result<Caller, ApiError> {
        if self.entries.is_empty() {
            return Ok(Caller::local());
        }
        let Some(header) = header else {
            return Err(ApiError::Unauthorized(
                "this server needs a bearer token: send `Authorization: Bearer TOKEN`".into(),
            ));
        };
        let token = header
            .strip_prefix(b"Bearer ")
            .or_else(|| header.strip_prefix(b"bearer "))
            .ok_or_else(|| {
                ApiError::Unauthorized("the Authorization header must be `Bearer TOKEN`".into())
            })?;
        let presented = sha256(token.trim_ascii());
        // Every entry is compared, and the index chosen without branching on secrets.
        let mut found = subtle::Choice::from(0);
        let mut index = 0u32;
        for (i, entry) in self.entries.iter().enumerate() {
            let same = entry.digest.ct_eq(&presented);
            index.conditional_assign(&(i as u32), same);
            found |= same;
        }
        if !bool::from(found) {
            return Err(ApiError::Unauthorized(
                "the bearer token is not one this server knows".into(),
            ));
        }
        let entry = &self.entries[index as usize];
        Ok(Caller {
            name: entry.name.clone(),
            roles: entry.roles.clone(),
            authenticated: true,
        })
    }
}

macro_rules! permission_extractor {
    ($(#[$meta:meta])* $name:ident, $permission:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone)]
        pub struct $name(pub Caller);

        impl<S: Send + Sync> FromRequestParts<S> for $name {
            type Rejection = ApiError;

            async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
                let caller = parts
                    .extensions
                    .get::<Caller>()
                    .cloned()
                    .ok_or_else(|| ApiError::Internal("the request was not authenticated".into()))?;
                caller.require($permission)?;
                Ok($name(caller))
            }
        }
    };
}

permission_extractor!(
    /// Any authenticated caller.
    Reader,
    Permission::Read
);
permission_extractor!(
    /// A caller who may create migrations and run lifecycle operations.
    Operator,
    Permission::Operate
);
permission_extractor!(
    /// A caller who may decide gates.
    Approver,
    Permission::Approve
);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn tokens() -> Tokens {
        let specs = vec![
            TokenSpec {
                name: "alice".into(),
                roles: vec![Role::Approver],
                sha256: None,
                token_env: Some("A".into()),
            },
            TokenSpec {
                name: "bot".into(),
                roles: vec![Role::Operator],
                // sha256("password")
                sha256: Some(
                    "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8".into(),
                ),
                token_env: None,
            },
        ];
        Tokens::from_specs(&specs, |_| Some("alice-token".into())).unwrap()
    }

    #[test]
    fn tokens_name_their_callers() {
        let t = tokens();
        assert_eq!(
            t.authenticate(Some(b"Bearer password")).unwrap().name,
            "bot"
        );
        assert_eq!(
            t.authenticate(Some(b"Bearer alice-token")).unwrap().name,
            "alice"
        );
        assert!(t.authenticate(Some(b"Bearer nope")).is_err());
        assert!(t.authenticate(Some(b"Basic abc")).is_err());
        assert!(t.authenticate(None).is_err());
        let local = Tokens::default().authenticate(None).unwrap();
        assert_eq!(local, Caller::local());
    }

    fn digest_spec(name: &str, sha256: &str) -> TokenSpec {
        TokenSpec {
            name: name.into(),
            roles: vec![Role::Viewer],
            sha256: Some(sha256.into()),
            token_env: None,
        }
    }

    const PASSWORD: &str = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8";

    #[test]
    fn a_digest_is_64_hex_digits_in_either_case_and_names_one_token() {
        let from = |specs: &[TokenSpec]| Tokens::from_specs(specs, |_| None);
        // Upper or mixed case is the same digest: it authenticates the same token.
        let mixed = format!("{}{}", &PASSWORD[..32], PASSWORD[32..].to_uppercase());
        for digest in [PASSWORD.to_uppercase(), mixed] {
            let t = from(&[digest_spec("bot", &digest)]).unwrap();
            assert_eq!(
                t.authenticate(Some(b"Bearer password")).unwrap().name,
                "bot"
            );
        }
        // `u8::from_str_radix` reads `+e` as 0x0e; a sign is no hex digit. Nor is anything
        // but 64 digits a digest.
        let signed = format!("{}+e{}", &PASSWORD[..2], &PASSWORD[4..]);
        let short = &PASSWORD[..63];
        let long = format!("{PASSWORD}0");
        for bad in [signed.as_str(), short, &long, "sha256:abc", ""] {
            assert_eq!(
                from(&[digest_spec("bot", bad)]).err(),
                Some(TokenError::Digest("bot".into())),
                "{bad}"
            );
        }
        // Two spellings of one digest are one secret, which cannot name two callers.
        let twice = [
            digest_spec("bot", PASSWORD),
            digest_spec("alice", &PASSWORD.to_uppercase()),
        ];
        assert_eq!(
            from(&twice).err(),
            Some(TokenError::SameSecret("bot".into(), "alice".into()))
        );
    }

    #[test]
    fn roles_grant_what_the_spec_says() {
        use Permission::*;
        let grants = |r: Role| [Read, Operate, Approve].map(|p| r.grants(p));
        assert_eq!(grants(Role::Viewer), [true, false, false]);
        assert_eq!(grants(Role::Operator), [true, true, false]);
        assert_eq!(grants(Role::Approver), [true, false, true]);
        assert_eq!(grants(Role::Admin), [true, true, true]);
    }
}
