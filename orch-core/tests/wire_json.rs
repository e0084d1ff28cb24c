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

#[test]
fn an_event_of_a_type_this_build_does_not_know_decodes_and_writes_back_the_same_json() {
    let json = r#"{"seq":9,"timestamp":"2026-01-01T00:00:00Z","agent_id":"0192d9b4-7c1e-7000-8000-000000000001",
        "type":"FromANewerOrch","answer":42,"nested":{"list":[1,"two",null]},"note":"ü"}"#;
    let rec: EventRecord = serde_json::from_str(json).expect("an unknown type must not fail to decode");
    assert_eq!(rec.seq, 9);
    assert!(rec.keys.agent_id.is_some());
    assert_eq!(rec.event.kind(), "FromANewerOrch");
    assert_eq!(rec.event.category().as_str(), "system");
    assert!(rec.event.summary().contains("FromANewerOrch"), "{}", rec.event.summary());
    let back = serde_json::to_value(&rec).unwrap();
    assert_eq!(back, serde_json::from_str::<serde_json::Value>(json).unwrap());
    // The bare event too.
    let bare = r#"{"type":"FromANewerOrch","answer":42}"#;
    let event: orch_core::wire::Event = serde_json::from_str(bare).unwrap();
    assert_eq!(serde_json::to_string(&event).unwrap(), r#"{"type":"FromANewerOrch","answer":42}"#);
}

