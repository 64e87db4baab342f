//! Approval gates as stored: a row per (migration, gate step) with its status and round, a
//! row per vote, and the `gate_decided` event, changed together in one transaction so that
//! two approvers, or an approver and a timeout, can never both close a gate.
//!
//! The store checks only what must be atomic (the gate is open, one vote per person per
//! round); who may approve, and that the starter may not, is the engine's rule.

use super::StoreError;
use super::error::GateError;
use super::schema::{fmt_time, json_col, json_text, name_col, opt_time_col, time_col};
use super::write::{append_events, head, set_migration};
use super::writer::Group;
use crate::event::{Decision, MigrationId, NewEvent};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde_json::json;

crate::event::wire_enum! {
    /// Where a gate stands.
    GateStatus {
        Open = "open",
        Approved = "approved",
        Rejected = "rejected",
        TimedOut = "timed_out",
        Cancelled = "cancelled",
    }
}

impl GateStatus {
    /// For sentences: "it was already timed out".
    pub fn describe(self) -> &'static str {
        match self {
            GateStatus::TimedOut => "timed out",
            other => other.as_str(),
        }
    }
}

/// A gate to open, as part of a [`super::Batch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateOpen {
    pub step: String,
    pub approvers: Vec<String>,
    pub required: u32,
    pub deadline: Option<DateTime<Utc>>,
}

/// One person's decision on a gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateVote {
    pub step: String,
    pub who: String,
    pub decision: Decision,
    pub comment: Option<String>,
    /// The plan digest the decision was made against.
    pub digest: String,
    /// Decided through the local store (unauthenticated identity), not a server token.
    pub local: bool,
    pub at: DateTime<Utc>,
}

/// A gate as it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GateInfo {
    pub step: String,
    pub status: GateStatus,
    pub approvers: Vec<String>,
    pub required: u32,
    /// Who approved in the current round, in order.
    pub approvals: Vec<String>,
    pub deadline: Option<DateTime<Utc>>,
}

/// The result of a recorded vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GateOutcome {
    pub status: GateStatus,
    pub approvals: u32,
    pub required: u32,
    /// The seq of the `gate_decided` event.
    pub event_seq: i64,
}

/// A vote in the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GateDecision {
    pub step: String,
    /// Which opening of the gate the vote belongs to (1 for the first; a retry after a
    /// rejection opens round 2).
    pub round: u32,
    pub who: String,
    pub decision: Decision,
    pub comment: Option<String>,
    pub digest: String,
    pub local: bool,
    pub at: DateTime<Utc>,
}

/// Opens a gate. An open gate stays as it is, votes included (a resumed engine opens its
/// gates again); a closed one opens a new round with no votes.
pub fn open(
    conn: &Connection,
    group: &Group,
    id: &MigrationId,
    gate: &GateOpen,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO gates (migration, step, round, status, approvers, required, deadline, opened_at)
         VALUES (?1, ?2, 1, 'open', ?3, ?4, ?5, ?6)
         ON CONFLICT (migration, step) DO UPDATE SET
             round = round + 1, status = 'open', approvers = excluded.approvers,
             required = excluded.required, deadline = excluded.deadline,
             opened_at = excluded.opened_at, closed_at = NULL
         WHERE status <> 'open'",
    )?
    .execute(params![
        id.as_str(),
        gate.step,
        json_text(&json!(gate.approvers)),
        gate.required,
        gate.deadline.map(fmt_time),
        fmt_time(group.now),
    ])?;
    Ok(())
}

