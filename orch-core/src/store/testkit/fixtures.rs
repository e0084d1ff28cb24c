//! Fixture builders (deterministic content, microsecond timestamps).

use super::*;

/// A fixed base time plus `secs` seconds and `secs` microseconds (microsecond precision).
pub fn ts(secs: i64) -> Timestamp {
    let base = chrono::DateTime::parse_from_rfc3339("2025-03-04T05:06:07.123456Z")
        .expect("valid fixture time")
        .with_timezone(&chrono::Utc);
    base + chrono::Duration::seconds(secs) + chrono::Duration::microseconds(secs)
}

/// An orchestrator created at `ts(i)`.
pub fn orchestrator(i: i64) -> Orchestrator {
    Orchestrator {
        id: crate::wire::new_id(),
        session_id: Some(format!("session-{i}")),
        system_prompt: format!("You are orchestrator {i}. «ünïcødé» \"quoted\"\nsecond line"),
        status: AgentStatus::Idle,
        working_dir: format!("/tmp/orch-{i}"),
        usage: Usage::default(),
        total_cost_usd: 0.0,
        context_used: 0,
        context_window: None,
        metadata: serde_json::json!({"i": i, "tags": ["a", "b"], "nested": {"x": 1.5, "n": null}}),
        archived: false,
        created_at: ts(i),
        updated_at: ts(i),
    }
}

/// An agent named `name` under `orchestrator_id`, created at `ts(i)`.
pub fn agent(name: &str, orchestrator_id: Option<Id>, i: i64) -> Agent {
    Agent {
        id: crate::wire::new_id(),
        orchestrator_id,
        name: name.to_string(),
        model: "anthropic:claude-sonnet-4".to_string(),
        system_prompt: Some(format!("system prompt of {name}")),
        working_dir: format!("/work/{name}"),
        status: AgentStatus::Idle,
        session_id: None,
        role: AgentRole::Agent,
        parent_id: None,
        template: Some(TemplateRef { name: "builder".into(), color: Some("#ff00aa".into()) }),
        tools: Some(vec!["Read".into(), "Grep".into()]),
        usage: Usage {
            input_tokens: 10,
            output_tokens: 20,
            cache_read_input_tokens: 30,
            cache_creation_input_tokens: 40,
        },
        total_cost_usd: 0.25,
        context_used: 12_345,
        context_window: Some(200_000),
        compact_at: Some(0.7),
        metadata: serde_json::json!({"template": "builder", "colour": "#ff00aa"}),
        workflow_id: None,
        workflow_step: Some("build".to_string()),
        archived: false,
        run: None,
        created_at: ts(i),
        updated_at: ts(i),
    }
}

/// A chat message of `orchestrator_id` created at `ts(i)`.
pub fn chat(orchestrator_id: Id, i: i64, text: &str) -> ChatMessage {
    ChatMessage {
        id: crate::wire::new_id(),
        orchestrator_id,
        sender: if i % 2 == 0 { Participant::User } else { Participant::Orchestrator },
        receiver: if i % 2 == 0 { Participant::Orchestrator } else { Participant::User },
        agent_id: None,
        message: text.to_string(),
        summary: Some(format!("summary {i}")),
        metadata: serde_json::json!({"i": i}),
        created_at: ts(i),
    }
}

/// A prompt to `agent_id` created at `ts(i)`.
pub fn prompt(agent_id: Option<Id>, i: i64) -> Prompt {
    Prompt {
        id: crate::wire::new_id(),
        agent_id,
        task_slug: Some(format!("task-{i}")),
        author: if i % 2 == 0 { PromptAuthor::Engineer } else { PromptAuthor::OrchestratorAgent },
        prompt_text: format!("do thing {i}\nwith ‘quotes’"),
        summary: None,
        session_id: Some("s".into()),
        created_at: ts(i),
    }
}

/// A system log created at `ts(i)`.
pub fn log(level: LogLevel, message: &str, i: i64) -> SystemLog {
    SystemLog {
        id: crate::wire::new_id(),
        level,
        message: message.to_string(),
        summary: None,
        file_path: Some("src/main.rs".into()),
        workflow_id: None,
        workflow_step: None,
        metadata: serde_json::json!({"i": i}),
        created_at: ts(i),
    }
}

