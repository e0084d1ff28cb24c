//! The "needs you" inbox: approvals, questions, checkpoints and failed runs across every agent,
//! workflow and graph, most urgent first, each with its actions in place; approvals and checkpoints
//! can be selected and approved (retried), denied (failed) or skipped together.

use std::collections::BTreeSet;

use leptos::prelude::*;
use orch_core::wire::{AttentionItem, AttentionKind};
use serde_json::json;

use super::{Ui, View, net};
use crate::format;
use crate::inbox::{self, BatchAction};

#[component]
pub fn Inbox(ui: Ui) -> impl IntoView {
    let selected = RwSignal::new(BTreeSet::<orch_core::wire::Id>::new());
    // What is no longer waiting is no longer selected.
    Effect::new(move |_| {
        let ids: BTreeSet<orch_core::wire::Id> = ui.attention.with(|a| a.iter().map(|i| i.id).collect());
        selected.update(|s| s.retain(|id| ids.contains(id)));
    });
    let batch = move |action: BatchAction, what: &'static str| {
        let reqs = ui.attention.with_untracked(|a| selected.with_untracked(|s| inbox::batch_requests(a, s, action)));
        selected.set(BTreeSet::new());
        net::post_all(ui, reqs, what);
    };
    let batchable =
        move || ui.attention.with(|a| a.iter().filter(|i| inbox::batchable(i.kind)).map(|i| i.id).collect::<Vec<_>>());
    view! {
        <div class="inbox">
            <div class="filters" role="toolbar" aria-label="Inbox">
                <b class="title">"Needs you"</b>
                <span class="muted">"approvals, questions, checkpoints and failed runs, most urgent first"</span>
                <button class="tool" on:click=move |_| net::refresh_attention(ui)>"Refresh"</button>
                <button class="tool" class:on=move || ui.notify.get() aria-pressed=move || ui.notify.get().to_string()
                    title="A browser notification when something starts waiting for you (while this tab is in the background)"
                    on:click=move |_| if ui.notify.get_untracked() { ui.notify.set(false) } else { net::ask_to_notify(ui) }>
                    {move || if ui.notify.get() { "Notifying" } else { "Notify me" }}
                </button>
            </div>
            {move || (!batchable().is_empty()).then(|| view! {
                <div class="filters batch" role="toolbar" aria-label="Batch actions" data-testid="batch">
                    <label>
                        <input type="checkbox" aria-label="Select every approval and checkpoint"
                            prop:checked=move || { let all = batchable(); !all.is_empty() && selected.with(|s| all.iter().all(|i| s.contains(i))) }
                            on:change=move |e| if event_target_checked(&e) { selected.set(batchable().into_iter().collect()) } else { selected.set(BTreeSet::new()) }/>
                        " all"
                    </label>
                    <span class="muted" data-testid="selected">{move || format!("{} selected", selected.with(BTreeSet::len))}</span>
                    <button class="ok" prop:disabled=move || selected.with(BTreeSet::is_empty)
                        title="Approve the tool calls, retry the checkpoints"
                        on:click=move |_| batch(BatchAction::Approve, "Approving the selected")>"Approve / retry"</button>
                    <button class="bad" prop:disabled=move || selected.with(BTreeSet::is_empty)
                        title="Deny the tool calls, fail the checkpoints"
                        on:click=move |_| batch(BatchAction::Deny, "Denying the selected")>"Deny / fail"</button>
                    <button prop:disabled=move || selected.with(BTreeSet::is_empty)
                        title="Skip the checkpoints"
                        on:click=move |_| batch(BatchAction::Skip, "Skipping the selected")>"Skip"</button>
                </div>
            })}
            <div class="items" data-testid="inbox">
                {move || {
                    let now = ui.now.get();
                    let items = ui.attention.get();
                    if items.is_empty() {
                        return view! { <p class="empty">"Nothing is waiting for you."</p> }.into_any();
                    }
                    items.into_iter().map(|i| item(ui, i, now, selected)).collect_view().into_any()
                }}
            </div>
        </div>
    }
}

