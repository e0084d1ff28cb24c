//! Task graphs: the list, and the selected graph as a live plan graph: its waves drawn before they run
//! (columns of task nodes with status, model, attempts, dependencies, and planned against actual cost
//! and time), nodes lighting up as they run, the budget as the graph's last node, and checkpoints as
//! nodes of their own with retry (with guidance), skip and fail in place. Every task that has run (or
//! waits at a checkpoint) reruns from its node: it and everything depending on it are queued again. A
//! node's agent link filters the stream on its attempt.

use leptos::prelude::*;
use orch_core::wire::{GraphStatus, Id, Task, TaskStatus};
use serde_json::json;

use super::{Ui, View, net};
use crate::format;
use crate::graphs::Figures;

#[component]
pub fn Graphs(ui: Ui) -> impl IntoView {
    let selected = RwSignal::new(None::<Id>);
    // The node whose "Rerun from here" waits for its confirmation.
    let confirm = RwSignal::new(None::<Id>);
    Effect::new(move |_| net::load_graphs(ui));
    // Who works on the store, read again every 5 s while the view is open.
    let workers = RwSignal::new(crate::workers::Workers::default());
    let read_at = StoredValue::new(f64::NEG_INFINITY);
    Effect::new(move |_| {
        let now = ui.now.get();
        if now - read_at.get_value() >= 5_000.0 {
            read_at.set_value(now);
            net::load_workers(workers);
        }
    });
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
                <span class="workers" data-testid="workers" class:warn=move || workers.with(|w| w.loaded && w.workers_alive == 0)
                    title=move || workers.with(|w| w.rows.join("\n"))>
                    {move || workers.with(|w| if w.loaded { w.summary() } else { String::new() })}
                </span>
            </div>
            <div class="graph-body">
                {move || match current() {
                    None => view! { <p class="empty">"No task graphs yet. Make one with orch plan and orch graph create, or POST /api/plans and /api/graphs."</p> }.into_any(),
                    Some(id) => graph(ui, id, confirm).into_any(),
                }}
            </div>
        </div>
    }
}

fn graph(ui: Ui, id: Id, confirm: RwSignal<Option<Id>>) -> impl IntoView {
    move || {
        ui.graphs.with(|gs| {
            let Some(g) = gs.graph(id) else { return view! { <p class="empty">"Loading…"</p> }.into_any() };
            let (done, total) = gs.progress(id);
            let share = g.budget_usd.filter(|b| *b > 0.0).map(|b| (g.cost_usd / b * 100.0).clamp(0.0, 100.0));
            let waves = gs.waves(id);
            // Not the ticking clock: the nodes are drawn again when the graph changes, not every second.
            let now = chrono::DateTime::from_timestamp_millis(ui.now.get_untracked() as i64).unwrap_or(g.updated_at);
            let figures = gs.figures(id, now);
            view! {
                <div class="graph-head">
                    <b>{g.name.clone()}</b>
                    <span class=format!("status st-{}", g.status.as_str())>{g.status.as_str().to_ascii_uppercase()}</span>
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
                    <div class="ctx budget-bar" title=format!("{} % of the budget", format::fixed(p, 0))>
                        <div class="ctx-fill" class:warn={p >= 80.0} class:hot={p >= 100.0} style:width=format!("{}%", format::fixed(p, 1))></div>
                    </div>
                })}
                <div class="waves" data-testid="plan-graph">
                    {waves.into_iter().enumerate().map(|(i, tasks)| view! {
                        <div class="wave" role="group" aria-label=format!("Wave {}", i + 1)>
                            <div class="wave-name">{format!("Wave {}", i + 1)}</div>
                            {tasks.into_iter().map(|t| {
                                let node = Node {
                                    figures: figures.get(&t.id).copied().unwrap_or_default(),
                                    after: gs.dependency_keys(t),
                                    rerun: gs.rerun_set(t.id),
                                };
                                card(ui, t, node, confirm)
                            }).collect_view()}
                        </div>
                    }).collect_view()}
                    <div class="wave" role="group" aria-label="Budget">
                        <div class="wave-name">"Budget"</div>
                        <div class="task-card budget-node" data-testid="budget-node" class:hot=share.is_some_and(|p| p >= 100.0)>
                            <div class="card-top"><span class="name">"Spending"</span></div>
                            <div class="card-foot">
                                <span class="cost">{format::cost(g.cost_usd)}</span>
                                <span>{g.budget_usd.map_or_else(|| "no limit".to_string(), |b| format!("of {}", format::cost(b)))}</span>
                            </div>
                            {share.map(|p| view! { <div class="muted">{format!("{} % used", format::fixed(p, 0))}</div> })}
                        </div>
                    </div>
                </div>
            }
            .into_any()
        })
    }
}