/// A workflow record created at `ts(i)`.
pub fn workflow(orchestrator_id: Option<Id>, i: i64) -> WorkflowRecord {
    WorkflowRecord {
        id: crate::wire::new_id(),
        orchestrator_id,
        name: format!("wf-{i}"),
        workflow_type: "plan_build".into(),
        description: Some("plan then build".into()),
        status: WorkflowStatus::Pending,
        current_step: None,
        total_steps: 4,
        completed_steps: 0,
        started_at: None,
        completed_at: None,
        duration_seconds: None,
        input_data: serde_json::json!({"prompt": "build it"}),
        output_data: serde_json::json!({}),
        error_message: None,
        error_step: None,
        error_count: 0,
        metadata: serde_json::json!({"i": i}),
        run: None,
        created_at: ts(i),
        updated_at: ts(i),
    }
}

/// A draft plan (version 1) of three tasks, created at `ts(i)`: `design`, then `build` and `docs` on it.
pub fn plan(i: i64) -> Plan {
    let task = |key: &str, deps: &[&str]| PlannedTask {
        key: key.into(),
        title: format!("{key} «ü» \"quoted\""),
        description: format!("Do {key}.\nCarefully."),
        task_type: "code".into(),
        complexity: Complexity::Medium,
        depends_on: deps.iter().map(|d| d.to_string()).collect(),
        model: (key == "design").then(|| "sonnet".into()),
        tools: vec!["Read".into(), "Write".into()],
        verification: vec![format!("{key} passes its tests")],
        estimated_cost_usd: (key == "design").then_some(0.25),
        estimated_minutes: (key == "design").then_some(12.5),
    };
    Plan {
        id: crate::wire::new_id(),
        version: 1,
        status: PlanStatus::Draft,
        requirements: format!("Requirements {i}: a parser\nwith tests"),
        tasks: vec![task("design", &[]), task("build", &["design"]), task("docs", &["design"])],
        model: Some("scripted".into()),
        source_file: None,
        cost_usd: 0.0125,
        created_at: ts(i),
        updated_at: ts(i),
    }
}

/// A pending graph of `plan`'s first version, created at `ts(i)`.
pub fn graph(plan_id: Option<Id>, i: i64) -> TaskGraph {
    TaskGraph {
        id: crate::wire::new_id(),
        name: format!("graph-{i}"),
        plan_id,
        plan_version: plan_id.map(|_| 1),
        status: GraphStatus::Pending,
        total_tasks: 3,
        waves: 2,
        budget_usd: Some(2.5),
        cost_usd: 0.0,
        error: None,
        created_at: ts(i),
        updated_at: ts(i),
        started_at: None,
        completed_at: None,
    }
}

/// A pending, never-started task of `graph_id` at position `index`, in `wave`, created at `ts(i)`.
pub fn task(graph_id: Id, index: u32, wave: u32, depends_on: Vec<Id>, i: i64) -> Task {
    Task {
        id: crate::wire::new_id(),
        graph_id,
        index,
        key: format!("task-{}", index + 1),
        title: format!("Task {index} «ü»"),
        description: format!("Do thing {index}.\n\"Quoted\"."),
        task_type: "research".into(),
        complexity: Complexity::Simple,
        tools: vec!["Grep".into()],
        verification: vec!["a summary exists".into()],
        estimated_cost_usd: (index == 0).then_some(0.125),
        estimated_minutes: (index == 0).then_some(7.5),
        depends_on,
        wave,
        status: TaskStatus::Pending,
        attempt: 0,
        model: None,
        claimed_by: None,
        lease_until: None,
        not_before: None,
        agent_id: None,
        cost_usd: 0.0,
        output: None,
        error: None,
        failures: 0,
        checkpoint: None,
        guidance: Vec::new(),
        knowledge: Vec::new(),
        created_at: ts(i),
        updated_at: ts(i),
        started_at: None,
        completed_at: None,
    }
}

