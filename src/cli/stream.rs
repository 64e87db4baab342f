//! A [`Feed`] through a server (`--server`): the same documents the API gives every client,
//! and for a follow the migration's event stream (SSE, `GET /v1/migrations/{id}/events` with
//! `Accept: text/event-stream`). The stream brings the events `events --follow` prints, and
//! wakes `status` and `logs` up to read again. It is opened after the newest event already
//! known, so nothing is replayed twice, and opened again after it ends: the server ends it
//! once the migration is final (the next status shows that) or when it stops (the next
//! status read then fails, and so does the command).

use super::client::{self, Client};
use super::follow::{self, Feed, IDLE};
use serde_json::Value as Json;
use std::time::Duration;
use tokio::signal::unix::Signal;
use tokio::time::Instant;

/// How long a wait that got bytes keeps gathering those that follow closely.
const GATHER: Duration = Duration::from_millis(20);

/// What a command needs from the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Use {
    /// Its events (`events --follow`).
    Events,
    /// Only to know when to read again (`status`, `logs`).
    WakeUp,
}

/// A migration on a server.
pub(super) struct RemoteFeed {
    client: Client,
    id: String,
    purpose: Use,
    /// Ctrl-C, when following.
    ctrl_c: Option<Signal>,
    stream: Option<Open>,
    /// When the last stream ended: the next one opens no sooner than [`IDLE`] after it.
    ended: Option<Instant>,
    /// The seq of the newest event known: a stream opens after it.
    seen: i64,
    /// The events the stream brought since [`Feed::arrived`] was last called.
    arrived: Vec<Json>,
}

/// An open stream and the bytes of a message not complete yet.
struct Open {
    response: reqwest::Response,
    pending: Vec<u8>,
}

impl RemoteFeed {
    /// The feed of migration `id` (`latest` or none: the newest) on the client's server.
    pub(super) fn new(
        client: Client,
        id: Option<&str>,
        follow: bool,
        purpose: Use,
    ) -> Result<RemoteFeed, u8> {
        let id = client::resolve(&client, id)?;
        let ctrl_c = if follow {
            Some(follow::interrupt(client.runtime())?)
        } else {
            None
        };
        Ok(RemoteFeed {
            client,
            id,
            purpose,
            ctrl_c,
            stream: None,
            ended: None,
            seen: 0,
            arrived: Vec::new(),
        })
    }
}

/// Takes in the complete messages of an open stream's bytes so far: each event newer than
/// `seen` moves it on, and is kept in `arrived` when the command shows events.
fn take_messages(open: &mut Open, seen: &mut i64, arrived: Option<&mut Vec<Json>>) {
    let mut kept = Vec::new();
    while let Some(end) = open.pending.windows(2).position(|w| w == b"\n\n") {
        let message: Vec<u8> = open.pending.drain(..end + 2).collect();
        let Some(event) = event_of(&String::from_utf8_lossy(&message)) else {
            continue;
        };
        let seq = event["seq"].as_i64().unwrap_or_default();
        if seq > *seen {
            *seen = seq;
            kept.push(event);
        }
    }
    if let Some(arrived) = arrived {
        arrived.extend(kept);
    }
}

/// The event of one SSE message (its `data` lines, JSON); `None` for a comment (keep-alive).
fn event_of(message: &str) -> Option<Json> {
    let data: Vec<&str> = message
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .map(|d| d.strip_prefix(' ').unwrap_or(d))
        .collect();
    if data.is_empty() {
        return None;
    }
    serde_json::from_str(&data.join("\n")).ok()
}

impl Feed for RemoteFeed {
    fn status(&mut self) -> Result<Json, u8> {
        let (doc, last_seq) = client::status_and_seq(&self.client, &self.id)?;
        // Events are shown from the stream, in order: it must open after the last shown.
        if self.purpose == Use::WakeUp {
            self.seen = self.seen.max(last_seq);
        }
        Ok(doc)
    }

    fn events(&mut self, after: i64) -> Result<Vec<Json>, u8> {
        let (_, doc) = self.client.call(
            client::Method::Get,
            &["v1", "migrations", &self.id, "events"],
            &[("after", &after.to_string())],
            None,
        )?;
        let events = doc.as_array().cloned().unwrap_or_default();
        if let Some(last) = events.last().and_then(|e| e["seq"].as_i64()) {
            self.seen = self.seen.max(last);
        }
        Ok(events)
    }

    fn arrived(&mut self) -> Option<Vec<Json>> {
        self.stream.as_ref()?;
        Some(std::mem::take(&mut self.arrived))
    }

    /// `GET .../steps/{step}/logs` of each step, merged in the order the lines were written.
    fn logs(&mut self, marks: &[(String, i64)]) -> Result<Vec<Json>, u8> {
        let mut lines = Vec::new();
        for (step, mark) in marks {
            let doc = self
                .client
                .get(&["v1", "migrations", &self.id, "steps", step, "logs"])?;
            let new = doc.as_array().into_iter().flatten();
            lines.extend(
                new.filter(|l| l["seq"].as_i64().is_some_and(|s| s > *mark))
                    .cloned(),
            );
        }
        lines.sort_by_key(|l| l["seq"].as_i64().unwrap_or_default());
        Ok(lines)
    }

    fn wait(&mut self) -> Result<bool, u8> {
        let Some(ctrl_c) = &mut self.ctrl_c else {
            return Ok(true);
        };
        let runtime = self.client.runtime();
        if self.stream.is_none() {
            // A stream that ended is opened again no sooner than IDLE after.
            if let Some(ended) = self.ended.take() {
                let interrupted = runtime.block_on(async {
                    tokio::select! {
                        _ = ctrl_c.recv() => true,
                        () = tokio::time::sleep_until(ended + IDLE) => false,
                    }
                });
                if interrupted {
                    return Ok(false);
                }
            }
            let response = self.client.stream(&self.id, self.seen)?;
            self.stream = Some(Open {
                response,
                pending: Vec::new(),
            });
        }
        // The first bytes end the wait, after gathering what follows them closely: a burst
        // of events is one look, not one each.
        let deadline = Instant::now() + IDLE;
        let mut gathering = false;
        loop {
            let Some(open) = &mut self.stream else {
                return Ok(true);
            };
            let until = if gathering {
                deadline.min(Instant::now() + GATHER)
            } else {
                deadline
            };
            let got = runtime.block_on(async {
                tokio::select! {
                    _ = ctrl_c.recv() => None,
                    got = tokio::time::timeout_at(until, open.response.chunk()) => Some(got),
                }
            });
            match got {
                None => return Ok(false),
                // Quiet for a while: look again anyway.
                Some(Err(_elapsed)) => return Ok(true),
                Some(Ok(Ok(Some(bytes)))) => {
                    open.pending.extend(bytes.iter().filter(|b| **b != b'\r'));
                    let arrived = (self.purpose == Use::Events).then_some(&mut self.arrived);
                    take_messages(open, &mut self.seen, arrived);
                    gathering = true;
                }
                // Ended or broken: the next status says whether the migration is final.
                Some(Ok(Ok(None) | Err(_))) => {
                    self.stream = None;
                    self.ended = Some(Instant::now());
                    return Ok(true);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::event_of;

    #[test]
    fn a_message_gives_its_event_and_a_comment_none() {
        let event = event_of("id: 3\nevent: step_started\ndata: {\"seq\":3}\n\n");
        assert_eq!(event.and_then(|e| e["seq"].as_i64()), Some(3));
        assert_eq!(event_of(":\n\n"), None);
    }
}
