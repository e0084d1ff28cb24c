//! The "needs you" inbox: everything waiting for a person (`GET /api/attention`), most urgent first,
//! and which events mean the inbox may have changed.

use orch_core::wire::{AttentionItem, AttentionKind, Event, EventRecord, Id};

/// How urgent a kind is (lower first): a parked tool call or a question holds an agent; a checkpoint
/// holds a graph; a failed run waits for a look.
pub fn urgency(kind: AttentionKind) -> u8 {
    match kind {
        AttentionKind::Approval | AttentionKind::Question => 0,
        AttentionKind::Checkpoint => 1,
        _ => 2,
    }
}

/// The items most urgent first, the oldest first within a kind.
pub fn sort(items: &mut [AttentionItem]) {
    items.sort_by(|a, b| urgency(a.kind).cmp(&urgency(b.kind)).then(a.created_at.cmp(&b.created_at)));
}

/// The label of a kind.
pub fn label(kind: AttentionKind) -> &'static str {
    match kind {
        AttentionKind::Approval => "APPROVAL",
        AttentionKind::Question => "QUESTION",
        AttentionKind::Checkpoint => "CHECKPOINT",
        _ => "FAILED",
    }
}

/// Whether `r` may add or remove an inbox item (the inbox is then fetched again).
pub fn touches(r: &EventRecord) -> bool {
    matches!(
        &r.event,
        Event::ApprovalRequested { .. }
            | Event::ApprovalResolved { .. }
            | Event::TaskUpdated { .. }
            | Event::GraphUpdated { .. }
            | Event::WorkflowUpdated { .. }
            | Event::AgentStatusChanged { .. }
    )
}

/// The items of `new` that were not waiting in `old` (what a notification announces).
pub fn newly_waiting<'a>(old: &[AttentionItem], new: &'a [AttentionItem]) -> Vec<&'a AttentionItem> {
    new.iter().filter(|n| !old.iter().any(|o| o.id == n.id && o.kind == n.kind)).collect()
}

/// The page title: the count of waiting items first, so a background tab shows it.
pub fn title(count: usize) -> String {
    if count == 0 { "orch — dashboard".into() } else { format!("({count}) orch — needs you") }
}

/// What a batch of selected items gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchAction {
    /// Approve the tool calls; retry the checkpoints.
    Approve,
    /// Deny the tool calls; fail the checkpoints.
    Deny,
    /// Skip the checkpoints (tool calls are left as they are).
    Skip,
}

/// Whether an item can be part of a batch (approvals and checkpoints: questions need their own answer,
/// failed runs their own look).
pub fn batchable(kind: AttentionKind) -> bool {
    matches!(kind, AttentionKind::Approval | AttentionKind::Checkpoint)
}

/// The requests (path, JSON body) that apply `action` to the selected items, in the inbox's order.
pub fn batch_requests(
    items: &[AttentionItem],
    selected: &std::collections::BTreeSet<Id>,
    action: BatchAction,
) -> Vec<(String, serde_json::Value)> {
    use serde_json::json;
    items
        .iter()
        .filter(|i| selected.contains(&i.id) && batchable(i.kind))
        .filter_map(|i| {
            let id = i.id;
            match (i.kind, action) {
                (AttentionKind::Approval, BatchAction::Approve) => {
                    Some((format!("/api/approvals/{id}/approve"), json!({})))
                }
                (AttentionKind::Approval, BatchAction::Deny) => {
                    Some((format!("/api/approvals/{id}/deny"), json!({"reason": "denied in a batch from the inbox"})))
                }
                (AttentionKind::Checkpoint, a) => {
                    let action = match a {
                        BatchAction::Approve => "retry",
                        BatchAction::Deny => "fail",
                        BatchAction::Skip => "skip",
                    };
                    Some((format!("/api/checkpoints/{id}/resolve"), json!({"action": action})))
                }
                _ => None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(kind: &str, at: &str) -> AttentionItem {
        serde_json::from_value(json!({"kind": kind, "id": orch_core::wire::Id::from_u128(1), "question": "q",
                                      "created_at": at}))
        .unwrap()
    }

    #[test]
    fn the_most_urgent_and_oldest_come_first() {
        let mut items = vec![
            item("failed_run", "2026-12-03T08:00:00Z"),
            item("checkpoint", "2026-12-03T08:00:00Z"),
            item("question", "2026-12-03T08:05:00Z"),
            item("approval", "2026-12-03T08:01:00Z"),
        ];
        sort(&mut items);
        let kinds: Vec<&str> = items.iter().map(|i| label(i.kind)).collect();
        assert_eq!(kinds, ["APPROVAL", "QUESTION", "CHECKPOINT", "FAILED"]);
        let old = vec![item("approval", "2026-12-03T08:01:00Z")];
        let mut newer = old.clone();
        let mut q = item("question", "2026-12-03T08:05:00Z");
        q.id = orch_core::wire::Id::from_u128(2);
        newer.push(q);
        assert_eq!(newly_waiting(&old, &newer).len(), 1);
        assert!(newly_waiting(&newer, &old).is_empty(), "a resolved item announces nothing");
        assert_eq!(title(0), "orch — dashboard");
        assert_eq!(title(3), "(3) orch — needs you");
    }

    #[test]
    fn a_batch_approves_or_retries_denies_or_fails_and_skips_only_checkpoints() {
        let mut items = Vec::new();
        for (n, kind) in [(1, "approval"), (2, "checkpoint"), (3, "question"), (4, "approval")] {
            let mut i = item(kind, "2026-12-03T08:00:00Z");
            i.id = Id::from_u128(n);
            items.push(i);
        }
        let all: std::collections::BTreeSet<Id> = (1..=4).map(Id::from_u128).collect();
        let paths =
            |a| batch_requests(&items, &all, a).into_iter().map(|(p, b)| format!("{p} {b}")).collect::<Vec<_>>();
        let (a1, a2, a4) = (Id::from_u128(1), Id::from_u128(2), Id::from_u128(4));
        assert_eq!(
            paths(BatchAction::Approve),
            [
                format!("/api/approvals/{a1}/approve {{}}"),
                format!("/api/checkpoints/{a2}/resolve {{\"action\":\"retry\"}}"),
                format!("/api/approvals/{a4}/approve {{}}"),
            ]
        );
        assert_eq!(paths(BatchAction::Deny).len(), 3);
        assert!(paths(BatchAction::Deny)[1].contains("\"fail\""));
        assert_eq!(paths(BatchAction::Skip), [format!("/api/checkpoints/{a2}/resolve {{\"action\":\"skip\"}}")]);
        let one: std::collections::BTreeSet<Id> = [a4].into();
        assert_eq!(batch_requests(&items, &one, BatchAction::Approve).len(), 1);
    }
}
