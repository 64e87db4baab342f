//! Tests of rendering; shell escaping and masking have their own files.

mod mask;
mod shell;

use super::*;
use crate::runbook::text::{JsonText, Text};
use serde_json::json;

pub(super) fn ctx() -> Value {
    json!({
        "params": {
            "dir": "orders",
            "tables": ["orders", "order_items"],
            "batch_size": 5000,
            "ratio": 0.5,
            "dry_run": false,
            "empty": "",
            "nothing": null,
            "region": "eu-west-1",
            "target": { "host": "db1", "port": 5432 },
            "verdict": "yes",
            "padded": " true\n",
        },
        "steps": {
            "count-source": { "outputs": { "rows": "1842" }, "status": "succeeded" },
            "count-target": { "outputs": { "rows": "1842" }, "status": "succeeded" },
            "size": { "outputs": { "rows": 12 } },
        },
        "migration": { "id": "m-1", "state": "running" },
        "runbook": { "name": "orders-cutover" },
    })
}

pub(super) fn with_item(item: Value) -> Value {
    let mut ctx = ctx();
    ctx["item"] = item;
    ctx
}

pub(super) fn with_value(v: &str) -> Value {
    json!({ "params": { "v": v, "n": 41 } })
}

pub(super) fn render(template: &str, escape: Escape) -> Result<String, RenderError> {
    render_with(&Renderer::new(), template, &ctx(), escape)
}

/// Renders `template`, typed as the loader types runbook text, against `ctx`.
pub(super) fn render_with(
    r: &Renderer,
    template: &str,
    ctx: &Value,
    escape: Escape,
) -> Result<String, RenderError> {
    Text::new(template).render(r, &Values::new(ctx.clone()), escape)
}

pub(super) fn value_with(r: &Renderer, template: &str, ctx: &Value) -> Result<Value, RenderError> {
    Text::new(template).render_value(r, &Values::new(ctx.clone()))
}

pub(super) fn bool_with(r: &Renderer, template: &str, ctx: &Value) -> Result<bool, RenderError> {
    Text::new(template).render_bool(r, &Values::new(ctx.clone()))
}

pub(super) fn json_with(r: &Renderer, body: &Value, ctx: &Value) -> Result<Value, RenderError> {
    JsonText::new(body).render(r, &Values::new(ctx.clone()))
}

/// Checks `template` before any value is known, as the loader would.
pub(super) fn check(template: &str, escape: Escape) -> Result<(), RenderError> {
    Text::new(template).check(escape)
}

pub(super) fn text(template: &str) -> String {
    render(template, Escape::None).expect("renders")
}

pub(super) fn error(template: &str, escape: Escape) -> String {
    render(template, escape).expect_err("fails").to_string()
}

#[test]
fn missing_values_are_errors_naming_the_path() {
    assert_eq!(
        error("rm -rf /data/{{params.nope}}", Escape::Shell),
        "`{{params.nope}}` has no value: params.nope is not set"
    );
    assert_eq!(
        error("x {{ steps.count-source.outputs.nope }}", Escape::None),
        "`{{ steps.count-source.outputs.nope }}` has no value: steps.count-source.outputs.nope is not set"
    );
    assert_eq!(
        error("x {{params.target.user}}", Escape::None),
        "`{{params.target.user}}` has no value: params.target.user is not set"
    );
    assert_eq!(
        error("x {{params.tables.name}}", Escape::None),
        "`{{params.tables.name}}` has no value: params.tables.name is not set"
    );
    assert_eq!(
        error("x {{join params.nope \",\"}}", Escape::Shell),
        "`{{join params.nope \",\"}}` cannot be rendered: params.nope is not set"
    );
    assert_eq!(
        error("{{upper params.nope}}", Escape::None),
        "`{{upper params.nope}}` cannot be rendered: params.nope is not set"
    );
    assert_eq!(
        error(
            "{{eq steps.count-source.outputs.rows steps.nope.outputs.rows}}",
            Escape::None
        ),
        "`{{eq steps.count-source.outputs.rows steps.nope.outputs.rows}}` cannot be rendered: steps.nope.outputs.rows is not set"
    );
    assert_eq!(
        error("{{not params.nope}}", Escape::None),
        "`{{not params.nope}}` cannot be rendered: params.nope is not set"
    );
    assert_eq!(
        error("{{len params.nope}}", Escape::None),
        "`{{len params.nope}}` cannot be rendered: params.nope is not set"
    );
    assert_eq!(
        error("{{lookup params.tables 5}}", Escape::None),
        "`{{lookup params.tables 5}}` cannot be rendered: a value it reads is not set"
    );
    assert_eq!(
        error("a\nb {{#each params.nope}}{{this}}{{/each}}", Escape::None),
        "`{{#each params.nope}}` cannot be rendered: params.nope is not set"
    );
    assert_eq!(
        error(
            "{{#each params.tables}}\n  {{this.name}}{{/each}}",
            Escape::None
        ),
        "`{{this.name}}` has no value: this.name is not set"
    );
    // Printing a null is an error too.
    assert_eq!(
        error("x {{params.nothing}}", Escape::Shell),
        "`{{params.nothing}}` has no value: params.nothing is null"
    );
    // `if` and `unless` test presence: a missing value is false.
    assert_eq!(text("{{#if params.nope}}yes{{else}}no{{/if}}"), "no");
    assert_eq!(text("{{#unless params.nothing}}none{{/unless}}"), "none");
    // An empty string is a value.
    assert_eq!(text("[{{params.empty}}]"), "[]");
}

