//! The wire format: every event, with every key set, survives JSON both ways with no duplicate fields.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use orch_core::store::testkit::fixtures::every_event;
use orch_core::wire::{EventKeys, EventRecord, new_id, now};

#[test]
fn every_event_record_round_trips_through_json_with_all_keys_set() {
    for (i, event) in every_event().into_iter().enumerate() {
        let rec = EventRecord {
            seq: i as u64 + 1,
            timestamp: now(),
            keys: EventKeys {
                agent_id: Some(new_id()),
                orchestrator_id: Some(new_id()),
                workflow_id: Some(new_id()),
                step: Some("build".into()),
                task_slug: Some("slug-1".into()),
            },
            event,
        };
        let json = serde_json::to_string(&rec).unwrap();
        let back: EventRecord = serde_json::from_str(&json)
            .unwrap_or_else(|e| panic!("{} does not parse back: {e}\n{json}", rec.event.kind()));
        assert_eq!(back, rec);
        // The JSON is flat: `type` and `seq` at the top, the payload beside them.
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["type"], rec.event.kind());
        assert_eq!(v["seq"], i as u64 + 1);
        assert_eq!(v["step"], "build");
    }
}
