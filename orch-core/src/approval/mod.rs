//! A person in the loop: tool calls parked by a PreToolUse hook's `ask` (see
//! [`HookDecision::Ask`](crate::hook::HookDecision::Ask)), and the people who approve, deny or answer
//! them.
//!
//! A parked call lives in two places written in one commit: the agent's saved loop state (the call,
//! the question, the input as the hooks left it, and later the decision) and the log
//! ([`Event::ApprovalRequested`], [`Event::ApprovalResolved`]). The log answers "what waits" without
//! a table of its own; the state is what the run continues from, so a restart loses nothing.
//!
//! Resolving claims the agent first (the same compare-and-swap in the store that keeps two processes
//! from running one agent), so two people resolving at once, in two processes, cannot both succeed:
//! the second gets [`ApprovalError::AlreadyResolved`]. The claim is handed back in [`Resolved`]: the
//! resolver continues the run under it, here or in the background, or releases it for another process
//! (a server following the log) to continue ([`Approvals::claim_resolved`]).

mod attention;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::ErrorKind;
use crate::executor::{
    AgentRunner, LoopState, RunClaim, RunError, RunOptions, RunOutcome, RunTicket, Supervisor, agent_keys,
};
use crate::store::{Batch, Change, EventQuery, SavedState, Store, StoreError};
use crate::wire::{Agent, ApprovalDecision, Event, EventRecord, Id, Timestamp};

/// A tool call that waits, or waited, for a person.
#[derive(Debug, Clone, PartialEq)]
pub struct Approval {
    /// Its id.
    pub id: Id,
    /// The agent whose run parked.
    pub agent_id: Id,
    /// The agent's name (as it is now).
    pub agent_name: String,
    /// The workflow run the agent belongs to, if any.
    pub workflow_id: Option<Id>,
    /// The tool call's id.
    pub tool_use_id: String,
    /// The tool.
    pub tool_name: String,
    /// The input it runs with if approved.
    pub tool_input: serde_json::Value,
    /// What the person is asked.
    pub question: String,
    /// When the run parked.
    pub requested_at: Timestamp,
    /// The seq of its `ApprovalRequested` event.
    pub seq: u64,
    /// How it was resolved, once it was.
    pub resolution: Option<Resolution>,
}

/// A person's decision on an [`Approval`].
#[derive(Debug, Clone, PartialEq)]
pub struct Resolution {
    /// Approve, deny or answer.
    pub decision: ApprovalDecision,
    /// The reason of a denial, or the answer.
    pub text: Option<String>,
    /// Who decided (`api`, `cli`, …).
    pub by: String,
    /// When.
    pub at: Timestamp,
}

/// Why an approval could not be read or resolved.
#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    /// No approval has that id.
    #[error("approval {0} not found")]
    NotFound(Id),
    /// It was resolved before.
    #[error("approval {id} was already {} by {by}", decision.past())]
    AlreadyResolved {
        /// The approval.
        id: Id,
        /// How.
        decision: ApprovalDecision,
        /// By whom.
        by: String,
    },
    /// Its agent was deleted.
    #[error("approval {id} was for agent '{agent}', which was deleted")]
    AgentGone {
        /// The approval.
        id: Id,
        /// The agent's name.
        agent: String,
    },
    /// The agent's turn no longer holds the call (it was reset or ended without it).
    #[error("approval {0} no longer waits: the agent's turn no longer holds that tool call")]
    Stale(Id),
    /// An answer was empty.
    #[error("the answer is empty")]
    EmptyAnswer,
    /// The agent is running (someone is resolving or continuing it right now).
    #[error(transparent)]
    Run(#[from] RunError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ApprovalError {
    /// Not found for an unknown id or a deleted agent; conflict for one resolved already or no longer
    /// waiting; usage for an empty answer; the run's or store's own kind otherwise.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::NotFound(_) | Self::AgentGone { .. } => ErrorKind::NotFound,
            Self::AlreadyResolved { .. } | Self::Stale(_) => ErrorKind::Conflict,
            Self::EmptyAnswer => ErrorKind::Usage,
            Self::Run(e) => e.kind(),
            Self::Store(e) => e.kind(),
        }
    }
}

