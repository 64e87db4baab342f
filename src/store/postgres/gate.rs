//! Gates: opening one (in a batch), votes, closing by timeout or cancel, and reads. As the
//! SQLite backend's `gate`, whose rule of how a vote leaves a gate ([`decided`]) this uses:
//! a vote and a timeout both lock the migration's row first (`write::begin_locked`), so two
//! approvers, or an approver and a timeout on another server, can never both close a gate.

use super::super::gate::{decided, open_round};
use super::super::schema::{fmt_time, json_text};
use super::super::{
    GateDecision, GateError, GateInfo, GateOpen, GateOutcome, GateStatus, GateVote, MigrationId,
    NewEvent, StoreError,
};
use super::db::{Db, Tx};
use super::rows as col;
use super::write::{append_one, begin_locked};
use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::{PgConnection, Row};
use std::sync::Arc;

/// Opens a gate. An open gate stays as it is, votes included (a resumed engine opens its
/// gates again); a closed one opens a new round with no votes.
pub async fn open(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    id: &MigrationId,
    gate: &GateOpen,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO gates (migration, step, round, status, approvers, required, deadline, opened_at)
         VALUES ($1, $2, 1, 'open', $3, $4, $5, $6)
         ON CONFLICT (migration, step) DO UPDATE SET
             round = gates.round + 1, status = 'open', approvers = EXCLUDED.approvers,
             required = EXCLUDED.required, deadline = EXCLUDED.deadline,
             opened_at = EXCLUDED.opened_at, closed_at = NULL
         WHERE gates.status <> 'open'",
    )
    .bind(id.as_str())
    .bind(&gate.step)
    .bind(json_text(&json!(gate.approvers)))
    .bind(i64::from(gate.required))
    .bind(gate.deadline.map(fmt_time))
    .bind(fmt_time(now))
    .execute(conn)
    .await?;
    Ok(())
}

/// The gate's status, round and required count, if it was ever opened.
async fn current(
    conn: &mut PgConnection,
    id: &MigrationId,
    step: &str,
) -> Result<Option<(GateStatus, u32, u32)>, StoreError> {
    let row =
        sqlx::query("SELECT status, round, required FROM gates WHERE migration = $1 AND step = $2")
            .bind(id.as_str())
            .bind(step)
            .fetch_optional(conn)
            .await?;
    row.map(|r| Ok((col::name(&r, 0)?, col::int(&r, 1)?, col::int(&r, 2)?)))
        .transpose()
}

async fn set_status(
    tx: &mut Tx,
    id: &MigrationId,
    step: &str,
    status: GateStatus,
) -> Result<(), StoreError> {
    let closed_at = (status != GateStatus::Open).then(|| fmt_time(tx.now));
    sqlx::query("UPDATE gates SET status = $3, closed_at = $4 WHERE migration = $1 AND step = $2")
        .bind(id.as_str())
        .bind(step)
        .bind(status.as_str())
        .bind(closed_at)
        .execute(&mut *tx.tx)
        .await?;
    Ok(())
}

