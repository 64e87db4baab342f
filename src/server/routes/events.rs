//! A migration's event history: JSON (`?after=SEQ` for what is new), or with
//! `Accept: text/event-stream` a live stream that replays the history (after `Last-Event-ID`
//! or `?after=` when given) and then sends each event as it is committed. Each SSE message
//! has the event's seq as `id`, its kind as `event`, and the event's JSON as `data`. The
//! stream ends once the migration is certified or cancelled and everything was sent, or when
//! the server stops.

use super::{AppState, load};
use crate::event::{Event, MigrationId};
use crate::server::auth::Reader;
use crate::server::error::ApiError;
use crate::server::extract::{QueryParams, Segments, event_number};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::sse::{self, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::watch;

/// `GET /v1/migrations/{id}/events`.
pub async fn events(
    State(state): State<AppState>,
    Reader(_): Reader,
    Segments(id): Segments<String>,
    query: QueryParams,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let m = load(&state, &id)?;
    let streaming = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/event-stream"));
    // Only events with a seq above this.
    let after = query
        .get("after")
        .map(|v| event_number(v, "query parameter `after`"))
        .transpose()?;
    let after = last_event_id(&headers)?.or(after).unwrap_or(0);
    if !streaming {
        return Ok(Json(state.store.events(&m.id, after)?).into_response());
    }
    let tail = Tail {
        // Subscribed before the first read: a commit after it wakes the stream.
        changes: state.store.changes(),
        state,
        id: m.id,
        after,
        pending: VecDeque::new(),
        finished: false,
    };
    let stream = futures_util::stream::unfold(tail, |mut tail| async move {
        let event = tail.next().await?;
        Some((Ok::<_, Infallible>(event), tail))
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

/// The `Last-Event-ID` header an SSE client sends when it reconnects: an event number, once.
fn last_event_id(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    const WHAT: &str = "header `Last-Event-ID`";
    let mut values = headers.get_all("last-event-id").iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        let times = headers.get_all("last-event-id").iter().count();
        return match times {
            0 => Ok(None),
            n => Err(ApiError::BadRequest(format!(
                "{WHAT} is given {n} times; give it once"
            ))),
        };
    };
    let text = value.to_str().map_err(|_| {
        ApiError::BadRequest(format!(
            "{WHAT} must be an event number, not bytes that are not text"
        ))
    })?;
    event_number(text.trim(), WHAT).map(Some)
}

/// Where a live stream stands.
struct Tail {
    state: AppState,
    changes: watch::Receiver<u64>,
    id: MigrationId,
    /// The seq of the last event read.
    after: i64,
    pending: VecDeque<Event>,
    /// The migration is final and everything was read.
    finished: bool,
}

impl Tail {
    /// The next message, waiting for a commit when there is none; `None` ends the stream.
    async fn next(&mut self) -> Option<sse::Event> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(message(&event));
            }
            if self.finished || self.state.shutdown.is_triggered() {
                return None;
            }
            // The state first: events read after it include everything up to it.
            let terminal = match self.state.store.migration(&self.id) {
                Ok(Some(m)) => m.state.is_terminal(),
                Ok(None) => true,
                Err(e) => {
                    tracing::warn!(migration = %self.id, "event stream stopped: {e}");
                    return None;
                }
            };
            match self.state.store.events(&self.id, self.after) {
                Ok(events) => {
                    if let Some(last) = events.last() {
                        self.after = last.seq;
                    }
                    self.pending.extend(events);
                }
                Err(e) => {
                    tracing::warn!(migration = %self.id, "event stream stopped: {e}");
                    return None;
                }
            }
            if terminal {
                self.finished = true;
                continue;
            }
            if !self.pending.is_empty() {
                continue;
            }
            tokio::select! {
                changed = self.changes.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                }
                () = self.state.shutdown.wait() => return None,
            }
        }
    }
}

fn message(event: &Event) -> sse::Event {
    let data = serde_json::to_string(event).unwrap_or_default();
    sse::Event::default()
        .id(event.seq.to_string())
        .event(event.kind.as_str())
        .data(data)
}