/// A running graph of `n` tasks in `waves` waves (for benchmarks of the task queue): each task after the
/// first wave depends on one task of the wave before; the first wave is ready, the rest pending.
pub fn wave_graph(n: u64, waves: u64) -> (TaskGraph, Vec<Task>) {
    let at = crate::wire::now();
    let mut g = graph(None, 0);
    g.name = "bench".into();
    g.status = GraphStatus::Running;
    g.total_tasks = u32::try_from(n).unwrap_or(u32::MAX);
    g.waves = u32::try_from(waves).unwrap_or(u32::MAX);
    g.budget_usd = None;
    (g.created_at, g.updated_at, g.started_at) = (at, at, Some(at));
    let per_wave = (n / waves.max(1)).max(1);
    let mut tasks: Vec<Task> = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
    for i in 0..n {
        let wave = (i / per_wave).min(waves.saturating_sub(1));
        let depends_on = match i.checked_sub(per_wave) {
            Some(parent) if wave > 0 => vec![tasks[usize::try_from(parent).unwrap_or(0)].id],
            _ => Vec::new(),
        };
        let index = u32::try_from(i).unwrap_or(u32::MAX);
        let mut t = task(g.id, index, u32::try_from(wave + 1).unwrap_or(u32::MAX), depends_on, 0);
        t.key = format!("t{i}");
        t.title = format!("task {i}");
        t.description = String::new();
        t.task_type = "code".into();
        t.tools = Vec::new();
        t.verification = Vec::new();
        t.status = if wave == 0 { TaskStatus::Ready } else { TaskStatus::Pending };
        (t.created_at, t.updated_at) = (at, at);
        tasks.push(t);
    }
    (g, tasks)
}

/// The tasks a claim took, from its commit's records (for benchmarks of the task queue).
pub fn claimed(records: Vec<EventRecord>) -> Vec<Task> {
    records
        .into_iter()
        .filter_map(|r| match r.event {
            Event::TaskUpdated { task } if task.status == TaskStatus::Running => Some(*task),
            _ => None,
        })
        .collect()
}

/// The change that completes a claimed task at once, fenced by its attempt (for benchmarks of the task
/// queue).
pub fn completed(mut t: Task) -> crate::store::Change {
    let fence = t.attempt;
    t.status = TaskStatus::Completed;
    t.output = Some("ok".into());
    t.claimed_by = None;
    t.completed_at = Some(crate::wire::now());
    crate::store::Change::FinishTask { task: Box::new(t), fence }
}

