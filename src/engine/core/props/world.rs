//! The world the property test feeds the core in: the store, the pools and the processes,
//! modelled in memory, and the checks made after every commit and effect.

use super::*;

#[derive(Debug, Default)]
pub(super) struct Pools {
    held: Mutex<BTreeMap<i64, String>>,
    next: Mutex<i64>,
}

impl Shared for Pools {
    fn take_pool_slot(&self, pool: &str, size: u32, _: &str) -> Result<PoolTake, StoreError> {
        let mut held = self.held.lock().map_err(|_| StoreError::Closed)?;
        if held.values().filter(|p| *p == pool).count() >= size as usize {
            return Ok(PoolTake::Full(Vec::new()));
        }
        let mut next = self.next.lock().map_err(|_| StoreError::Closed)?;
        *next += 1;
        held.insert(*next, pool.to_owned());
        Ok(PoolTake::Taken(*next))
    }

    fn release_pool_slot(&self, slot: i64) {
        if let Ok(mut held) = self.held.lock() {
            held.remove(&slot);
        }
    }

    fn step_durations(&self, _: &str, _: &str, _: u32) -> Vec<chrono::Duration> {
        Vec::new()
    }
}

/// A driver with its store, processes and clock in memory.
pub(super) struct World {
    pub(super) core: Core,
    pub(super) pools: Arc<Pools>,
    pub(super) migration: Migration,
    /// What was committed: step rows, events, the state, gate rows.
    pub(super) rows: BTreeMap<String, StepRow>,
    pub(super) events: Vec<Event>,
    pub(super) state: MigrationState,
    pub(super) gates: BTreeMap<String, GateInfo>,
    /// Attempts running, and whether they were told to stop.
    pub(super) running: Vec<(Start, bool)>,
    pub(super) succeeded: HashSet<String>,
    pub(super) now: DateTime<Utc>,
    /// The decisions made, commit by commit, in an order independent of hash maps.
    pub(super) trace: Vec<Vec<String>>,
}

pub(super) fn fail(why: String) -> TestCaseError {
    TestCaseError::fail(why)
}

impl World {
    pub(super) fn new() -> Result<World, TestCaseError> {
        let now = Utc
            .with_ymd_and_hms(2030, 1, 1, 0, 30, 0)
            .single()
            .ok_or_else(|| fail("time".into()))?;
        let migration = Migration {
            id: MigrationId::generate(now),
            runbook: "props".into(),
            runbook_path: "props.yaml".into(),
            runbook_text: RUNBOOK.into(),
            runbook_files: Default::default(),
            params: serde_json::json!({}),
            masked_params: serde_json::json!({}),
            digest: "digest".into(),
            state: MigrationState::Created,
            starter: "starter".into(),
            created_at: now,
            updated_at: now,
            last_seq: 0,
        };
        let pools = Arc::new(Pools::default());
        let core = Self::build(&migration, Vec::new(), &[], &pools, now)?;
        let mut world = World {
            core,
            pools,
            migration,
            rows: BTreeMap::new(),
            events: Vec::new(),
            state: MigrationState::Created,
            gates: BTreeMap::new(),
            running: Vec::new(),
            succeeded: HashSet::new(),
            now,
            trace: Vec::new(),
        };
        world.attach(Attach::Start)?;
        Ok(world)
    }

    fn build(
        migration: &Migration,
        rows: Vec<StepRow>,
        events: &[Event],
        pools: &Arc<Pools>,
        now: DateTime<Utc>,
    ) -> Result<Core, TestCaseError> {
        let shared: Arc<dyn Shared> = pools.clone();
        let mut core = core_from(
            migration.clone(),
            || Ok(rows),
            events,
            "driver",
            &Inherited::from_process(&[]),
            shared,
            now,
        )
        .map_err(|e| fail(e.to_string()))?;
        core.seed(7);
        Ok(core)
    }

    fn attach(&mut self, how: Attach) -> Result<(), TestCaseError> {
        let left = Recovery {
            gates: self.gates.clone().into_iter().collect(),
            events: self.events.clone(),
            ..Recovery::default()
        };
        let lease = crate::store::Lease {
            migration: self.migration.id.clone(),
            token: "token".into(),
            pid: 1,
            host: "host".into(),
        };
        let now = self.now;
        self.core
            .at(now)
            .recover(how, &left)
            .and_then(|()| self.core.operate(how, &lease, &left))
            .map_err(|e| fail(format!("attach {how:?}: {e}")))?;
        self.round()
    }

    /// One round of the driver: advance, commit, carry out the effects.
    fn round(&mut self) -> Result<(), TestCaseError> {
        let now = self.now;
        self.core
            .at(now)
            .advance()
            .map_err(|e| fail(format!("advance: {e}")))?;
        self.commit()
    }

