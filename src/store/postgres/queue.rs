//! Writes nobody waits for, in the order they were sent: step log lines, step process
//! records and pool slot releases. One task takes whatever is queued and writes it in one
//! transaction; a flush is answered once everything sent before it is committed. A group
//! that fails is written again item by item, so one bad line loses only itself; what cannot
//! be written is counted ([`Queue::lost`]).

use super::super::{MigrationId, NewLogLine, StepProcess, StoreError};
use super::db::Db;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::{mpsc, oneshot};

/// The most items one transaction takes.
const MAX_GROUP: usize = 512;

#[derive(Debug)]
pub enum Work {
    /// A line, and the lease token it is written under (see `Store::fenced_by`).
    Log(MigrationId, NewLogLine, Option<Arc<str>>),
    Process(MigrationId, StepProcess),
    Release(i64),
    Flush(oneshot::Sender<()>),
}

#[derive(Debug)]
pub struct Queue {
    tx: Mutex<Option<mpsc::UnboundedSender<Work>>>,
    /// Taken by [`Queue::start`].
    rx: Mutex<Option<(mpsc::UnboundedReceiver<Work>, oneshot::Sender<()>)>>,
    lost: Arc<AtomicU64>,
}

impl Queue {
    /// A queue, and what resolves once it is closed and drained.
    pub fn new() -> (Queue, oneshot::Receiver<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let (done, drained) = oneshot::channel();
        let queue = Queue {
            tx: Mutex::new(Some(tx)),
            rx: Mutex::new(Some((rx, done))),
            lost: Arc::new(AtomicU64::new(0)),
        };
        (queue, drained)
    }

    /// Starts the task that writes what is sent.
    pub fn start(&self, runtime: &tokio::runtime::Handle, db: Arc<Db>) {
        let taken = self
            .rx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some((rx, done)) = taken {
            runtime.spawn(run(rx, done, db, self.lost.clone()));
        }
    }

    pub fn send(&self, work: Work) {
        let tx = self.tx.lock().unwrap_or_else(PoisonError::into_inner);
        let sent = tx.as_ref().is_some_and(|tx| tx.send(work).is_ok());
        if !sent {
            self.lost.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Resolves once everything sent before is committed (or could not be).
    pub fn flush(
        &self,
    ) -> impl std::future::Future<Output = Result<(), StoreError>> + Send + 'static {
        let (tx, rx) = oneshot::channel();
        self.send(Work::Flush(tx));
        async move { rx.await.map_err(|_| StoreError::Closed) }
    }

    /// Lines and records that could not be written.
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }

    /// No more sends; the task writes what is queued and ends.
    pub fn close(&self) {
        self.tx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }
}

async fn run(
    mut rx: mpsc::UnboundedReceiver<Work>,
    done: oneshot::Sender<()>,
    db: Arc<Db>,
    lost: Arc<AtomicU64>,
) {
    while let Some(first) = rx.recv().await {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(work) => group.push(work),
                Err(_) => break,
            }
        }
        let (writes, flushes): (Vec<Work>, Vec<Work>) = group
            .into_iter()
            .partition(|w| !matches!(w, Work::Flush(_)));
        if !writes.is_empty() && write(&db, &writes).await.is_err() {
            for work in &writes {
                if write(&db, std::slice::from_ref(work)).await.is_err() {
                    lost.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        for flush in flushes {
            if let Work::Flush(tx) = flush {
                let _ = tx.send(());
            }
        }
    }
    let _ = done.send(());
}

/// Writes `group` in one transaction.
async fn write(db: &Db, group: &[Work]) -> Result<(), StoreError> {
    let mut tx = db.begin().await?;
    for work in group {
        match work {
            Work::Log(id, line, fence) => {
                super::write::insert_log(&mut tx.tx, id, line, fence.as_deref()).await?
            }
            Work::Process(id, p) => super::processes::record(&mut tx.tx, id, p).await?,
            Work::Release(slot) => super::pool::release(&mut tx.tx, *slot).await?,
            Work::Flush(_) => {}
        }
    }
    tx.commit(db).await
}