/// One event of every [`Event`] variant, with awkward content (unicode, quotes, newlines, nested JSON,
/// extreme numbers).
pub fn every_event() -> Vec<Event> {
    let agent = agent("créé \"agent\"", Some(crate::wire::new_id()), 3);
    let chat = chat(crate::wire::new_id(), 2, "hello\n\t\"world\" \\ 🚀");
    let big = Usage {
        input_tokens: u64::MAX,
        output_tokens: 1 << 53 | 1,
        cache_read_input_tokens: 0,
        cache_creation_input_tokens: 7,
    };
    let events = vec![
        Event::AgentCreated { agent: Box::new(agent) },
        Event::AgentStatusChanged { old_status: AgentStatus::Idle, new_status: AgentStatus::Executing },
        Event::AgentCostsUpdated {
            model: "openai:gpt-4.1".into(),
            usage: big,
            cost_usd: 0.1 + 0.2,
            total_usage: Usage { input_tokens: 1, ..Usage::default() },
            total_cost_usd: 1e-12,
            context_used: Some(180_000),
            context_window: Some(200_000),
        },
        Event::AgentDeleted {},
        Event::UserPromptSubmit {
            prompt: "Ünïcode prompt with ‘quotes’ and \u{1F600}".into(), prompt_length: 41
        },
        Event::PreToolUse {
            tool_name: "Write".into(),
            tool_input: serde_json::json!({
                "file_path": "src/main.rs",
                "content": "fn main() {\n    println!(\"hi\");\n}\n",
                "zeta": [1, -2, 3.25, true, null, {"deep": {"deeper": []}}],
                "alpha": u64::MAX,
                "neg": i64::MIN,
            }),
            tool_use_id: "toolu_01".into(),
        },
        Event::PostToolUse { tool_name: "Write".into(), result: None, is_error: true, tool_use_id: "toolu_01".into() },
        Event::Stop { reason: "end_turn".into(), num_turns: u32::MAX, duration_ms: u64::MAX },
        Event::SubagentStart {
            subagent_id: "sub-1".into(),
            subagent_type: "reviewer".into(),
            description: "Review the diff".into(),
            tool_use_id: "toolu_07".into(),
        },
        Event::SubagentStop {
            subagent_id: "sub-1".into(),
            tool_use_id: Some("toolu_07".into()),
            reason: Some("end_turn".into()),
            cost_usd: 0.25,
        },
        Event::PreCompact { tokens_before: 123_456 },
        Event::Compacted {
            trigger: crate::wire::CompactTrigger::Auto,
            tokens_before: 170_000,
            tokens_after: 21_000,
            messages_replaced: 40,
            messages_kept: 6,
            summary: "The user asked for a parser; it is written and tested.".into(),
            replaced: vec![crate::wire::Message::user_text("write a parser")],
        },
        Event::HookInvoked {
            hook_event: "PreToolUse".into(),
            hook_name: "deny-rm".into(),
            tool_name: Some("Bash".into()),
            decision: "deny".into(),
            detail: Some("rm -rf is not allowed".into()),
        },
        Event::Text { text: String::new() },
        Event::Thinking { thinking: "hmm…".into(), signature: Some("c2lnbmF0dXJl".into()) },
        Event::ToolUse {
            tool_name: "Bash".into(),
            tool_input: serde_json::json!({"command": "echo 'a' \"b\" $HOME"}),
            tool_use_id: "toolu_02".into(),
        },
        Event::ToolResult {
            tool_use_id: "toolu_02".into(),
            tool_name: "Bash".into(),
            content: "a \"b\" /root\n\u{7}bell".into(),
            is_error: false,
        },
        Event::ToolRefused {
            tool_name: "Read".into(),
            tool_use_id: "toolu_03".into(),
            reason: "path ../../etc/passwd escapes the working directory".into(),
        },
        Event::Result {
            is_error: false,
            stop_reason: "end_turn".into(),
            num_turns: 3,
            duration_ms: 1234,
            usage: Usage {
                input_tokens: 100,
                output_tokens: 50,
                cache_read_input_tokens: 25,
                cache_creation_input_tokens: 5,
            },
            cost_usd: 0.012345678901234,
            result: Some("Done.".into()),
        },
        Event::ModelError {
            model: "anthropic:claude".into(),
            message: "429 Too Many Requests".into(),
            retryable: true,
        },
        Event::ModelRetry {
            model: "claude-sonnet-4-5".into(),
            attempt: 2,
            wait_ms: 1500,
            error: "provider overloaded: try later".into(),
        },
        Event::SystemLog {
            level: LogLevel::Warning,
            message: "disk almost full".into(),
            metadata: serde_json::json!({"free_bytes": 1024}),
        },
        Event::ChatMessage { message: Box::new(chat) },
        Event::WorkflowUpdated { workflow: Box::new(workflow(None, 5)) },
        Event::StepStart {
            step_name: "plan".into(),
            prompt: "/plan add a parser".into(),
            model: "claude-opus-4-5".into(),
            attempt: 1,
        },
        Event::StepEnd {
            step_name: "review".into(),
            status: crate::wire::StepStatus::Success,
            duration_ms: 12_345,
            payload: serde_json::json!({"verdict": "PASS"}),
        },
        Event::InterruptRequested { requested_by: "cli".into() },
        Event::ApprovalRequested {
            approval: crate::wire::new_id(),
            tool_use_id: "toolu_ask".into(),
            tool_name: "Write".into(),
            tool_input: serde_json::json!({"file_path": "ü.txt", "content": "x\n"}),
            question: "May I write ü.txt?".into(),
        },
        Event::ApprovalResolved {
            approval: crate::wire::new_id(),
            decision: crate::wire::ApprovalDecision::Deny,
            text: Some("not here".into()),
            by: "api".into(),
        },
        Event::PlanUpdated { plan: Box::new(plan(6)) },
        Event::GraphUpdated { graph: Box::new(graph(Some(crate::wire::new_id()), 7)) },
        Event::TaskUpdated {
            task: Box::new(Task {
                status: TaskStatus::Running,
                attempt: 2,
                claimed_by: Some("worker-1".into()),
                lease_until: Some(ts(30)),
                cost_usd: 0.5,
                ..task(crate::wire::new_id(), 4, 2, vec![crate::wire::new_id()], 8)
            }),
        },
        Event::OrchestratorCreated { orchestrator: Box::new(orchestrator(4)) },
        Event::OrchestratorCostsUpdated {
            usage: Usage { input_tokens: 10, output_tokens: 20, ..Usage::default() },
            cost_usd: 0.25,
            total_usage: big,
            total_cost_usd: 1e-9,
        },
        Event::FileTracking {
            text_seq: Some(41),
            file_changes: vec![crate::wire::FileChange {
                path: "src/ü.rs".into(),
                absolute_path: "/w/src/ü.rs".into(),
                status: crate::wire::FileChangeStatus::Deleted,
                lines_added: 0,
                lines_removed: 12,
                diff: Some("--- a/src/ü.rs\n+++ /dev/null\n-x\n".into()),
                summary: "Removed src/ü.rs (-12 lines)".into(),
                tools: vec!["Bash".into()],
            }],
            read_files: vec![crate::wire::FileRead {
                path: "README.md".into(),
                absolute_path: "/w/README.md".into(),
                line_count: None,
            }],
        },
        Event::SummaryUpdated { target_seq: u64::MAX >> 12, summary: "Wrote the greeting file".into() },
        Event::Undecodable {
            stored_type: "ToolUse".into(),
            error: "recursion limit exceeded at line 1 column 140".into(),
        },
        Event::Unknown(crate::wire::UnknownEvent::new(
            "FromANewerOrch",
            serde_json::json!({"answer": 42, "nested": {"list": [1, "two", null]}, "text": "ü\n"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        )),
    ];
    for e in &events {
        covers(e);
    }
    events
}

/// Fails to compile when a variant is added to [`Event`] without a sample in [`every_event`].
fn covers(e: &Event) {
    match e {
        Event::AgentCreated { .. }
        | Event::AgentStatusChanged { .. }
        | Event::AgentCostsUpdated { .. }
        | Event::AgentDeleted { .. }
        | Event::UserPromptSubmit { .. }
        | Event::PreToolUse { .. }
        | Event::PostToolUse { .. }
        | Event::Stop { .. }
        | Event::SubagentStart { .. }
        | Event::SubagentStop { .. }
        | Event::PreCompact { .. }
        | Event::Compacted { .. }
        | Event::HookInvoked { .. }
        | Event::ApprovalRequested { .. }
        | Event::ApprovalResolved { .. }
        | Event::Text { .. }
        | Event::Thinking { .. }
        | Event::ToolUse { .. }
        | Event::ToolResult { .. }
        | Event::ToolRefused { .. }
        | Event::Result { .. }
        | Event::ModelError { .. }
        | Event::ModelRetry { .. }
        | Event::SystemLog { .. }
        | Event::ChatMessage { .. }
        | Event::WorkflowUpdated { .. }
        | Event::StepStart { .. }
        | Event::StepEnd { .. }
        | Event::PlanUpdated { .. }
        | Event::GraphUpdated { .. }
        | Event::TaskUpdated { .. }
        | Event::InterruptRequested { .. }
        | Event::OrchestratorCreated { .. }
        | Event::OrchestratorCostsUpdated { .. }
        | Event::FileTracking { .. }
        | Event::SummaryUpdated { .. }
        | Event::Undecodable { .. }
        | Event::Unknown(_) => {}
    }
}

/// A `Text` event numbered `i`, with the given keys.
pub fn text(i: u64, keys: EventKeys) -> crate::wire::NewEvent {
    crate::wire::NewEvent::new(keys, Event::Text { text: format!("event {i}") })
}