#[test]
fn default_accepts_a_missing_or_null_value() {
    assert_eq!(text("{{default params.nope \"eu\"}}"), "eu");
    assert_eq!(text("{{default params.nothing \"eu\"}}"), "eu");
    assert_eq!(text("{{default params.region \"eu\"}}"), "eu-west-1");
    assert_eq!(text("{{default params.empty \"eu\"}}"), "");
    assert_eq!(text("{{default params.nope params.region}}"), "eu-west-1");
    assert_eq!(
        render("x {{default params.nope \"a b\"}}", Escape::Shell).expect("renders"),
        "x 'a b'"
    );
    assert_eq!(
        error("{{default params.nope params.also_nope}}", Escape::None),
        "`{{default params.nope params.also_nope}}` cannot be rendered: params.also_nope is not set"
    );
    let r = Renderer::new();
    assert_eq!(
        value_with(&r, "{{default params.nope 3}}", &ctx()).expect("renders"),
        json!(3)
    );
}

#[test]
fn helper_misuse_is_named() {
    assert_eq!(
        error("{{join params.region \",\"}}", Escape::None),
        "`{{join params.region \",\"}}` cannot be rendered: `join` needs a list, but params.region is a string"
    );
    assert_eq!(
        error("{{upper params.tables}}", Escape::None),
        "`{{upper params.tables}}` cannot be rendered: `upper` needs text, got a list"
    );
    assert_eq!(
        error("{{> partial}}", Escape::None),
        "`{{> partial}}` cannot be rendered: partials and decorators are not available in runbook templates"
    );
    assert!(
        error("{{params.x", Escape::None).starts_with("`{{params.x` is not a valid template: ")
    );
    assert_eq!(text("{{join params.tables}}"), "orders,order_items");
    assert_eq!(
        text("{{lower \"ABC\"}} {{upper params.batch_size}}"),
        "abc 5000"
    );
}

#[test]
fn builtin_helpers_work() {
    assert_eq!(
        text("{{eq steps.count-source.outputs.rows steps.count-target.outputs.rows}}"),
        "true"
    );
    assert_eq!(text("{{ne params.batch_size 5000}}"), "false");
    assert_eq!(
        text("{{gt steps.size.outputs.rows 10}} {{gte 1 1}} {{lt 1 2}} {{lte 3 2}}"),
        "true true true false"
    );
    assert_eq!(
        text("{{and (gt steps.size.outputs.rows 0) (not params.dry_run)}}"),
        "true"
    );
    assert_eq!(text("{{or params.dry_run false}}"), "false");
    assert_eq!(text("{{len params.tables}} {{len params.region}}"), "2 9");
    assert_eq!(text("{{lookup params.tables 1}}"), "order_items");
    assert_eq!(
        text("{{#with params.target}}{{host}}:{{port}}{{/with}}"),
        "db1:5432"
    );
    assert_eq!(
        text("{{#each params.tables}}{{@index}}={{this}};{{/each}}"),
        "0=orders;1=order_items;"
    );
    assert_eq!(
        text("{{#if params.dry_run}}a{{else if params.region}}b{{else}}c{{/if}}"),
        "b"
    );
    assert_eq!(
        text("{{{{raw}}}}{{not a template}}{{{{/raw}}}}"),
        "{{not a template}}"
    );
    assert_eq!(text("\\{{params.dir}}"), "{{params.dir}}");
    assert_eq!(text("{{! a comment }}{{params.dir}}"), "orders");
    assert_eq!(text("{{steps.count-source.status}}"), "succeeded");
}