/// A resolution just recorded, with the agent still claimed: continue its run under
/// [`Resolved::claim`], or release the claim for another process to continue it.
#[derive(Debug)]
pub struct Resolved {
    /// The approval, as resolved.
    pub approval: Approval,
    /// The agent.
    pub agent: Agent,
    /// The agent's claim.
    pub claim: RunClaim,
}

impl Resolved {
    /// Continues the run in the background of `supervisor` (observers watch it; a failure is reported
    /// as a command's is).
    pub fn continue_in_background(self, supervisor: &Supervisor) -> RunTicket {
        let options = resume_options(&self.agent);
        supervisor.resume_claimed(&self.agent, self.claim, options)
    }

    /// Continues the run here and waits for it (it may park again on another call).
    pub async fn continue_here(self, runner: &AgentRunner, options: RunOptions) -> Result<RunOutcome, RunError> {
        let options =
            RunOptions { allowed_tools: options.allowed_tools.or_else(|| allowed_tools(&self.agent)), ..options };
        runner.run_claimed(self.claim, None, options).await
    }
}

/// The options of a continued run: the agent's own tools.
pub fn resume_options(agent: &Agent) -> RunOptions {
    RunOptions { allowed_tools: allowed_tools(agent), ..RunOptions::default() }
}

fn allowed_tools(agent: &Agent) -> Option<Vec<String>> {
    agent.tools.as_ref().map(|t| t.iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
}

/// Approvals on one supervisor's store: list, resolve, and claim resolved ones to continue.
#[derive(Debug, Clone)]
pub struct Approvals {
    supervisor: Supervisor,
}

/// Events read per page.
const PAGE: usize = 1000;

impl Approvals {
    /// Approvals of the runs `supervisor` runs.
    pub fn new(supervisor: Supervisor) -> Self {
        Self { supervisor }
    }

    fn store(&self) -> &Arc<dyn Store> {
        self.supervisor.runner().store()
    }

    /// Every approval (of live agents, unless `include_deleted`), oldest first, resolved or not.
    pub async fn list(&self, include_deleted: bool) -> Result<Vec<Approval>, StoreError> {
        let store = self.store().as_ref();
        let requested = events_of(store, "ApprovalRequested", None).await?;
        let resolutions: HashMap<Id, Resolution> =
            events_of(store, "ApprovalResolved", None).await?.iter().filter_map(resolution_of).collect();
        let mut agents: HashMap<Id, Option<Agent>> = HashMap::new();
        let mut out = Vec::new();
        for rec in &requested {
            let Some(agent_id) = rec.keys.agent_id else { continue };
            if let std::collections::hash_map::Entry::Vacant(slot) = agents.entry(agent_id) {
                slot.insert(store.get_agent(agent_id).await?);
            }
            let agent = agents.get(&agent_id).and_then(Option::as_ref);
            if !include_deleted && agent.is_none_or(|a| a.archived) {
                continue;
            }
            if let Some(mut a) = approval_of(rec, agent) {
                a.resolution = resolutions.get(&a.id).cloned();
                out.push(a);
            }
        }
        Ok(out)
    }

    /// The approvals that wait for a person (of live agents), oldest first.
    pub async fn pending(&self) -> Result<Vec<Approval>, StoreError> {
        Ok(self.list(false).await?.into_iter().filter(|a| a.resolution.is_none()).collect())
    }

    /// One approval, resolved or not (also of a deleted agent).
    pub async fn get(&self, id: Id) -> Result<Approval, ApprovalError> {
        find(self.store().as_ref(), id).await
    }

    /// Records a person's decision on approval `id`: the agent is claimed, the decision saved in its
    /// turn's state and the `ApprovalResolved` event appended, in one commit. The claim is returned
    /// held: continue the run under it ([`Resolved::continue_in_background`], [`Resolved::continue_here`])
    /// or release it for another process.
    ///
    /// Errors: unknown id → [`ApprovalError::NotFound`]; resolved before → `AlreadyResolved`; its agent
    /// deleted → `AgentGone`; an empty answer → `EmptyAnswer`; the agent running right now (another
    /// resolution continuing it) → `AlreadyResolved` when that one resolved it, else a busy `Run` error.
    pub async fn resolve(
        &self,
        id: Id,
        decision: ApprovalDecision,
        text: Option<String>,
        by: &str,
    ) -> Result<Resolved, ApprovalError> {
        let text = text.map(|t| t.trim().to_string()).filter(|t| !t.is_empty());
        if decision == ApprovalDecision::Answer && text.is_none() {
            return Err(ApprovalError::EmptyAnswer);
        }
        let approval = self.get(id).await?;
        if let Some(r) = &approval.resolution {
            return Err(ApprovalError::AlreadyResolved { id, decision: r.decision, by: r.by.clone() });
        }
        let store = self.store().clone();
        let agent = match store.get_agent(approval.agent_id).await? {
            Some(a) if !a.archived => a,
            _ => return Err(ApprovalError::AgentGone { id, agent: approval.agent_name.clone() }),
        };
        let runner = self.supervisor.runner();
        let claim = match runner.claim(agent.id, &agent.name, None, None).await {
            Ok(claim) => claim,
            Err(e @ RunError::AgentBusy { .. }) => {
                // Most likely another person's resolution, now continuing the run.
                return Err(match self.get(id).await?.resolution {
                    Some(r) => ApprovalError::AlreadyResolved { id, decision: r.decision, by: r.by },
                    None => ApprovalError::Run(e),
                });
            }
            Err(e) => return Err(e.into()),
        };
        let mut state = load_state(store.as_ref(), &agent).await?;
        let Some(parked) = state.parked_mut(id) else {
            return Err(ApprovalError::Stale(id));
        };
        if let Some((decision, _)) = parked.resolution {
            let by = self.get(id).await?.resolution.map_or_else(|| "someone".into(), |r| r.by);
            return Err(ApprovalError::AlreadyResolved { id, decision, by });
        }
        parked.resolution = Some((decision, text.clone()));
        let slug = state.turn.as_ref().map(|t| t.task_slug.clone());
        let value = serde_json::to_value(&state)
            .map_err(|e| RunError::BadState { agent: agent.name.clone(), message: e.to_string() })?;
        let saved = SavedState { state: Some(value), session_id: agent.session_id.clone() };
        let event = Event::ApprovalResolved { approval: id, decision, text: text.clone(), by: by.to_string() };
        let batch = Batch::new()
            .change(Change::SaveAgentState { id: agent.id, state: saved })
            .event(agent_keys(&agent, slug), event);
        let records = store.commit(batch).await?;
        tracing::info!(agent = %agent.name, approval = %id, decision = decision.as_str(), by, "a person resolved a tool call");
        let at = records.first().map_or_else(crate::wire::now, |r| r.timestamp);
        let approval = Approval { resolution: Some(Resolution { decision, text, by: by.to_string(), at }), ..approval };
        Ok(Resolved { approval, agent, claim })
    }

    /// Claims the agent of approval `id` if its turn holds the call resolved and not yet continued:
    /// what a process that follows the log does when it sees an `ApprovalResolved` another process
    /// appended. `None`: nothing to continue (it was continued, the agent runs, or it is gone).
    pub async fn claim_resolved(&self, id: Id) -> Result<Option<Resolved>, ApprovalError> {
        let approval = match self.get(id).await {
            Ok(a) if a.resolution.is_some() => a,
            Ok(_) | Err(ApprovalError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let store = self.store().clone();
        let Some(agent) = store.get_agent(approval.agent_id).await?.filter(|a| !a.archived) else { return Ok(None) };
        if agent.run.as_ref().is_some_and(|l| !crate::executor::lease::is_stale(l)) {
            return Ok(None);
        }
        let claim = match self.supervisor.runner().claim(agent.id, &agent.name, None, None).await {
            Ok(claim) => claim,
            Err(RunError::AgentBusy { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let mut state = load_state(store.as_ref(), &agent).await?;
        match state.parked_mut(id) {
            Some(p) if p.resolution.is_some() => Ok(Some(Resolved { approval, agent, claim })),
            _ => {
                claim.release().await;
                Ok(None)
            }
        }
    }

    /// Whether approval `id` is resolved and its run has not continued from it yet (no process has
    /// taken it up).
    pub async fn awaits_continuation(&self, id: Id) -> Result<bool, ApprovalError> {
        let approval = self.get(id).await?;
        let store = self.store().as_ref();
        let Some(agent) = store.get_agent(approval.agent_id).await?.filter(|a| !a.archived) else { return Ok(false) };
        let mut state = load_state(store, &agent).await?;
        Ok(state.parked_mut(id).is_some_and(|p| p.resolution.is_some()))
    }

    /// The resolved approvals whose runs have not continued yet (their process stopped, or the
    /// resolution came from a process that left the continuing to another): a server continues these
    /// when it starts.
    pub async fn awaiting_continuation(&self) -> Result<Vec<Id>, StoreError> {
        let store = self.store().as_ref();
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for rec in events_of(store, "ApprovalResolved", None).await? {
            let (Event::ApprovalResolved { approval, .. }, Some(agent_id)) = (&rec.event, rec.keys.agent_id) else {
                continue;
            };
            let Some(agent) = store.get_agent(agent_id).await?.filter(|a| !a.archived) else { continue };
            if !seen.insert(*approval) {
                continue;
            }
            if let Ok(mut state) = load_state(store, &agent).await
                && state.parked_mut(*approval).is_some_and(|p| p.resolution.is_some())
            {
                out.push(*approval);
            }
        }
        Ok(out)
    }
}

/// Approval `id` in `store`, resolved or not (also of a deleted agent): what a process without an
/// engine (a CLI checking an id before it opens one) can read.
pub async fn find(store: &dyn Store, id: Id) -> Result<Approval, ApprovalError> {
    let requested = events_of(store, "ApprovalRequested", None).await?;
    let rec = requested
        .iter()
        .find(|r| matches!(&r.event, Event::ApprovalRequested { approval, .. } if *approval == id))
        .ok_or(ApprovalError::NotFound(id))?;
    let agent = match rec.keys.agent_id {
        Some(agent_id) => store.get_agent(agent_id).await?,
        None => None,
    };
    let mut approval = approval_of(rec, agent.as_ref()).ok_or(ApprovalError::NotFound(id))?;
    approval.resolution = events_of(store, "ApprovalResolved", Some(approval.agent_id))
        .await?
        .iter()
        .filter_map(resolution_of)
        .find_map(|(aid, r)| (aid == id).then_some(r));
    Ok(approval)
}

/// [`RunError::WaitingForPerson`] for an agent whose turn waits for a person, else `None`.
pub(crate) async fn waiting_of(store: &dyn Store, agent: &Agent) -> Result<Option<RunError>, StoreError> {
    let Ok(state) = load_state(store, agent).await else { return Ok(None) };
    Ok(state.waiting().map(|(call, parked)| RunError::WaitingForPerson {
        agent: agent.name.clone(),
        approval: parked.id,
        tool: call.name.clone(),
    }))
}

/// The agent's saved native loop state.
async fn load_state(store: &dyn Store, agent: &Agent) -> Result<LoopState, ApprovalError> {
    match store.load_executor_state(agent.id).await? {
        None => Ok(LoopState::default()),
        Some(v) => serde_json::from_value(v)
            .map_err(|e| RunError::BadState { agent: agent.name.clone(), message: e.to_string() }.into()),
    }
}

/// Every event of `kind` (of `agent`, if given), oldest first.
async fn events_of(store: &dyn Store, kind: &str, agent: Option<Id>) -> Result<Vec<EventRecord>, StoreError> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let q = EventQuery {
            after_seq: after,
            agent_id: agent,
            types: vec![kind.to_string()],
            limit: Some(PAGE),
            ..EventQuery::default()
        };
        let page = store.read_events(&q).await?;
        let full = page.len() >= PAGE;
        if let Some(last) = page.last() {
            after = last.seq;
        }
        out.extend(page);
        if !full {
            return Ok(out);
        }
    }
}

fn approval_of(rec: &EventRecord, agent: Option<&Agent>) -> Option<Approval> {
    let Event::ApprovalRequested { approval, tool_use_id, tool_name, tool_input, question } = &rec.event else {
        return None;
    };
    Some(Approval {
        id: *approval,
        agent_id: rec.keys.agent_id?,
        agent_name: agent.map(|a| a.name.clone()).unwrap_or_default(),
        workflow_id: rec.keys.workflow_id,
        tool_use_id: tool_use_id.clone(),
        tool_name: tool_name.clone(),
        tool_input: tool_input.clone(),
        question: question.clone(),
        requested_at: rec.timestamp,
        seq: rec.seq,
        resolution: None,
    })
}

fn resolution_of(rec: &EventRecord) -> Option<(Id, Resolution)> {
    let Event::ApprovalResolved { approval, decision, text, by } = &rec.event else { return None };
    Some((*approval, Resolution { decision: *decision, text: text.clone(), by: by.clone(), at: rec.timestamp }))
}
