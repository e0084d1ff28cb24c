//! Task graphs: the list, and the selected graph as waves (columns of task cards with status, model,
//! cost and attempts), its budget bar, and the checkpoints waiting for a person with retry (with
//! guidance), skip and fail in place. A task card's agent link filters the stream on its attempt.

use leptos::prelude::*;
use orch_core::wire::{GraphStatus, Id, Task, TaskStatus};
use serde_json::json;

use super::{Ui, View, net};
use crate::format;

#[component]
pub fn Graphs(ui: Ui) -> impl IntoView {
    let selected = RwSignal::new(None::<Id>);
    Effect::new(move |_| net::load_graphs(ui));
    // The newest graph is shown until one is picked; its tasks are loaded when it is shown.
    let current = move || selected.get().or_else(|| ui.graphs.with(|g| g.list().first().map(|g| g.id)));
    Effect::new(move |_| {
        if let Some(id) = current() {
            net::load_graph(ui, id);
        }
    });
    view! {
        <div class="graphs" data-testid="graphs">
            <div class="filters" role="toolbar" aria-label="Task graphs">
                <b class="title">"Task graphs"</b>
                {move || ui.graphs.with(|g| g.list().into_iter().map(|g| {
                    let id = g.id;
                    view! {
                        <button class=format!("chip st-{}", g.status.as_str()) class:on=move || current() == Some(id)
                            on:click=move |_| selected.set(Some(id))>{g.name.clone()}</button>
                    }
                }).collect_view())}
            </div>
            <div class="graph-body">
                {move || match current() {
                    None => view! { <p class="empty">"No task graphs yet. Make one with orch plan and orch graph create, or POST /api/plans and /api/graphs."</p> }.into_any(),
                    Some(id) => graph(ui, id).into_any(),
                }}
            </div>
        </div>
    }
}

fn graph(ui: Ui, id: Id) -> impl IntoView {
    move || {
        ui.graphs.with(|gs| {
            let Some(g) = gs.graph(id) else { return view! { <p class="empty">"Loading…"</p> }.into_any() };
            let (done, total) = gs.progress(id);
            let share = g.budget_usd.filter(|b| *b > 0.0).map(|b| (g.cost_usd / b * 100.0).clamp(0.0, 100.0));
            let waves = gs.waves(id);
            view! {
                <div class="graph-head">
                    <b>{g.name.clone()}</b>
                    <span class=format!("status st-{}", g.status.as_str())>{g.status.as_str().to_uppercase()}</span>
                    <span class="muted" data-testid="graph-progress">{format!("{done}/{total} tasks done, {} waves", waves.len())}</span>
                    <span class="muted">{format!("cost {}{}", format::cost(g.cost_usd), g.budget_usd.map_or_else(String::new, |b| format!(" of {}", format::cost(b))))}</span>
                    {g.error.clone().map(|e| view! { <span class="err">{e}</span> })}
                    // The stop button beside the spending; a paused or cancelled graph can run again.
                    {matches!(g.status, GraphStatus::Running | GraphStatus::Pending | GraphStatus::Paused).then(|| view! {
                        <button class="bad" title="Cancel the graph: running attempts stop, no task starts"
                            on:click=move |_| net::post(ui, format!("/api/graphs/{id}/cancel"), json!({}), "Cancelling the graph")>"Stop"</button>
                    })}
                    {matches!(g.status, GraphStatus::Paused | GraphStatus::Pending).then(|| view! {
                        <button class="ok" on:click=move |_| net::post(ui, format!("/api/graphs/{id}/run"), json!({}), "Running the graph")>"Run"</button>
                    })}
                </div>
                {share.map(|p| view! {
                    <div class="ctx budget-bar" title=format!("{p:.0} % of the budget")>
                        <div class="ctx-fill" class:warn={p >= 80.0} class:hot={p >= 100.0} style:width=format!("{p:.1}%")></div>
                    </div>
                })}
                <div class="waves">
                    {waves.into_iter().enumerate().map(|(i, tasks)| view! {
                        <div class="wave">
                            <div class="wave-name">{format!("Wave {}", i + 1)}</div>
                            {tasks.into_iter().map(|t| card(ui, t)).collect_view()}
                        </div>
                    }).collect_view()}
                </div>
            }
            .into_any()
        })
    }
}

fn card(ui: Ui, t: &Task) -> impl IntoView + use<> {
    let id = t.id;
    let status = t.status.as_str();
    let agent = t.agent_id;
    let guidance = RwSignal::new(String::new());
    let resolve = move |action: &'static str| {
        let g = guidance.get_untracked();
        let body =
            if g.trim().is_empty() { json!({"action": action}) } else { json!({"action": action, "guidance": g}) };
        net::post(ui, format!("/api/checkpoints/{id}/resolve"), body, "Resolving the checkpoint");
    };
    let checkpoint = (t.status == TaskStatus::Blocked).then(|| t.checkpoint.clone()).flatten();
    view! {
        <div class=format!("task-card st-{status}") data-task=t.key.clone()>
            <div class="card-top">
                <span class="name">{t.title.clone()}</span>
                <span class=format!("status st-{status}")>{status.to_uppercase()}</span>
            </div>
            <div class="card-foot">
                <span class="model">{t.model.clone().unwrap_or_else(|| t.complexity.as_str().to_string())}</span>
                <span>{format!("attempt {}", t.attempt)}</span>
                <span class="cost">{format::cost(t.cost_usd)}</span>
            </div>
            {t.error.clone().map(|e| view! { <div class="err">{format::truncate(&e, 160)}</div> })}
            {agent.map(|a| view! {
                <button class="link" on:click=move |_| {
                    ui.filter.update(|f| { f.agents.clear(); f.agents.insert(a); });
                    ui.view.set(View::Logs);
                }>"its events"</button>
            })}
            {checkpoint.map(|c| view! {
                <div class="checkpoint">
                    <p>{c}</p>
                    <input type="text" placeholder="Guidance for a retry" aria-label="Guidance"
                        prop:value=move || guidance.get() on:input=move |e| guidance.set(event_target_value(&e))/>
                    <div class="actions">
                        <button class="ok" on:click=move |_| resolve("retry")>"Retry"</button>
                        <button on:click=move |_| resolve("skip")>"Skip"</button>
                        <button class="bad" on:click=move |_| resolve("fail")>"Fail"</button>
                    </div>
                </div>
            })}
        </div>
    }
}
