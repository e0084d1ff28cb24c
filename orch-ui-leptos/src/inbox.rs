//! The "needs you" inbox: everything waiting for a person (`GET /api/attention`), most urgent first,
//! and which events mean the inbox may have changed.

use orch_core::wire::{AttentionItem, AttentionKind, Event, EventRecord};

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
}