#[test]
fn a_known_type_with_bad_fields_is_still_an_error_naming_the_field() {
    let err = serde_json::from_str::<orch_core::wire::Event>(r#"{"type":"Text","txt":"typo"}"#).unwrap_err();
    assert!(err.to_string().contains("missing field `text`"), "{err}");
    let err = serde_json::from_str::<orch_core::wire::Event>(r#"{"text":"no type"}"#).unwrap_err();
    assert!(err.to_string().contains("type"), "{err}");
}

#[test]
fn every_event_kind_is_listed_in_kinds() {
    for event in every_event() {
        if !matches!(event, orch_core::wire::Event::Unknown(_)) {
            assert!(orch_core::wire::Event::KINDS.contains(&event.kind()), "{} is missing", event.kind());
        }
    }
}

/// Every type this build knows has a sample in the fixtures, so the round trip above reads every one
/// (events are read by a hand-written deserializer that must name each type).
#[test]
fn every_kind_has_a_sample_that_reads_back() {
    let kinds: Vec<String> = every_event().iter().map(|e| e.kind().to_string()).collect();
    for kind in orch_core::wire::Event::KINDS {
        assert!(kinds.iter().any(|k| k == kind), "no sample of {kind} in every_event()");
    }
}

#[test]
fn a_websocket_event_frame_is_the_flat_record_and_control_frames_name_themselves() {
    use orch_core::wire::{Event, WsFrame};
    let rec = EventRecord {
        seq: 7,
        timestamp: now(),
        keys: EventKeys { agent_id: Some(new_id()), ..EventKeys::default() },
        event: Event::Text { text: "hi".into() },
    };
    let frame = WsFrame::Event(Box::new(rec.clone()));
    assert_eq!(serde_json::to_value(&frame).unwrap(), serde_json::to_value(&rec).unwrap());
    let v = serde_json::to_value(&frame).unwrap();
    assert_eq!((v["seq"].as_u64(), v["type"].as_str(), v["text"].as_str()), (Some(7), Some("Text"), Some("hi")));
    let back: WsFrame = serde_json::from_value(v).unwrap();
    assert_eq!(back, frame);

    for (frame, json) in [
        (WsFrame::Live { last_seq: 7 }, serde_json::json!({"frame": "live", "last_seq": 7})),
        (WsFrame::Error { message: "gone".into() }, serde_json::json!({"frame": "error", "message": "gone"})),
    ] {
        assert_eq!(serde_json::to_value(&frame).unwrap(), json);
        assert_eq!(serde_json::from_value::<WsFrame>(json).unwrap(), frame);
    }
    let newer = serde_json::json!({"frame": "paused", "until": 3});
    assert_eq!(serde_json::from_value::<WsFrame>(newer.clone()).unwrap(), WsFrame::Other(newer.clone()));
    assert_eq!(serde_json::to_value(WsFrame::Other(newer.clone())).unwrap(), newer);
    assert!(serde_json::from_str::<WsFrame>(r#"{"frame": "live"}"#).is_err(), "live needs last_seq");
}

#[test]
fn an_event_query_decodes_from_just_the_filters_a_client_sets() {
    use orch_core::wire::{EventCategory, EventQuery};
    let q: EventQuery =
        serde_json::from_str(r#"{"after_seq": 3, "types": ["ToolUse"], "categories": ["hook"]}"#).unwrap();
    assert_eq!(
        q,
        EventQuery {
            after_seq: 3,
            types: vec!["ToolUse".into()],
            categories: vec![EventCategory::Hook],
            ..EventQuery::default()
        }
    );
    assert_eq!(serde_json::from_str::<EventQuery>("{}").unwrap(), EventQuery::default());
    let back: EventQuery = serde_json::from_value(serde_json::to_value(&q).unwrap()).unwrap();
    assert_eq!(back, q);
}

/// An `AgentCreated` written before the role, template and tools became fields (they were metadata
/// keys, and the agent carried its executor's state) still decodes, into the typed fields.
#[test]
fn an_agent_created_event_of_an_older_build_decodes_into_the_typed_fields() {
    let json = r##"{"seq":3,"timestamp":"2026-01-01T00:00:00Z","type":"AgentCreated","agent":{
        "id":"0192d9b4-7c1e-7000-8000-000000000001","orchestrator_id":null,"name":"builder-1","model":"scripted",
        "system_prompt":"build","working_dir":"/w","status":"idle","session_id":null,
        "state":{"phase":"idle","message_count":4},
        "usage":{"input_tokens":0,"output_tokens":0,"cache_read_input_tokens":0,"cache_creation_input_tokens":0},
        "total_cost_usd":0.0,"metadata":{"template_name":"builder","template_color":"#ff00aa",
        "tools":["Read","Grep"],"role":"orchestrator","mine":true},"workflow_id":null,"workflow_step":null,
        "archived":false,"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z"}}"##;
    let rec: EventRecord = serde_json::from_str(json).expect("an older AgentCreated decodes");
    let orch_core::wire::Event::AgentCreated { agent } = rec.event else { panic!("not AgentCreated: {rec:?}") };
    assert_eq!(agent.role, orch_core::wire::AgentRole::Orchestrator);
    let template = agent.template.as_ref().expect("template lifted from metadata");
    assert_eq!((template.name.as_str(), template.color.as_deref()), ("builder", Some("#ff00aa")));
    assert_eq!(agent.tools, Some(vec!["Read".to_string(), "Grep".to_string()]));
    assert_eq!(agent.metadata, serde_json::json!({"mine": true}), "only the host's own keys stay");
    // Written back, the agent has the typed fields and no executor state.
    let v = serde_json::to_value(&*agent).unwrap();
    assert_eq!(v["role"], "orchestrator");
    assert_eq!(v["template"]["name"], "builder");
    assert!(v.get("state").is_none(), "the executor's state is not part of an agent");
    // A role from a newer build is kept apart, not an error.
    let newer = json.replace("\"mine\":true", "\"mine\":true}, \"role\":\"auditor\", \"x\":{\"y\":1");
    let rec: EventRecord = serde_json::from_str(&newer).expect("an unknown role decodes");
    let orch_core::wire::Event::AgentCreated { agent } = rec.event else { panic!("not AgentCreated") };
    assert_eq!(agent.role, orch_core::wire::AgentRole::Other);
}