/// What a node shows besides its task.
struct Node {
    figures: Figures,
    /// The keys of its dependencies.
    after: Vec<String>,
    /// The keys a rerun from it queues again.
    rerun: Vec<String>,
}

fn secs(s: Option<f64>) -> String {
    s.map_or_else(|| "–".to_string(), |s| format::duration(s.round() as u64))
}

fn card(ui: Ui, t: &Task, node: Node, confirm: RwSignal<Option<Id>>) -> impl IntoView + use<> {
    let id = t.id;
    let f = node.figures;
    let planned = crate::graphs::Graphs::planned_text(&f);
    let actual = format!("actual {} · {}", format::cost(f.actual_cost), secs(f.actual_secs));
    let over = f.planned_cost.is_some_and(|p| f.actual_cost > p);
    let can_rerun = t.status.is_final() || t.status == TaskStatus::Blocked;
    // Two steps: the first click says what runs again, the second queues it.
    // (The node asking is kept by the view, so a redraw of the graph does not forget it.)
    let rerun_what = format!("Queue again: {}", node.rerun.join(", "));
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
        <div class=format!("task-card st-{status}") class:checkpoint-node=checkpoint.is_some() data-task=t.key.clone()
            data-status=status>
            <div class="card-top">
                <span class="name">{t.title.clone()}</span>
                <span class=format!("status st-{status}")>{status.to_ascii_uppercase()}</span>
            </div>
            <div class="card-foot">
                <span class="model">{t.model.clone().unwrap_or_else(|| t.complexity.as_str().to_string())}</span>
                <span>{format!("attempt {}", t.attempt)}</span>
            </div>
            <div class="figures" data-testid="figures">
                <span class="muted" title="≈: derived (the budget's share, or finished peers' mean), the plan has no estimate">{planned}</span>
                <span class:over=over>{actual}</span>
            </div>
            {(!node.after.is_empty()).then(|| view! { <div class="muted after">{format!("after {}", node.after.join(", "))}</div> })}
            {t.error.clone().map(|e| view! { <div class="err">{format::truncate(&e, 160)}</div> })}
            {agent.map(|a| view! {
                <button class="link" on:click=move |_| {
                    ui.filter.update(|f| { f.agents.clear(); f.agents.insert(a); });
                    ui.view.set(View::Logs);
                }>"its events"</button>
            })}
            {can_rerun.then(|| view! {
                <div class="actions">
                    {move || if confirm.get() == Some(id) {
                        view! {
                            <span class="muted">{rerun_what.clone()}</span>
                            <button class="ok" data-testid="rerun-confirm" on:click=move |_| {
                                confirm.set(None);
                                net::post(ui, format!("/api/tasks/{id}/rerun"), json!({}), "Rerunning from the task");
                            }>"Rerun"</button>
                            <button on:click=move |_| confirm.set(None)>"Keep"</button>
                        }.into_any()
                    } else {
                        view! { <button class="link rerun" on:click=move |_| confirm.set(Some(id))>"Rerun from here"</button> }.into_any()
                    }}
                </div>
            })}
            {checkpoint.clone().map(|c| view! {
                <div class="checkpoint" role="group" aria-label="Checkpoint">
                    <div class="wave-name">"Checkpoint"</div>
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
