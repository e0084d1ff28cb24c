//! The attention inbox: everything that waits for a person — parked tool calls and questions, task
//! graph checkpoints, and failed runs — oldest first.

use std::collections::HashMap;

use super::Approvals;
use crate::store::{AgentFilter, StoreError};
use crate::wire::{
    ASK_USER_QUESTION, AgentStatus, AttentionItem, AttentionKind, GraphStatus, TaskStatus, WorkflowStatus,
};

/// Graphs and workflow runs looked at (the newest).
const RECENT: usize = 500;

impl Approvals {
    /// Everything waiting for a person, oldest first: approvals and questions (parked tool calls of
    /// live agents), open checkpoints of task graphs, failed workflow runs and graphs, and agents whose
    /// last run failed (outside workflow runs, which are listed themselves).
    pub async fn attention(&self) -> Result<Vec<AttentionItem>, StoreError> {
        let store = self.store().clone();
        let mut items = Vec::new();
        for a in self.pending().await? {
            let kind = if a.tool_name == ASK_USER_QUESTION { AttentionKind::Question } else { AttentionKind::Approval };
            let mut item = AttentionItem::new(kind, a.id, a.question, a.requested_at);
            item.agent_id = Some(a.agent_id);
            item.agent_name = Some(a.agent_name);
            item.workflow_id = a.workflow_id;
            item.tool = Some(a.tool_name);
            item.input = Some(a.tool_input);
            item.tool_use_id = Some(a.tool_use_id);
            item.seq = Some(a.seq);
            items.push(item);
        }
        let agents = store.list_agents(&AgentFilter::default()).await?;
        let names: HashMap<_, _> = agents.iter().map(|a| (a.id, a.name.clone())).collect();
        for graph in store.list_graphs(RECENT).await? {
            if graph.status == GraphStatus::Failed {
                let why = graph.error.clone().unwrap_or_else(|| "a task failed for good".into());
                let mut item = AttentionItem::new(
                    AttentionKind::FailedRun,
                    graph.id,
                    format!("task graph '{}' failed: {why}", graph.name),
                    graph.completed_at.unwrap_or(graph.updated_at),
                );
                item.graph_id = Some(graph.id);
                item.graph_name = Some(graph.name.clone());
                items.push(item);
                continue;
            }
            if graph.status.is_final() {
                continue;
            }
            for task in store.list_tasks(graph.id).await? {
                let Some(why) = task.checkpoint.clone().filter(|_| task.status == TaskStatus::Blocked) else {
                    continue;
                };
                let mut item = AttentionItem::new(
                    AttentionKind::Checkpoint,
                    task.id,
                    format!("task {} ({}): {why}", task.key, task.title),
                    task.updated_at,
                );
                item.graph_id = Some(graph.id);
                item.graph_name = Some(graph.name.clone());
                item.agent_id = task.agent_id;
                item.agent_name = task.agent_id.and_then(|id| names.get(&id).cloned());
                items.push(item);
            }
        }
        for run in store.list_workflows(None, RECENT).await? {
            if run.status != WorkflowStatus::Failed {
                continue;
            }
            let why = match (&run.error_step, &run.error_message) {
                (Some(step), Some(m)) => format!("step {step}: {m}"),
                (None, Some(m)) => m.clone(),
                (Some(step), None) => format!("step {step} failed"),
                (None, None) => "it failed".into(),
            };
            let mut item = AttentionItem::new(
                AttentionKind::FailedRun,
                run.id,
                format!("workflow run '{}' failed: {why}", run.name),
                run.completed_at.unwrap_or(run.updated_at),
            );
            item.workflow_id = Some(run.id);
            item.workflow_name = Some(run.name.clone());
            items.push(item);
        }
        for agent in agents.iter().filter(|a| a.status == AgentStatus::Blocked && a.workflow_id.is_none()) {
            let mut item = AttentionItem::new(
                AttentionKind::FailedRun,
                agent.id,
                format!("the last run of agent '{}' failed", agent.name),
                agent.updated_at,
            );
            item.agent_id = Some(agent.id);
            item.agent_name = Some(agent.name.clone());
            items.push(item);
        }
        items.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.seq.cmp(&b.seq)));
        Ok(items)
    }
}
