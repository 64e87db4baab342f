//! Runbooks several server test files drive.

/// Params, an analyze step, a gate (alice, bob or root), an execute and a validate step.
pub const FLOW: &str = r#"version: 1
name: flow
params:
  note: { type: string, default: hello }
steps:
  - id: analyze
    phase: analyze
    run: echo "analyzing {{params.note}}"
  - id: signoff
    gate: { approvers: [alice, bob, root], required: 1 }
  - id: work
    needs: [signoff]
    run: echo worked
  - id: check
    phase: validate
    run: echo checked
"#;

/// A step that holds until the file `go` exists (in the runbooks directory).
pub const BLOCK: &str = r#"version: 1
name: block
steps:
  - id: hold
    idempotent: true
    run: touch started; while [ ! -f go ]; do sleep 0.05; done; echo held
  - id: after
    needs: [hold]
    run: echo after
  - id: verify
    phase: validate
    run: echo verified
"#;