/// Records a vote, closes the gate when it is decided, and appends `gate_decided`.
pub async fn decide(
    db: Arc<Db>,
    id: MigrationId,
    vote: GateVote,
) -> Result<GateOutcome, GateError> {
    let (mut tx, state, last_seq) = begin_locked(&db, &id).await?;
    let (round, required) = open_round(&vote.step, current(&mut tx.tx, &id, &vote.step).await?)?;
    let voted: Option<i32> = sqlx::query_scalar(
        "SELECT 1 FROM gate_votes WHERE migration = $1 AND step = $2 AND round = $3 AND who = $4",
    )
    .bind(id.as_str())
    .bind(&vote.step)
    .bind(i64::from(round))
    .bind(&vote.who)
    .fetch_optional(&mut *tx.tx)
    .await?;
    if voted.is_some() {
        return Err(GateError::AlreadyVoted {
            step: vote.step,
            who: vote.who,
        });
    }
    sqlx::query(
        "INSERT INTO gate_votes (migration, step, round, who, decision, comment, digest, local, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(id.as_str())
    .bind(&vote.step)
    .bind(i64::from(round))
    .bind(&vote.who)
    .bind(vote.decision.as_str())
    .bind(vote.comment.as_deref().map(col::storable))
    .bind(&vote.digest)
    .bind(vote.local)
    .bind(fmt_time(vote.at))
    .execute(&mut *tx.tx)
    .await?;
    let approvals: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM gate_votes
         WHERE migration = $1 AND step = $2 AND round = $3 AND decision = 'approve'",
    )
    .bind(id.as_str())
    .bind(&vote.step)
    .bind(i64::from(round))
    .fetch_one(&mut *tx.tx)
    .await?;
    let approvals = u32::try_from(approvals).unwrap_or(u32::MAX);
    let (status, event) = decided(&vote, approvals, required);
    if status != GateStatus::Open {
        set_status(&mut tx, &id, &vote.step, status).await?;
    }
    let event_seq = append_one(&mut tx, &db.routes, &id, (state, last_seq), &event).await?;
    tx.commit(&db).await?;
    Ok(GateOutcome {
        status,
        approvals,
        required,
        event_seq,
    })
}

/// Closes an open gate with `status` and appends `event` (and its alert deliveries); false
/// when it was not open (a vote or another timeout got there first), and then nothing is
/// written.
pub async fn close(
    db: Arc<Db>,
    id: MigrationId,
    step: String,
    status: GateStatus,
    event: NewEvent,
) -> Result<bool, StoreError> {
    let (mut tx, state, last_seq) = begin_locked(&db, &id).await?;
    let open = matches!(
        current(&mut tx.tx, &id, &step).await?,
        Some((GateStatus::Open, _, _))
    );
    if !open || status == GateStatus::Open {
        return Ok(false);
    }
    set_status(&mut tx, &id, &step, status).await?;
    append_one(&mut tx, &db.routes, &id, (state, last_seq), &event).await?;
    tx.commit(&db).await?;
    Ok(true)
}

/// A gate as it stands, with who approved in its current round.
pub async fn info(
    db: Arc<Db>,
    id: MigrationId,
    step: String,
) -> Result<Option<GateInfo>, StoreError> {
    let row = sqlx::query(
        "SELECT status, round, approvers, required, deadline FROM gates
         WHERE migration = $1 AND step = $2",
    )
    .bind(id.as_str())
    .bind(&step)
    .fetch_optional(&db.pool)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let status: GateStatus = col::name(&row, 0)?;
    let round: i64 = row.try_get(1)?;
    let approvers: Vec<String> = serde_json::from_value(col::json(&row, 2)?)
        .map_err(|e| StoreError::Corrupt(format!("the approvers of gate `{step}`: {e}")))?;
    let required = col::int(&row, 3)?;
    let deadline = col::opt_time(&row, 4)?;
    let approvals: Vec<String> = sqlx::query_scalar(
        "SELECT who FROM gate_votes
         WHERE migration = $1 AND step = $2 AND round = $3 AND decision = 'approve' ORDER BY n",
    )
    .bind(id.as_str())
    .bind(&step)
    .bind(round)
    .fetch_all(&db.pool)
    .await?;
    Ok(Some(GateInfo {
        step,
        status,
        approvers,
        required,
        approvals,
        deadline,
    }))
}

/// Every vote on a migration's gates, in the order they were cast.
pub async fn decisions(db: Arc<Db>, id: MigrationId) -> Result<Vec<GateDecision>, StoreError> {
    let rows = sqlx::query(
        "SELECT step, round, who, decision, comment, digest, local, at FROM gate_votes
         WHERE migration = $1 ORDER BY n",
    )
    .bind(id.as_str())
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(GateDecision {
                step: col::text(r, 0)?,
                round: col::int(r, 1)?,
                who: col::text(r, 2)?,
                decision: col::name(r, 3)?,
                comment: col::opt_text(r, 4)?,
                digest: col::text(r, 5)?,
                local: col::flag(r, 6)?,
                at: col::time(r, 7)?,
            })
        })
        .collect()
}
