//! Workflow runs as swimlanes: one row per run (type, name, status, live elapsed or final duration,
//! cancel / resume), a lane per step with a square per event, type filters, and a form to start one.
//! A square's click opens the event's detail panel.

use std::collections::{BTreeSet, HashSet};

use leptos::prelude::*;
use orch_core::wire::{Id, WorkflowStatus};
use serde_json::json;

use super::{Ui, net};
use crate::buffer::Class;
use crate::format;
use crate::model::Run;

#[component]
pub fn Swimlanes(ui: Ui) -> impl IntoView {
    let hidden = RwSignal::new(BTreeSet::<Class>::new());
    // Each run's stored events are loaded once, when the view first shows it.
    let loaded = StoredValue::new(HashSet::<Id>::new());
    Effect::new(move |_| {
        let ids: Vec<Id> = ui.workflows.with(|w| w.runs().iter().map(|r| r.record.id).collect());
        for id in ids {
            let fresh = loaded.try_update_value(|l| l.insert(id)).unwrap_or(false);
            if fresh {
                net::load_workflow_events(ui, id);
            }
        }
    });
    let kind = RwSignal::new(String::new());
    let prompt = RwSignal::new(String::new());
    let start = move || {
        let types = ui.workflow_types.get_untracked();
        let t = kind.get_untracked();
        let t = if t.is_empty() { types.first().cloned().unwrap_or_default() } else { t };
        if t.is_empty() || prompt.with_untracked(|p| p.trim().is_empty()) {
            ui.notice.set(Some("Pick a workflow type and write its prompt first.".into()));
            return;
        }
        net::post(
            ui,
            "/api/adws".into(),
            json!({"type": t, "prompt": prompt.get_untracked()}),
            "Starting the workflow",
        );
        prompt.set(String::new());
    };
    view! {
        <div class="adws">
            <div class="filters" role="toolbar" aria-label="Workflow filters">
                <b class="title">"AI Developer Workflows"</b>
                {Class::ALL.into_iter().map(|c| view! {
                    <button class=format!("chip cls-{}", c.name()) class:on=move || !hidden.with(|h| h.contains(&c))
                        aria-pressed=move || (!hidden.with(|h| h.contains(&c))).to_string()
                        on:click=move |_| hidden.update(|h| {
                            // At least one type stays shown.
                            if !h.remove(&c) && h.len() + 1 < Class::ALL.len() { h.insert(c); }
                        })>{c.label()}</button>
                }).collect_view()}
            </div>
            <form class="start" on:submit=move |e| { e.prevent_default(); start(); }>
                <select aria-label="Workflow type" on:change=move |e| kind.set(event_target_value(&e))>
                    {move || ui.workflow_types.get().into_iter().map(|t| view! { <option value=t.clone()>{t.clone()}</option> }).collect_view()}
                </select>
                <input type="text" placeholder="What should the workflow do?" aria-label="Workflow prompt"
                    prop:value=move || prompt.get() on:input=move |e| prompt.set(event_target_value(&e))/>
                <button type="submit" prop:disabled=move || !ui.connected()>"Start"</button>
            </form>
            <div class="runs" data-testid="adws">
                {move || {
                    let hidden = hidden.get();
                    ui.workflows.with(|w| {
                        let runs = w.runs();
                        if runs.is_empty() {
                            return view! { <p class="empty">"No workflow runs yet. Start one above, or ask the orchestrator."</p> }.into_any();
                        }
                        runs.into_iter().map(|r| run_row(ui, r, &hidden)).collect_view().into_any()
                    })
                }}
            </div>
        </div>
    }
}

fn run_row(ui: Ui, run: &Run, hidden: &BTreeSet<Class>) -> impl IntoView + use<> {
    let r = &run.record;
    let id = r.id;
    let status = r.status.as_str();
    // Only the elapsed time follows the clock (not the run's lanes).
    let elapsed = move || {
        let now = chrono::DateTime::from_timestamp_millis(ui.now.get() as i64).unwrap_or_default();
        ui.workflows.with(|w| w.run(id).and_then(|r| r.elapsed(now))).map(format::duration).unwrap_or_default()
    };
    let can_cancel = matches!(r.status, WorkflowStatus::InProgress | WorkflowStatus::Pending);
    let can_resume = r.status == WorkflowStatus::Cancelled;
    let lanes = run
        .lanes
        .iter()
        .map(|(step, squares)| {
            let squares = squares
                .iter()
                .filter(|s| !hidden.contains(&s.class))
                .map(|s| {
                    let record = s.record.clone();
                    let tip = format!("{}: {}", s.record.event.kind(), s.record.event.summary());
                    view! {
                        <button class=format!("sq cls-{}", s.class.name()) title=tip.clone() aria-label=tip
                            on:click=move |_| ui.detail.set(Some(record.clone()))>{icon(s.record.event.kind())}</button>
                    }
                })
                .collect_view();
            view! {
                <div class="lane">
                    <span class="lane-name">{format::step_title(step)}</span>
                    <div class="squares">{squares}</div>
                </div>
            }
        })
        .collect_view();
    let placeholder = run.lanes.is_empty().then_some(match r.status {
        WorkflowStatus::Pending => "Waiting to start…",
        WorkflowStatus::InProgress => "Running…",
        _ => "No events",
    });
    view! {
        <div class=format!("run st-{status}") data-run=id.to_string()>
            <div class="run-head">
                <b>{format!("ADW: {}", r.workflow_type)}</b>
                <span class="run-name">{r.name.clone()}</span>
                <span class=format!("status st-{status}")>{status.to_ascii_uppercase()}</span>
                {r.current_step.clone().filter(|_| !r.status.is_final()).map(|s| view! { <span class="muted">{format!("step {s}")}</span> })}
                <span class="muted">{format!("{}/{} steps", r.completed_steps, r.total_steps)}</span>
                {r.error_message.clone().map(|e| view! { <span class="err" title=e.clone()>{format::truncate(&e, 80)}</span> })}
                <span class="elapsed">{elapsed}</span>
                {can_cancel.then(|| view! {
                    <button class="tool" on:click=move |_| net::post(ui, format!("/api/adws/{id}/cancel"), json!({}), "Cancelling the workflow")>"Cancel"</button>
                })}
                {can_resume.then(|| view! {
                    <button class="tool" on:click=move |_| net::post(ui, format!("/api/adws/{id}/resume"), json!({}), "Resuming the workflow")>"Resume"</button>
                })}
            </div>
            {lanes}
            {placeholder.map(|p| view! { <p class="muted lane-empty">{p}</p> })}
        </div>
    }
}

/// A square's icon by event type.
fn icon(kind: &str) -> &'static str {
    match kind {
        "StepStart" => "▶",
        "StepEnd" => "■",
        "PreToolUse" | "PostToolUse" => "H",
        "ToolUse" | "ToolResult" => "T",
        "Thinking" => "…",
        "Text" => "¶",
        "Result" => "✓",
        "Stop" => "◼",
        "ModelError" | "ToolRefused" => "✗",
        _ => "i",
    }
}
