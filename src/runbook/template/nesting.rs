//! How deeply a template nests, measured before Handlebars compiles it.
//!
//! Handlebars compiles subexpressions by recursion, and Sensei walks, renders and drops
//! compiled templates by recursion too: `{{not (not (not ...))}}` a few thousand levels deep
//! overflows the stack and aborts the process (a server at about 1,100 levels). So a template
//! is parsed first with Handlebars' own grammar, whose parser guards its stack and hands back
//! a flat token stream, and its depth is counted without recursion.

use handlebars::grammar::{HandlebarsParser, Rule};
use pest::error::InputLocation;
use pest::{Parser, Token};

/// How many blocks, subexpressions and literal lists may enclose one another. Real runbooks
/// use a handful; the bound only has to keep every recursion over a template shallow.
pub const MAX_NESTING: usize = 64;

/// A template nests deeper than [`MAX_NESTING`]: the byte offset where it first does.
#[derive(Debug, PartialEq, Eq)]
pub struct TooDeep {
    pub offset: usize,
}

/// Checks a template's depth. A template that does not parse at all passes: Handlebars
/// reports that itself, in its own words, and compiles nothing.
pub fn check(text: &str) -> Result<(), TooDeep> {
    if bound(text) <= MAX_NESTING {
        return Ok(()); // nearly every template: no second parse
    }
    let pairs = match HandlebarsParser::parse(Rule::handlebars, text) {
        Ok(pairs) => pairs,
        // The parser stops itself when its stack runs low: that is a template too deep.
        Err(e) if e.variant.message().contains("limit reached") => {
            let offset = match e.location {
                InputLocation::Pos(at) | InputLocation::Span((at, _)) => at,
            };
            return Err(TooDeep { offset });
        }
        Err(_) => return Ok(()),
    };
    let mut depth = 0usize;
    for token in pairs.tokens() {
        match token {
            Token::Start { rule, pos } if nests(rule) => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(TooDeep { offset: pos.pos() });
                }
            }
            Token::End { rule, .. } if nests(rule) => depth -= 1,
            _ => {}
        }
    }
    Ok(())
}

/// An upper bound of a template's depth in one pass over its bytes. Every level the grammar
/// nests starts with a character of its own: a `(subexpression`, a `[list`, a block's `#`,
/// an `{object` (a `{` that is not part of a tag's `{{`), and the whole text is one level.
/// Characters in strings and plain text only make the bound larger.
fn bound(text: &str) -> usize {
    let bytes = text.as_bytes();
    let (mut levels, mut i) = (1, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'(' | b'[' | b'#' => levels += 1,
            b'{' if bytes.get(i + 1) == Some(&b'{') => i += 1, // a tag's `{{`
            b'{' => levels += 1,
            _ => {}
        }
        i += 1;
    }
    levels
}

/// The grammar's rules that enclose others: a block's body (`template`, also the whole text),
/// a `(subexpression)`, and list and object literals.
fn nests(rule: Rule) -> bool {
    matches!(
        rule,
        Rule::template | Rule::subexpression | Rule::array_literal | Rule::object_literal
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nots(levels: usize) -> String {
        format!(
            "echo {{{{not {}true{}}}}}",
            "(not ".repeat(levels),
            ")".repeat(levels)
        )
    }

    fn blocks(levels: usize) -> String {
        format!(
            "{}x{}",
            "{{#if a}}".repeat(levels),
            "{{/if}}".repeat(levels)
        )
    }

    #[test]
    fn counts_subexpressions_blocks_and_literals() {
        // The whole text is one level: 63 more fit.
        assert_eq!(check(&nots(MAX_NESTING - 1)), Ok(()));
        assert!(check(&nots(MAX_NESTING)).is_err());
        assert_eq!(check(&blocks(MAX_NESTING - 1)), Ok(()));
        assert!(check(&blocks(MAX_NESTING)).is_err());
        let list = format!("{{{{len {}{}}}}}", "[".repeat(70), "]".repeat(70));
        assert!(check(&list).is_err());
        // Siblings do not add up, and parentheses in strings and plain text are not nesting.
        let siblings = "{{#if a}}x{{/if}}".repeat(200) + &"(".repeat(200);
        assert_eq!(check(&siblings), Ok(()));
        let quoted = format!("{{{{default a \"{}\"}}}}", "(".repeat(200));
        assert_eq!(check(&quoted), Ok(()));
    }

    /// The exact depth, for comparing with the bound.
    fn depth(text: &str) -> usize {
        let pairs = HandlebarsParser::parse(Rule::handlebars, text).expect("parses");
        let (mut depth, mut deepest) = (0usize, 0);
        for token in pairs.tokens() {
            match token {
                Token::Start { rule, .. } if nests(rule) => {
                    depth += 1;
                    deepest = deepest.max(depth);
                }
                Token::End { rule, .. } if nests(rule) => depth -= 1,
                _ => {}
            }
        }
        deepest
    }

    #[test]
    fn the_quick_bound_is_never_below_the_depth() {
        let samples = [
            "plain text".to_owned(),
            "{{params.a}} {{{raw}}} {{~ #if x}}{{len [[1], [2]]}}{{/if}}".to_owned(),
            "{{default a {\"k\": {\"j\": [1]}}}} {{#each t}}{{#with this}}{{x}}{{/with}}{{/each}}"
                .to_owned(),
            "{{x (y (z [1]) {\"a\": 1})}}".to_owned(),
            nots(10),
            blocks(10),
        ];
        for text in &samples {
            assert!(
                bound(text) >= depth(text),
                "{text}: {} < {}",
                bound(text),
                depth(text)
            );
        }
        assert_eq!(bound(&"{{params.a}}\n".repeat(1000)), 1);
    }

    #[test]
    fn points_at_the_level_past_the_limit() {
        let text = nots(100);
        let TooDeep { offset } = check(&text).expect_err("too deep");
        assert_eq!(&text[offset..offset + 5], "(not ");
        assert_eq!(text[..offset].matches('(').count(), MAX_NESTING - 1);
    }

    #[test]
    fn a_template_deep_enough_to_exhaust_the_parser_is_too_deep_not_a_crash() {
        // A server's worker thread has 2 MiB of stack; the parser must stop on its own there.
        let text = nots(200_000);
        let outcome = std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(move || check(&text).is_err())
            .expect("thread")
            .join()
            .expect("no crash");
        assert!(outcome);
    }
}
