//! Shell escaping: hostile values run through real shells, and the spots that are refused.

use super::*;
use std::path::Path;
use std::process::Command;

/// Runs `script` with `shell -c` in `dir`; its stdout.
fn run(shell: &str, script: &str, dir: &Path) -> String {
    let out = Command::new(shell)
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output()
        .expect("the shell runs");
    assert!(
        out.status.success(),
        "{shell} failed on {script:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn shells() -> Vec<&'static str> {
    ["sh", "bash", "dash"]
        .into_iter()
        .filter(|s| Command::new(s).arg("-c").arg("true").output().is_ok())
        .collect()
}

/// Values that try to break out of their quoting.
const HOSTILE: &[&str] = &[
    "x; touch pwned",
    "$(touch pwned)",
    "`touch pwned`",
    "'",
    "it's",
    "\"",
    "a\"b'c",
    "'; touch pwned; '",
    "\"; touch pwned; \"",
    "\"$(touch pwned)\"",
    "'$(touch pwned)'",
    "\ntouch pwned",
    "a\nb\n",
    "x\r\ntouch pwned",
    "--flag",
    "-n",
    "",
    " ",
    "a b\tc",
    "*",
    "~",
    "{a,b}",
    "$HOME",
    "${HOME}",
    "$((1+1))",
    "\\",
    "\\\\'\"",
    "a\\nb",
    "\\$(touch pwned)",
    "#comment",
    "|touch pwned",
    "&& touch pwned",
    ">pwned",
    "<pwned",
    "ünïcødé ✓",
    "EOF",
    "x\nEOF\ntouch pwned",
    "\tEOF\ntouch pwned",
    "EOF\ntouch pwned",
    "a[$(touch pwned)]",
    "$'\\x27'; touch pwned",
];

/// Templates that print the value `{{params.v}}`: what they print around it, and for a value
/// in a here-document the text before it on its line.
const PRINTERS: &[(&str, &str, &str, Option<&str>)] = &[
    ("printf '%s\\n' {{params.v}}", "", "\n", None),
    ("printf '%s\\n' \"{{params.v}}\"", "", "\n", None),
    ("printf '%s\\n' '{{params.v}}'", "", "\n", None),
    (
        "printf '%s\\n' pre-{{params.v}}-post",
        "pre-",
        "-post\n",
        None,
    ),
    (
        "printf '%s\\n' \"pre {{params.v}} post\"",
        "pre ",
        " post\n",
        None,
    ),
    (
        "printf '%s\\n' \"$(printf '%s' {{params.v}})\"",
        "",
        "\n",
        None,
    ),
    (
        "printf '%s\\n' \"$(printf '%s' \"{{params.v}}\")\"",
        "",
        "\n",
        None,
    ),
    ("v={{params.v}}; printf '%s\\n' \"$v\"", "", "\n", None),
    ("cat <<EOF\n{{params.v}}\nEOF", "", "\n", Some("")),
    ("cat <<'EOF'\n{{params.v}}\nEOF", "", "\n", Some("")),
    (
        "cat <<\"EOF\"\nA {{params.v}} B\nEOF",
        "A ",
        " B\n",
        Some("A "),
    ),
    (
        "cat << EOF\n$(printf '%s' {{params.v}})\nEOF",
        "",
        "\n",
        Some("$(printf '%s' "),
    ),
    (
        "printf '%s\\n' {{params.v}} # trailing comment\ncat <<EOF\n{{params.v}}\nEOF\n",
        "",
        "\n",
        Some(""),
    ),
];

/// A line of the value (with the text around it) equal to `EOF` would end the here-document,
/// and the shell would run the lines after it. (The printers have nothing after the value.)
fn expected_refusal(heredoc_prefix: Option<&str>, value: &str) -> bool {
    let Some(prefix) = heredoc_prefix else {
        return false;
    };
    let suffix = if prefix == "A " {
        " B"
    } else if prefix.starts_with('$') {
        ")"
    } else {
        ""
    };
    format!("{prefix}{value}{suffix}")
        .split('\n')
        .any(|line| line == "EOF")
}

#[test]
fn no_value_can_inject_a_command_or_lose_a_character() {
    let renderer = Renderer::new();
    let shells = shells();
    assert!(!shells.is_empty(), "no shell to test with");
    for &(template, before, after, heredoc) in PRINTERS {
        for &value in HOSTILE {
            let script = match render_with(&renderer, template, &with_value(value), Escape::Shell) {
                Ok(script) => script,
                Err(e) => {
                    assert!(
                        expected_refusal(heredoc, value),
                        "{template:?} refused {value:?}: {e}"
                    );
                    continue;
                }
            };
            assert!(
                !expected_refusal(heredoc, value),
                "{template:?} accepted {value:?}: {script:?}"
            );
            for shell in &shells {
                let dir = tempfile::tempdir().expect("temp dir");
                let printed = run(shell, &script, dir.path());
                let expected = if template.contains("# trailing") {
                    format!("{value}\n{value}\n")
                } else if template.contains("$(printf") {
                    // Command substitution drops trailing newlines.
                    format!("{before}{}{after}", value.trim_end_matches('\n'))
                } else {
                    format!("{before}{value}{after}")
                };
                assert_eq!(
                    printed, expected,
                    "{shell}: {template:?} with {value:?} -> {script:?}"
                );
                let created: Vec<_> = std::fs::read_dir(dir.path()).expect("list").collect();
                assert!(created.is_empty(), "{shell}: {script:?} created files");
            }
        }
    }
}

#[test]
fn a_bare_value_is_one_word_quoted_only_when_needed() {
    let r = Renderer::new();
    let render = |v: &str| {
        render_with(&r, "cmd {{params.v}}", &with_value(v), Escape::Shell).expect("renders")
    };
    assert_eq!(render("orders"), "cmd orders");
    assert_eq!(render("a/b-c_d.e:f,g=h@i%j+k"), "cmd a/b-c_d.e:f,g=h@i%j+k");
    assert_eq!(render("two words"), "cmd 'two words'");
    assert_eq!(render("it's"), r"cmd 'it'\''s'");
    assert_eq!(render(""), "cmd ''");
    assert_eq!(render("$(x)"), "cmd '$(x)'");
    assert_eq!(
        render_with(
            &r,
            "echo \"{{params.v}}\"",
            &with_value("a \"$b\" `c` \\"),
            Escape::Shell
        )
        .expect("renders"),
        r#"echo "a \"\$b\" \`c\` \\""#
    );
}

#[test]
fn shell_values_by_type_and_helper() {
    assert_eq!(
        render(
            "copy.sh --batch {{params.batch_size}} --ratio {{params.ratio}}",
            Escape::Shell
        )
        .expect("renders"),
        "copy.sh --batch 5000 --ratio 0.5"
    );
    // A list is one word: its JSON form. `join` chooses the text.
    assert_eq!(
        render("x {{params.tables}}", Escape::Shell).expect("renders"),
        r#"x '["orders","order_items"]'"#
    );
    assert_eq!(
        render("x {{join params.tables \" \"}}", Escape::Shell).expect("renders"),
        "x 'orders order_items'"
    );
    assert_eq!(
        render("x {{join params.tables \",\"}}", Escape::Shell).expect("renders"),
        "x orders,order_items"
    );
    assert_eq!(
        render("x {{#each params.tables}}{{this}} {{/each}}", Escape::Shell).expect("renders"),
        "x orders order_items "
    );
    assert_eq!(
        render(
            "x {{#each params.tables}}\"{{this}}\" {{/each}}",
            Escape::Shell
        )
        .expect("renders"),
        "x \"orders\" \"order_items\" "
    );
    // `shell` output is already a word: not quoted twice.
    assert_eq!(
        render("x {{shell params.tables}}", Escape::Shell).expect("renders"),
        r#"x '["orders","order_items"]'"#
    );
    // Quoting twice on purpose, for a command that hands its arguments to another shell.
    assert_eq!(
        render_with(
            &Renderer::new(),
            "ssh db {{shell (shell params.v)}}",
            &with_value("a b"),
            Escape::Shell
        )
        .expect("renders"),
        r#"ssh db ''\''a b'\'''"#
    );
    assert_eq!(
        render(
            "x {{upper params.region}} {{json params.target}}",
            Escape::Shell
        )
        .expect("renders"),
        r#"x EU-WEST-1 '{"host":"db1","port":5432}'"#
    );
    assert_eq!(
        render(
            "x {{eq params.batch_size 5000}} {{len params.tables}}",
            Escape::Shell
        )
        .expect("renders"),
        "x true 2"
    );
}

#[test]
fn triple_braces_insert_the_value_raw() {
    let r = Renderer::new();
    assert_eq!(
        render_with(
            &r,
            "x {{{params.v}}}",
            &with_value("--a --b 'c'"),
            Escape::Shell
        )
        .expect("renders"),
        "x --a --b 'c'"
    );
    assert_eq!(
        render_with(&r, "{{{params.v}}}", &with_value("<b>"), Escape::Html).expect("renders"),
        "<b>"
    );
    assert_eq!(
        render_with(
            &r,
            "{{{join params.v2 \" \"}}}",
            &json!({"params": {"v2": ["a b", "c"]}}),
            Escape::Shell
        )
        .expect("renders"),
        "a b c"
    );
    // Raw or not, a missing value is an error.
    assert_eq!(
        error("x {{{params.nope}}}", Escape::Shell),
        "`{{{params.nope}}}` has no value: params.nope is not set"
    );
}

#[test]
fn spots_where_no_quoting_is_safe_are_refused() {
    let cases = [
        ("echo `cat {{params.dir}}`", "inside backticks"),
        ("echo \"`cat {{params.dir}}`\"", "inside backticks"),
        ("echo ${{params.dir}}", "follows a `$`"),
        ("echo \"${{params.dir}}\"", "follows a `$`"),
        ("echo $'{{params.dir}}'", "`$'...'`"),
        ("echo $'a\\'b' {{params.dir}}", "read differently"),
        ("cat <<{{params.dir}}\nx\n", "delimiter"),
        ("cat <<EOF{{params.dir}}\nx\n", "delimiter"),
        ("echo \\\\{{params.dir}}", ""),
        (
            "x {{#if params.dry_run}}\"{{/if}} {{params.dir}}",
            "opens a quote",
        ),
        ("echo $(( {{params.dir}} + 1 ))", "only a number"),
        ("(( {{params.dir}} > 1 ))", "only a number"),
    ];
    for (template, reason) in cases {
        match render(template, Escape::Shell) {
            Ok(out) if reason.is_empty() => {
                // `\\` is an escaped backslash: the value after it is a plain word.
                assert_eq!(out, "echo \\\\orders");
            }
            Ok(out) => panic!("{template:?} rendered {out:?}"),
            Err(e) => assert!(e.to_string().contains(reason), "{template:?}: {e}"),
        }
    }
    // The loader can find these without any value.
    assert!(check("echo `cat {{params.dir}}`", Escape::Shell).is_err());
    assert!(check("echo `cat {{params.dir}}`", Escape::None).is_ok());
    assert!(check("echo \"{{params.dir}}\" | tr a b", Escape::Shell).is_ok());
    assert!(check("echo {{params.dir", Escape::Shell).is_err());
    assert_eq!(
        error("echo `cat {{params.dir}}`", Escape::Shell),
        "`{{params.dir}}` cannot be rendered safely: it is inside backticks, where a value cannot be quoted safely; use $(...) instead"
    );
    // Numbers are fine in arithmetic.
    assert_eq!(
        render("echo $(( {{params.batch_size}} * 2 ))", Escape::Shell).expect("renders"),
        "echo $(( 5000 * 2 ))"
    );
    let r = Renderer::new();
    assert!(
        render_with(&r, "x {{params.v}}", &with_value("a\0b"), Escape::Shell)
            .expect_err("NUL")
            .to_string()
            .contains("NUL")
    );
    assert!(
        render_with(
            &r,
            "# {{params.v}}\ntrue",
            &with_value("a\ntouch pwned"),
            Escape::Shell
        )
        .expect_err("newline in a comment")
        .to_string()
        .contains("end the shell comment")
    );
}

#[test]
fn shell_structure_is_followed_across_lines_and_blocks() {
    let script = "set -eu\n\
        case \"$(echo {{params.dir}})\" in\n\
          orders) x=$(case a in a) echo {{params.dir}};; esac) ;;\n\
        esac\n\
        cat <<-EOF\n\
        \tline {{params.dir}}\n\
        \tEOF\n\
        echo '{{params.dir}}' \"{{params.dir}}\" # {{params.dir}}\n\
        {{#each params.tables}}echo {{this}}\n{{/each}}";
    assert_eq!(
        render(script, Escape::Shell).expect("renders"),
        "set -eu\n\
        case \"$(echo orders)\" in\n\
          orders) x=$(case a in a) echo orders;; esac) ;;\n\
        esac\n\
        cat <<-EOF\n\
        \tline orders\n\
        \tEOF\n\
        echo 'orders' \"orders\" # orders\n\
        echo orders\necho order_items\n"
    );
}

#[test]
fn handlebars_whitespace_control_and_parent_paths() {
    assert_eq!(text("a  {{~params.dir~}}  b"), "aordersb");
    assert_eq!(
        text("{{#each params.tables}}{{../params.dir}}/{{this}} {{/each}}"),
        "orders/orders orders/order_items "
    );
    // A block tag on a line of its own leaves no blank line, in shell scripts too.
    assert_eq!(
        render(
            "set -eu\n{{#each params.tables}}\necho \"{{this}}\"\n{{/each}}\ndone",
            Escape::Shell
        )
        .expect("renders"),
        "set -eu\necho \"orders\"\necho \"order_items\"\ndone"
    );
}
