//! Table and column names as a `copy` step writes them, and as they go into SQL: a name is
//! parsed once into its parts (`shop.orders`, `"Order Lines"`, `` `order-lines` ``) and
//! always quoted when it is used, so a name can never become code. An unquoted PostgreSQL
//! name folds to lower case, as the server folds it.

use crate::db::dsn::Engine;

/// A table name: `table` or `schema.table` (a MySQL schema is a database).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name {
    /// The parts, unquoted, as the server stores them.
    pub parts: Vec<String>,
}

impl Name {
    /// Parses a name as written for `engine`; the error says what is wrong with it.
    pub fn parse(text: &str, engine: Engine) -> Result<Name, String> {
        let mut parts = Vec::new();
        let mut chars = text.trim().chars().peekable();
        loop {
            let part = match chars.peek() {
                Some(&q @ ('"' | '`')) => {
                    let wanted = if engine == Engine::Postgres { '"' } else { '`' };
                    if q != wanted {
                        return Err(format!(
                            "{} quotes names with {wanted}, not {q}",
                            engine.name()
                        ));
                    }
                    chars.next();
                    let mut part = String::new();
                    loop {
                        match chars.next() {
                            Some(c) if c == q && chars.peek() == Some(&q) => {
                                chars.next();
                                part.push(q);
                            }
                            Some(c) if c == q => break,
                            Some(c) => part.push(c),
                            None => return Err(format!("a quoted name is not closed ({q})")),
                        }
                    }
                    part
                }
                _ => {
                    let mut part = String::new();
                    while let Some(&c) = chars.peek() {
                        if c.is_alphanumeric() || c == '_' || c == '$' {
                            part.push(c);
                            chars.next();
                        } else {
                            break;
                        }
                    }
                    if engine == Engine::Postgres {
                        part = part.to_lowercase();
                    }
                    part
                }
            };
            if part.is_empty() {
                return Err(
                    "a name is letters, digits, `_` and `$`, or quoted; parts are separated by `.`"
                        .into(),
                );
            }
            parts.push(part);
            match chars.next() {
                None => break,
                Some('.') => continue,
                Some(c) => {
                    return Err(format!(
                        "`{c}` cannot appear in a name unless it is quoted ({})",
                        if engine == Engine::Postgres {
                            "\"...\""
                        } else {
                            "`...`"
                        }
                    ));
                }
            }
        }
        if parts.len() > 2 {
            return Err("a table name is `table` or `schema.table`".into());
        }
        Ok(Name { parts })
    }

    /// The name quoted for `engine`'s SQL.
    pub fn quoted(&self, engine: Engine) -> String {
        self.parts
            .iter()
            .map(|p| quote(p, engine))
            .collect::<Vec<_>>()
            .join(".")
    }

    /// The table's own name (the last part).
    pub fn table(&self) -> &str {
        self.parts.last().map_or("", String::as_str)
    }

    /// The schema, when written.
    pub fn schema(&self) -> Option<&str> {
        (self.parts.len() == 2).then(|| self.parts[0].as_str())
    }
}

/// One identifier quoted for `engine`.
pub fn quote(name: &str, engine: Engine) -> String {
    match engine {
        Engine::Postgres => format!("\"{}\"", name.replace('"', "\"\"")),
        Engine::Mysql => format!("`{}`", name.replace('`', "``")),
    }
}

/// A string literal for the catalog queries (names only: no NUL, no backslash games,
/// since both engines read `''` as a quote).
pub fn literal(text: &str, engine: Engine) -> String {
    let escaped = text.replace('\'', "''");
    match engine {
        Engine::Mysql => format!("'{}'", escaped.replace('\\', "\\\\")),
        Engine::Postgres if text.contains('\\') => format!("E'{}'", escaped.replace('\\', "\\\\")),
        Engine::Postgres => format!("'{escaped}'"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_parsed_once_and_always_quoted() {
        let pg = Name::parse("Shop.Orders", Engine::Postgres).expect("valid");
        assert_eq!(pg.parts, ["shop", "orders"]);
        assert_eq!(pg.quoted(Engine::Postgres), "\"shop\".\"orders\"");
        let quoted = Name::parse("\"Order \"\"Lines\"\"\"", Engine::Postgres).expect("valid");
        assert_eq!(quoted.table(), "Order \"Lines\"");
        assert_eq!(quoted.schema(), None);
        let my = Name::parse("shop.`order-lines`", Engine::Mysql).expect("valid");
        assert_eq!(my.parts, ["shop", "order-lines"]);
        assert_eq!(my.quoted(Engine::Mysql), "`shop`.`order-lines`");
        for bad in ["orders; DROP TABLE x", "a.b.c", "", "\"open", "a..b"] {
            assert!(Name::parse(bad, Engine::Postgres).is_err(), "{bad}");
        }
        assert!(Name::parse("\"x\"", Engine::Mysql).is_err());
    }

    #[test]
    fn literals_keep_quotes_and_backslashes_as_text() {
        assert_eq!(literal("it's", Engine::Postgres), "'it''s'");
        assert_eq!(literal("a\\b", Engine::Postgres), "E'a\\\\b'");
        assert_eq!(literal("a\\'b", Engine::Mysql), "'a\\\\''b'");
    }
}
