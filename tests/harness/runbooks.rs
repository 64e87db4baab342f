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

/// Three steps with rollback commands, then one that fails; `on_failure: pause` leaves the
/// migration paused with the three succeeded.
pub const UNDO: &str = r#"version: 1
name: undo
on_failure: pause
steps:
  - id: a
    run: echo a
    rollback: echo undo a
  - id: b
    needs: [a]
    run: echo b
    rollback: echo undo b
  - id: c
    needs: [a]
    run: echo c
    rollback: echo undo c
  - id: boom
    needs: [b, c]
    run: echo broken >&2; exit 3
"#;

/// A step bound to a window that opens Saturdays at 01:00 Paris time for 4 hours.
pub const WINDOWED: &str = r#"version: 1
name: windowed
windows:
  saturday-night:
    cron: "0 1 * * SAT"
    timezone: Europe/Paris
    duration: 4h
    cutoff: 30m
    on_close: rollback
steps:
  - id: copy
    window: saturday-night
    run: echo copied
    rollback: echo uncopied
"#;