    fn commit(&mut self) -> Result<(), TestCaseError> {
        let mut decided = Vec::new();
        for effect in self.core.take_gate_closes() {
            if let Effect::CloseGate { step, status, .. } = effect {
                if let Some(g) = self
                    .gates
                    .get_mut(&step)
                    .filter(|g| g.status == GateStatus::Open)
                {
                    g.status = status;
                }
                decided.push(format!("close gate {step}"));
            }
        }
        if let Some(batch) = self.core.take_batch() {
            self.apply(batch, &mut decided)?;
            self.core.committed();
        }
        for effect in self.core.take_effects() {
            match effect {
                Effect::Start(start) => {
                    self.check_start(&start)?;
                    decided.push(format!(
                        "start {} {:?} #{}",
                        start.step, start.work, start.attempt
                    ));
                    self.running.push((start, false));
                }
                Effect::KillInFlight => self.running.iter_mut().for_each(|(_, k)| *k = true),
                Effect::CloseGate { .. } => {
                    return Err(fail("a gate close after the batch".into()));
                }
            }
        }
        self.check_flight()?;
        decided.sort();
        if !decided.is_empty() {
            self.trace.push(decided);
        }
        Ok(())
    }

    fn apply(&mut self, batch: Batch, decided: &mut Vec<String>) -> Result<(), TestCaseError> {
        if batch.expect_state != Some(self.state) {
            return Err(fail(format!(
                "a batch expects {:?}, but {} was committed",
                batch.expect_state, self.state
            )));
        }
        let mut state = self.state;
        for event in batch.events {
            let change = (event.kind == crate::event::EventKind::StateChanged)
                .then(|| serde_json::from_value::<StateChanged>(event.data.clone()).ok())
                .flatten();
            if let Some(change) = change {
                let allowed = TABLE
                    .iter()
                    .find(|(f, _)| *f == state)
                    .map_or(&[][..], |(_, to)| to);
                if change.from != Some(state) || !allowed.contains(&change.to) {
                    return Err(fail(format!(
                        "{:?} -> {} while {state} was the state",
                        change.from, change.to
                    )));
                }
                state = change.to;
                decided.push(format!("state {}", change.to));
            } else {
                decided.push(format!(
                    "{} {}",
                    event.kind.as_str(),
                    event.step.clone().unwrap_or_default()
                ));
            }
            self.events.push(Event {
                seq: self.events.len() as i64 + 1,
                migration: self.migration.id.clone(),
                at: self.now,
                kind: event.kind,
                step: event.step,
                data: event.data,
            });
        }
        if batch.state.unwrap_or(self.state) != state {
            return Err(fail(format!(
                "the batch moves to {:?} but its events to {state}",
                batch.state
            )));
        }
        self.state = state;
        for row in batch.steps {
            if row.state == StepState::Succeeded {
                self.succeeded.insert(row.step.clone());
            }
            self.rows.insert(row.step.clone(), row);
        }
        for gate in batch.gates {
            self.gates.insert(
                gate.step.clone(),
                GateInfo {
                    step: gate.step,
                    status: GateStatus::Open,
                    approvers: gate.approvers,
                    required: gate.required,
                    approvals: Vec::new(),
                    deadline: gate.deadline,
                },
            );
        }
        Ok(())
    }