/// The gate's status, round and required count, if it was ever opened.
fn current(
    conn: &Connection,
    id: &MigrationId,
    step: &str,
) -> Result<Option<(GateStatus, u32, u32)>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT status, round, required FROM gates WHERE migration = ?1 AND step = ?2",
        )?
        .query_row(params![id.as_str(), step], |r| {
            Ok((name_col(r, 0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?)
}

fn set_status(
    conn: &Connection,
    group: &Group,
    id: &MigrationId,
    step: &str,
    status: GateStatus,
) -> Result<(), StoreError> {
    let closed_at = (status != GateStatus::Open).then(|| fmt_time(group.now));
    conn.prepare_cached(
        "UPDATE gates SET status = ?3, closed_at = ?4 WHERE migration = ?1 AND step = ?2",
    )?
    .execute(params![id.as_str(), step, status.as_str(), closed_at])?;
    Ok(())
}

/// Records a vote, closes the gate when it is decided, and appends `gate_decided`.
pub fn decide(
    conn: &Connection,
    group: &Group,
    id: &MigrationId,
    vote: GateVote,
) -> Result<GateOutcome, GateError> {
    let (state, last_seq) = head(conn, id)?;
    let (round, required) = open_round(&vote.step, current(conn, id, &vote.step)?)?;
    let voted: Option<i64> = conn
        .prepare_cached(
            "SELECT 1 FROM gate_votes WHERE migration = ?1 AND step = ?2 AND round = ?3 AND who = ?4",
        )?
        .query_row(params![id.as_str(), vote.step, round, vote.who], |r| r.get(0))
        .optional()?;
    if voted.is_some() {
        return Err(GateError::AlreadyVoted {
            step: vote.step,
            who: vote.who,
        });
    }
    conn.prepare_cached(
        "INSERT INTO gate_votes (migration, step, round, who, decision, comment, digest, local, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        id.as_str(),
        vote.step,
        round,
        vote.who,
        vote.decision.as_str(),
        vote.comment,
        vote.digest,
        vote.local,
        fmt_time(vote.at),
    ])?;
    let approvals: u32 = conn
        .prepare_cached(
            "SELECT count(*) FROM gate_votes
             WHERE migration = ?1 AND step = ?2 AND round = ?3 AND decision = 'approve'",
        )?
        .query_row(params![id.as_str(), vote.step, round], |r| r.get(0))?;
    let (status, event) = decided(&vote, approvals, required);
    if status != GateStatus::Open {
        set_status(conn, group, id, &vote.step, status)?;
    }
    let seqs = append_events(
        conn,
        group,
        id,
        (state, last_seq),
        std::slice::from_ref(&event),
    )?;
    let event_seq = seqs.last().copied().unwrap_or(last_seq);
    set_migration(conn, id, state, event_seq, group)?;
    Ok(GateOutcome {
        status,
        approvals,
        required,
        event_seq,
    })
}

/// The round and required approvals of a gate a vote may be cast on (both backends), or
/// why not: it was never opened, or it is closed.
pub fn open_round(
    step: &str,
    found: Option<(GateStatus, u32, u32)>,
) -> Result<(u32, u32), GateError> {
    match found {
        Some((GateStatus::Open, round, required)) => Ok((round, required)),
        status => Err(GateError::NotOpen {
            step: step.to_owned(),
            status: status.map(|(s, _, _)| s),
        }),
    }
}

/// Where a recorded vote leaves its gate, with `approvals` in its round counted (this vote
/// included), and the `gate_decided` event that says so (both backends): a rejection closes
/// the gate at once, the `required`th approval approves it.
pub fn decided(vote: &GateVote, approvals: u32, required: u32) -> (GateStatus, NewEvent) {
    let status = match vote.decision {
        Decision::Reject => GateStatus::Rejected,
        Decision::Approve if approvals >= required => GateStatus::Approved,
        Decision::Approve => GateStatus::Open,
    };
    let event = NewEvent::step(
        &vote.step,
        crate::event::GateDecided {
            who: vote.who.clone(),
            decision: vote.decision.as_str().to_owned(),
            comment: Some(vote.comment.clone()),
            digest: Some(Some(vote.digest.clone())),
            local: Some(vote.local),
            approvals: Some(approvals),
            required: Some(required),
            on_timeout: None,
            status: status.as_str().to_owned(),
        },
    );
    (status, event)
}

/// Closes an open gate with `status` and appends `event` (and its alert deliveries, `event`
/// being index 0); false when it was not open (a vote or another timeout got there first),
/// and then nothing is written.
pub fn close(
    conn: &Connection,
    group: &Group,
    id: &MigrationId,
    step: &str,
    status: GateStatus,
    event: NewEvent,
) -> Result<bool, StoreError> {
    let (state, last_seq) = head(conn, id)?;
    let open = matches!(current(conn, id, step)?, Some((GateStatus::Open, _, _)));
    if !open || status == GateStatus::Open {
        return Ok(false);
    }
    set_status(conn, group, id, step, status)?;
    let seqs = append_events(
        conn,
        group,
        id,
        (state, last_seq),
        std::slice::from_ref(&event),
    )?;
    set_migration(
        conn,
        id,
        state,
        seqs.last().copied().unwrap_or(last_seq),
        group,
    )?;
    Ok(true)
}

/// A gate as it stands, with who approved in its current round.
pub fn info(
    conn: &Connection,
    id: &MigrationId,
    step: &str,
) -> Result<Option<GateInfo>, StoreError> {
    let Some((status, round, approvers, required, deadline)) = conn
        .prepare_cached(
            "SELECT status, round, approvers, required, deadline FROM gates
             WHERE migration = ?1 AND step = ?2",
        )?
        .query_row(params![id.as_str(), step], |r| {
            Ok((
                name_col::<GateStatus>(r, 0)?,
                r.get::<_, u32>(1)?,
                json_col(r, 2)?,
                r.get::<_, u32>(3)?,
                opt_time_col(r, 4)?,
            ))
        })
        .optional()?
    else {
        return Ok(None);
    };
    let approvers: Vec<String> = serde_json::from_value(approvers)
        .map_err(|e| StoreError::Corrupt(format!("the approvers of gate `{step}`: {e}")))?;
    let approvals = conn
        .prepare_cached(
            "SELECT who FROM gate_votes
             WHERE migration = ?1 AND step = ?2 AND round = ?3 AND decision = 'approve' ORDER BY n",
        )?
        .query_map(params![id.as_str(), step, round], |r| r.get(0))?
        .collect::<Result<Vec<String>, _>>()?;
    Ok(Some(GateInfo {
        step: step.to_owned(),
        status,
        approvers,
        required,
        approvals,
        deadline,
    }))
}

/// Every vote on a migration's gates, in the order they were cast.
pub fn decisions(conn: &Connection, id: &MigrationId) -> Result<Vec<GateDecision>, StoreError> {
    let rows = conn
        .prepare_cached(
            "SELECT step, round, who, decision, comment, digest, local, at FROM gate_votes
             WHERE migration = ?1 ORDER BY n",
        )?
        .query_map([id.as_str()], |r| {
            Ok(GateDecision {
                step: r.get(0)?,
                round: r.get(1)?,
                who: r.get(2)?,
                decision: name_col(r, 3)?,
                comment: r.get(4)?,
                digest: r.get(5)?,
                local: r.get(6)?,
                at: time_col(r, 7)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}
