//! `orch events`: the event log, oldest first, printed once or followed live.

use std::io::Write;
use std::sync::Arc;

use futures::StreamExt;
use orch_core::store::{AgentFilter, EventQuery, Store};
use orch_core::wire::{Event, EventRecord, Id};

use crate::chat::Failure;
use crate::signals::Sigint;

fn print_event(r: &EventRecord, names: &std::collections::HashMap<Id, String>, json: bool) {
    let mut out = std::io::stdout().lock();
    if json {
        if let Ok(line) = serde_json::to_string(r) {
            let _ = writeln!(out, "{line}");
        }
    } else {
        let who = r.keys.agent_id.and_then(|id| names.get(&id)).map(String::as_str).unwrap_or("-");
        let _ = writeln!(
            out,
            "{:>6}  {}  {:<12} {:<18} {}",
            r.seq,
            r.timestamp.format("%H:%M:%S%.3f"),
            who,
            r.event.kind(),
            r.event.summary()
        );
    }
    let _ = out.flush();
}

/// The live agent called `name`: a free-standing one of `orch run`, else one of the newest
/// orchestrator's, else the newest of any orchestrator's.
async fn find_agent_anywhere(store: &dyn Store, name: &str) -> Result<Id, Failure> {
    if let Some(a) = store.find_agent(None, name).await? {
        return Ok(a.id);
    }
    if let Some(o) = orch_core::orchestrator::Orchestrator::latest(store).await?
        && let Some(a) = store.find_agent(Some(o.id), name).await?
    {
        return Ok(a.id);
    }
    let mut all = store.list_agents(&AgentFilter::default()).await?;
    all.retain(|a| a.name == name && !orch_core::orchestrator::is_orchestrator_agent(a));
    all.sort_by_key(|a| a.created_at);
    all.last().map(|a| a.id).ok_or_else(|| Failure::usage(format!("no agent named '{name}'")))
}

/// `orch events`; with a SIGINT listener it follows the log until Ctrl-C.
pub async fn events(
    store: Arc<dyn Store>,
    sigint: Option<Sigint>,
    agent: Option<&str>,
    since: u64,
    limit: Option<usize>,
    json: bool,
) -> Result<u8, Failure> {
    let agent_id = match agent {
        None => None,
        Some(name) => Some(find_agent_anywhere(store.as_ref(), name).await?),
    };
    let mut names = std::collections::HashMap::new();
    for a in store.list_agents(&AgentFilter { include_archived: true, ..AgentFilter::default() }).await? {
        names.insert(a.id, a.name);
    }
    let Some(mut sigint) = sigint else {
        let q = EventQuery { after_seq: since, agent_id, limit, ..EventQuery::default() };
        for r in store.read_events(&q).await? {
            print_event(&r, &names, json);
        }
        return Ok(0);
    };
    let mut stream = store.subscribe(since);
    let mut printed = 0usize;
    loop {
        tokio::select! {
            // A pending Ctrl-C wins over a backlog still to print.
            biased;
            _ = sigint.recv() => return Ok(130),
            next = stream.next() => match next {
                Some(Ok(r)) => {
                    if let Event::AgentCreated { agent } = &r.event {
                        names.insert(agent.id, agent.name.clone());
                    }
                    if agent_id.is_none() || r.keys.agent_id == agent_id {
                        print_event(&r, &names, json);
                        printed += 1;
                        if limit.is_some_and(|l| printed >= l) {
                            return Ok(0);
                        }
                    }
                }
                Some(Err(e)) => return Err(e.into()),
                None => return Ok(0),
            },
        }
    }
}