    pub(super) fn step(&mut self, input: &Input) -> Result<(), TestCaseError> {
        let now = self.now;
        match input {
            Input::Finish(i, how) => {
                if self.running.is_empty() {
                    return Ok(());
                }
                let (start, killed) = self.running.remove(i % self.running.len());
                let outcome = match (killed, how) {
                    (true, _) => Outcome::Cancelled,
                    (false, How::Succeed) => Outcome::Succeeded {
                        outputs: None,
                        exit_code: Some(0),
                    },
                    (false, How::Transient) => Outcome::Failed {
                        error: "flaky".into(),
                        exit_code: Some(75),
                        transient: true,
                    },
                    (false, How::Fail) => Outcome::Failed {
                        error: "broken".into(),
                        exit_code: Some(1),
                        transient: false,
                    },
                };
                let (node, work) = (start.node, start.work);
                drop(start);
                match work {
                    Work::Attempt => self.core.at(now).finished(node, outcome),
                    Work::Undo => self.core.at(now).undone(node, outcome),
                }
            }
            Input::Tick(minutes) => {
                self.now += Duration::minutes(i64::from(*minutes));
                let now = self.now;
                self.core.at(now).due_retries();
                self.gate_deadlines()?;
                self.core
                    .at(now)
                    .window_deadlines()
                    .map_err(|e| fail(e.to_string()))?;
            }
            Input::Pause
            | Input::Cancel
            | Input::CancelRollback
            | Input::Rollback
            | Input::RollbackPast => {
                let past = matches!(input, Input::RollbackPast);
                let (op, rollback) = match input {
                    Input::Pause => (crate::event::Operation::Pause, false),
                    Input::Rollback | Input::RollbackPast => {
                        (crate::event::Operation::Rollback, false)
                    }
                    Input::Cancel => (crate::event::Operation::Cancel, false),
                    _ => (crate::event::Operation::Cancel, true),
                };
                let request = crate::event::OperatorRequest {
                    op,
                    rollback,
                    by: "operator".into(),
                    local: false,
                    comment: None,
                    past_point_of_no_return: past,
                };
                self.core
                    .at(now)
                    .request(request)
                    .map_err(|e| fail(e.to_string()))?;
                let kill = self.core.take_effects();
                let mut rest = Vec::new();
                for effect in kill {
                    match effect {
                        Effect::KillInFlight => {
                            self.running.iter_mut().for_each(|(_, k)| *k = true)
                        }
                        other => rest.push(other),
                    }
                }
                self.core.give_back_effects(rest);
            }
            Input::Approve | Input::Reject => {
                let Some(step) = self
                    .gates
                    .iter()
                    .find(|(_, g)| g.status == GateStatus::Open)
                    .map(|(s, _)| s.clone())
                else {
                    return Ok(());
                };
                let status = if matches!(input, Input::Approve) {
                    GateStatus::Approved
                } else {
                    GateStatus::Rejected
                };
                if let Some(g) = self.gates.get_mut(&step) {
                    g.status = status;
                }
                if let Some(node) = self.core.open_gate_of(&step) {
                    self.core.at(now).gate_closed(node, status, &[]);
                }
            }
            Input::Crash => return self.crash(Attach::Recover),
            Input::Resume => {
                if self.core.at_rest() && self.state == MigrationState::Paused {
                    return self.crash(Attach::Resume(None));
                }
                return Ok(());
            }
        }
        self.round()
    }

    fn gate_deadlines(&mut self) -> Result<(), TestCaseError> {
        let mut due = self.core.gates_past_deadline();
        due.sort_unstable();
        for node in due {
            let Some(gate) = self.core.gate_timeout(node) else {
                continue;
            };
            let won = self
                .gates
                .get(&gate.step)
                .is_some_and(|g| g.status == GateStatus::Open);
            if won {
                if let Some(g) = self.gates.get_mut(&gate.step) {
                    g.status = gate.status;
                }
                if gate.cancels {
                    self.core.gate_timeout_cancels(node);
                }
            }
            if self.core.gate_is_open(node) {
                let status = self
                    .gates
                    .get(&gate.step)
                    .map_or(GateStatus::Open, |g| g.status);
                self.core.gate_closed(node, status, &[]);
            }
        }
        Ok(())
    }

    /// The driver dies (its processes with it); another attaches to what was committed.
    fn crash(&mut self, how: Attach) -> Result<(), TestCaseError> {
        if check_operation(how, self.state).is_err() {
            return Ok(());
        }
        self.running.clear();
        let mut migration = self.migration.clone();
        migration.state = self.state;
        let rows: Vec<StepRow> = self.rows.values().cloned().collect();
        let core = Self::build(&migration, rows, &self.events, &self.pools, self.now)?;
        for n in &core.graph.nodes {
            if let Some(row) = self.rows.get(&n.id)
                && (row.state != n.row.state || row.attempts != n.row.attempts)
            {
                return Err(fail(format!(
                    "{} rebuilt as {} but committed {}",
                    n.id, n.row.state, row.state
                )));
            }
        }
        if core.state != self.state {
            return Err(fail(format!(
                "rebuilt in {} but {} was committed",
                core.state, self.state
            )));
        }
        self.core = core;
        self.attach(how)
    }

    /// Ends everything still running (successfully) and lets the clock run until the core
    /// rests; then every slot must have come back.
    pub(super) fn settle(&mut self) -> Result<(), TestCaseError> {
        for _ in 0..200 {
            if self.core.at_rest() && self.running.is_empty() {
                break;
            }
            if self.running.is_empty() {
                self.step(&Input::Tick(30))?;
            } else {
                self.step(&Input::Finish(0, How::Succeed))?;
            }
        }
        if !self.running.is_empty() {
            return Err(fail("attempts still run at the end".into()));
        }
        if self.core.slots_held() != 0 {
            return Err(fail(format!(
                "{} slots never came back",
                self.core.slots_held()
            )));
        }
        let held = self
            .pools
            .held
            .lock()
            .map(|h| h.len())
            .unwrap_or(usize::MAX);
        if held != 0 {
            return Err(fail(format!("{held} pool slots never came back")));
        }
        Ok(())
    }
}