#[test]
fn items_of_a_fan_out_render() {
    let r = Renderer::new();
    let string = with_item(json!("orders"));
    assert_eq!(
        render_with(&r, "copy.sh {{item}}", &string, Escape::Shell).expect("renders"),
        "copy.sh orders"
    );
    let object = with_item(json!({ "name": "order items", "rows": 3 }));
    assert_eq!(
        render_with(
            &r,
            "copy.sh {{item.name}} {{item.rows}}",
            &object,
            Escape::Shell
        )
        .expect("renders"),
        "copy.sh 'order items' 3"
    );
    assert_eq!(
        value_with(&r, "{{item}}", &object).expect("renders"),
        object["item"]
    );
    assert_eq!(
        render_with(&r, "copy.sh {{item.nope}}", &object, Escape::Shell)
            .expect_err("missing")
            .to_string(),
        "`{{item.nope}}` has no value: item.nope is not set"
    );
}

#[test]
fn a_single_expression_keeps_its_type() {
    let r = Renderer::new();
    let c = ctx();
    assert_eq!(
        value_with(&r, "{{params.tables}}", &c).expect("renders"),
        json!(["orders", "order_items"])
    );
    assert_eq!(
        value_with(&r, " {{ params.batch_size }}\n", &c).expect("renders"),
        json!(5000)
    );
    assert_eq!(
        value_with(&r, "{{params.ratio}}", &c).expect("renders"),
        json!(0.5)
    );
    assert_eq!(
        value_with(&r, "{{params.dry_run}}", &c).expect("renders"),
        json!(false)
    );
    assert_eq!(
        value_with(&r, "{{params.target}}", &c).expect("renders"),
        json!({ "host": "db1", "port": 5432 })
    );
    assert_eq!(
        value_with(&r, "{{params.nothing}}", &c).expect("renders"),
        Value::Null
    );
    assert_eq!(
        value_with(&r, "{{{params.tables}}}", &c).expect("renders"),
        c["params"]["tables"]
    );
    assert_eq!(
        value_with(&r, "{{steps.size.outputs.rows}}", &c).expect("renders"),
        json!(12)
    );
    // Helper calls keep their result's type too.
    assert_eq!(
        value_with(&r, "{{len params.tables}}", &c).expect("renders"),
        json!(2)
    );
    assert_eq!(
        value_with(&r, "{{not params.dry_run}}", &c).expect("renders"),
        json!(true)
    );
    assert_eq!(
        value_with(&r, "{{json params.tables}}", &c).expect("renders"),
        json!(r#"["orders","order_items"]"#)
    );
    // Anything more is text.
    assert_eq!(
        value_with(&r, "{{params.batch_size}} rows", &c).expect("renders"),
        json!("5000 rows")
    );
    assert_eq!(
        value_with(&r, "{{params.dir}}{{params.dir}}", &c).expect("renders"),
        json!("ordersorders")
    );
    assert_eq!(
        value_with(&r, "no template", &c).expect("renders"),
        json!("no template")
    );
    assert_eq!(
        value_with(&r, "{{params.nope}}", &c)
            .expect_err("missing")
            .to_string(),
        "`{{params.nope}}` has no value: params.nope is not set"
    );
    assert_eq!(
        value_with(&r, " {{join params.nope \",\"}}", &c)
            .expect_err("missing")
            .to_string(),
        "`{{join params.nope \",\"}}` cannot be rendered: params.nope is not set"
    );
}

#[test]
fn json_bodies_hold_values_not_spliced_text() {
    let r = Renderer::new();
    let attack = "\"}, \"admin\": true, \"x\": {\"";
    let c = json!({
        "params": { "v": attack, "tables": ["a", "b"], "n": 3 },
        "migration": { "id": "m-1" },
    });
    let body = json!({
        "title": "Cutover {{migration.id}}: {{params.v}}",
        "raw": "{{params.v}}",
        "tables": "{{params.tables}}",
        "count": "{{params.n}}",
        "nested": [{ "{{migration.id}}": "{{join params.tables \"+\"}}" }, 7, null, true],
    });
    let rendered = json_with(&r, &body, &c).expect("renders");
    assert_eq!(
        rendered,
        json!({
            "title": format!("Cutover m-1: {attack}"),
            "raw": attack,
            "tables": ["a", "b"],
            "count": 3,
            "nested": [{ "m-1": "a+b" }, 7, null, true],
        })
    );
    let text = rendered.to_string();
    let parsed: Value = serde_json::from_str(&text).expect("valid JSON");
    assert!(parsed.get("admin").is_none());
    assert!(json_with(&r, &json!({"a": "{{params.nope}}"}), &c).is_err());
}

#[test]
fn json_escaping_follows_string_literals() {
    let r = Renderer::new();
    let c = json!({ "params": { "v": "a\"b\\c\nd", "n": 3, "l": [1, "x"], "none": null } });
    let out = render_with(
        &r,
            r#"{"text": "say {{params.v}}", "v": {{params.v}}, "n": {{params.n}}, "l": {{params.l}}, "ln": "{{params.l}}", "none": {{params.none}}, "j": {{json params.l}}}"#,
            &c,
            Escape::Json,
        )
        .expect("renders");
    let parsed: Value = serde_json::from_str(&out).expect("valid JSON");
    assert_eq!(
        parsed,
        json!({
            "text": "say a\"b\\c\nd",
            "v": "a\"b\\c\nd",
            "n": 3,
            "l": [1, "x"],
            "ln": "[1,\"x\"]",
            "none": null,
            "j": [1, "x"],
        })
    );
}

#[test]
fn html_escaping() {
    let r = Renderer::new();
    let c = json!({ "params": { "v": "<script>alert('x')</script> & \"q\"" } });
    assert_eq!(
        render_with(&r, "<p>{{params.v}}</p>", &c, Escape::Html).expect("renders"),
        "<p>&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;q&quot;</p>"
    );
    assert_eq!(
        render_with(&r, "<p>{{params.v}}</p>", &c, Escape::None).expect("renders"),
        "<p><script>alert('x')</script> & \"q\"</p>"
    );
}

#[test]
fn booleans_are_true_or_false_and_nothing_else() {
    let r = Renderer::new();
    let c = ctx();
    let yes = |t: &str| bool_with(&r, t, &c).expect("renders");
    assert!(yes(
        "{{eq steps.count-source.outputs.rows steps.count-target.outputs.rows}}"
    ));
    assert!(yes("{{not params.dry_run}}"));
    assert!(!yes("{{params.dry_run}}"));
    assert!(yes("{{#if params.dry_run}}false{{else}}true{{/if}}"));
    assert!(yes("{{params.padded}}"));
    assert!(yes("true"));
    assert!(!yes(" false "));
    let no = |t: &str| bool_with(&r, t, &c).expect_err("not a boolean").to_string();
    assert_eq!(
        no("{{params.verdict}}"),
        "`{{params.verdict}}` must render true or false, got `yes`"
    );
    assert_eq!(
        no("{{params.batch_size}}"),
        "`{{params.batch_size}}` must render true or false, got `5000`"
    );
    assert_eq!(
        no("{{params.empty}}"),
        "`{{params.empty}}` must render true or false, got ``"
    );
    assert_eq!(no("TRUE"), "`TRUE` must render true or false, got `TRUE`");
    assert_eq!(
        no("{{params.nothing}}"),
        "`{{params.nothing}}` must render true or false, got `null`"
    );
    // A long or multi-line value is described, never cut: a cut could split a secret in
    // two, and the mask applied to the message would find neither half.
    assert_eq!(
        no("{{params.dir}}\n{{params.dir}}"),
        "`{{params.dir}}…` must render true or false, got a text of 13 characters on 2 lines"
    );
    let long = "x".repeat(81);
    assert!(no(&long).ends_with("got a text of 81 characters"));
    assert_eq!(
        no("{{params.nope}}"),
        "`{{params.nope}}` has no value: params.nope is not set"
    );
}

#[test]
fn the_renderer_is_shared_and_caches() {
    fn shared<T: Send + Sync>() {}
    shared::<Renderer>();
    let r = Renderer::new();
    for item in ["a", "b c", "d"] {
        let c = with_item(json!(item));
        assert_eq!(
            render_with(&r, "copy {{item}}", &c, Escape::Shell).expect("renders"),
            format!("copy {}", super::shell::word(item))
        );
    }
    assert_eq!(r.cache.read().expect("lock").len(), 1);
    assert!(format!("{r:?}").contains("cached: 1"));
}