fn item(
    ui: Ui,
    i: AttentionItem,
    now: f64,
    selected: RwSignal<BTreeSet<orch_core::wire::Id>>,
) -> impl IntoView + use<> {
    let waited = ((now - i.created_at.timestamp_millis() as f64) / 1000.0).max(0.0) as u64;
    let who = [i.agent_name.clone(), i.workflow_name.clone(), i.graph_name.clone()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" · ");
    let text = RwSignal::new(String::new());
    let id = i.id;
    let kind = i.kind;
    let post = move |path: String, body: serde_json::Value, what: &'static str| {
        net::post_then(ui, path, body, what, move || net::refresh_attention(ui));
    };
    let input = i.input.as_ref().map(|v| format::truncate(&serde_json::to_string_pretty(v).unwrap_or_default(), 600));
    let actions = match kind {
        AttentionKind::Approval => view! {
            <button class="ok" on:click=move |_| post(format!("/api/approvals/{id}/approve"), json!({}), "Approving")>"Approve"</button>
            <input type="text" placeholder="Reason (optional)" aria-label="Reason for denying"
                prop:value=move || text.get() on:input=move |e| text.set(event_target_value(&e))/>
            <button class="bad" on:click=move |_| {
                let reason = text.get_untracked();
                let body = if reason.trim().is_empty() { json!({}) } else { json!({"reason": reason}) };
                post(format!("/api/approvals/{id}/deny"), body, "Denying");
            }>"Deny"</button>
        }
        .into_any(),
        AttentionKind::Question => view! {
            <input type="text" placeholder="Your answer" aria-label="Answer"
                prop:value=move || text.get() on:input=move |e| text.set(event_target_value(&e))/>
            <button class="ok" on:click=move |_| {
                post(format!("/api/approvals/{id}/answer"), json!({"answer": text.get_untracked()}), "Answering");
            }>"Answer"</button>
        }
        .into_any(),
        AttentionKind::Checkpoint => {
            let resolve = move |action: &'static str| {
                let guidance = text.get_untracked();
                let body = if guidance.trim().is_empty() {
                    json!({"action": action})
                } else {
                    json!({"action": action, "guidance": guidance})
                };
                post(format!("/api/checkpoints/{id}/resolve"), body, "Resolving the checkpoint");
            };
            view! {
                <input type="text" placeholder="Guidance for a retry (optional)" aria-label="Guidance"
                    prop:value=move || text.get() on:input=move |e| text.set(event_target_value(&e))/>
                <button class="ok" on:click=move |_| resolve("retry")>"Retry"</button>
                <button on:click=move |_| resolve("skip")>"Skip"</button>
                <button class="bad" on:click=move |_| resolve("fail")>"Fail"</button>
            }
            .into_any()
        }
        _ => {
            let workflow = i.workflow_id;
            let agent = i.agent_id;
            view! {
                {workflow.map(|w| view! {
                    <button on:click=move |_| post(format!("/api/adws/{w}/resume"), json!({}), "Resuming the workflow")>"Resume"</button>
                })}
                {agent.map(|a| view! {
                    <button on:click=move |_| {
                        ui.filter.update(|f| { f.agents.clear(); f.agents.insert(a); });
                        ui.view.set(View::Logs);
                    }>"Show its events"</button>
                })}
            }
            .into_any()
        }
    };
    view! {
        <div class=format!("item urg-{}", inbox::urgency(kind)) data-kind=inbox::label(kind)>
            <div class="item-head">
                {inbox::batchable(kind).then(|| view! {
                    <input type="checkbox" class="pick" aria-label=format!("Select this {}", inbox::label(kind).to_ascii_lowercase())
                        prop:checked=move || selected.with(|s| s.contains(&id))
                        on:change=move |e| { let on = event_target_checked(&e); selected.update(|s| { if on { s.insert(id); } else { s.remove(&id); } }); }/>
                })}
                <span class="kind">{inbox::label(kind)}</span>
                <b>{who}</b>
                {i.tool.clone().map(|t| view! { <code>{t}</code> })}
                <span class="muted waited">{format!("waiting {}", format::duration(waited))}</span>
            </div>
            <p class="question">{i.question.clone()}</p>
            {input.map(|s| view! { <pre class="json">{s}</pre> })}
            <div class="actions">{actions}</div>
        </div>
    }
}
