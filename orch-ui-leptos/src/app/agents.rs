//! The agent column: one card per agent with its status, model, cost, context bar, latest activity and
//! event counters; a click toggles the stream's filter on that agent.

use leptos::prelude::*;
use orch_core::wire::AgentStatus;

use super::Ui;
use crate::buffer::Class;
use crate::format;
use crate::model::AgentCard;

#[component]
pub fn Agents(ui: Ui) -> impl IntoView {
    let collapsed = RwSignal::new(false);
    view! {
        <aside class="agents" class:collapsed=move || collapsed.get() aria-label="Agents">
            <div class="col-head">
                <h2>"Agents"</h2>
                <span class="muted">{move || ui.fleet.with(|f| f.cards().len())}</span>
                <button class="icon" aria-label=move || if collapsed.get() { "Expand the agent list" } else { "Collapse the agent list" }
                    on:click=move |_| collapsed.update(|c| *c = !*c)>{move || if collapsed.get() { "»" } else { "«" }}</button>
            </div>
            <div class="cards" data-testid="agents">
                {move || {
                    ui.fleet.with(|f| {
                        if f.cards().is_empty() {
                            return view! { <p class="empty">"No agents yet. Ask the orchestrator to create one."</p> }.into_any();
                        }
                        f.cards().into_iter().map(|c| card(ui, c, collapsed.get())).collect_view().into_any()
                    })
                }}
            </div>
        </aside>
    }
}

fn card(ui: Ui, c: &AgentCard, collapsed: bool) -> impl IntoView + use<> {
    let a = &c.agent;
    let id = a.id;
    let name = a.name.clone();
    let hue = format::hue(&name);
    let status = a.status.as_str();
    let selected = ui.filter.with(|f| f.agents.contains(&id));
    let context = format::context_percent(a.context_used, a.context_window);
    // Only these follow the clock (not the whole list): time since the last event, and the stalled flag.
    let idle = move || {
        let now = ui.now.get();
        ui.fleet.with(|f| f.card(id).and_then(|c| c.idle(now)))
    };
    let stalled = move || idle().is_some_and(|(_, s)| s);
    let task = a.workflow_step.as_ref().map(|s| format!("STEP: {s}")).or_else(|| c.activity.clone()).unwrap_or_else(
        || match a.status {
            AgentStatus::Executing => "Working…".into(),
            AgentStatus::Complete => "Done".into(),
            AgentStatus::Blocked => "Blocked: its last run failed".into(),
            AgentStatus::Waiting => "Waiting".into(),
            _ => "Idle, ready for a command".into(),
        },
    );
    let template = a.template.as_ref().map(|t| t.name.clone());
    let counts = c.counts;
    if collapsed {
        return view! {
            <button class="card mini" class:selected=selected title=name.clone()
                on:click=move |_| ui.filter.update(|f| f.toggle_agent(id))>
                <span class="initial" style:background=format!("hsl({hue} 55% 35%)")>{name.chars().next().unwrap_or('?').to_string()}</span>
                <span class=format!("dot st-{status}")></span>
            </button>
        }
        .into_any();
    }
    view! {
        <button class="card" class:selected=selected class:stalled=stalled data-agent=name.clone()
            title="Show only this agent's events (click again to remove)"
            on:click=move |_| ui.filter.update(|f| f.toggle_agent(id))>
            <div class="card-top">
                <span class="name" style:color=format!("hsl({hue} 70% 70%)")>{name.clone()}</span>
                <span class=format!("status st-{status}")>{status.to_ascii_uppercase()}</span>
                {template.map(|t| view! { <span class="tpl">{t}</span> })}
            </div>
            <div class="task">{task}</div>
            <div class="ctx" title=context.map_or_else(|| "context window unknown".to_string(), |p| format!("context {} %", format::fixed(p, 0)))>
                <div class="ctx-fill" class:warn=context.is_some_and(|p| p >= 70.0) class:hot=context.is_some_and(|p| p >= 90.0)
                    style:width=format!("{}%", format::fixed(context.unwrap_or(0.0), 1))></div>
            </div>
            <div class="card-foot">
                <span class="counts" title="Events: responses, tools, thinking, hooks">
                    <span class="n cls-response">{counts[Class::Response.index()]}</span>
                    <span class="n cls-tool">{counts[Class::Tool.index()]}</span>
                    <span class="n cls-thinking">{counts[Class::Thinking.index()]}</span>
                    <span class="n cls-hook">{counts[Class::Hook.index()]}</span>
                </span>
                <span class="model">{a.model.clone()}</span>
                <span class="cost">{format::cost(a.total_cost_usd)}</span>
            </div>
            {move || idle().map(|(s, stalled)| view! {
                <div class="since" class:stalled=stalled>{if stalled { format!("stalled? no event for {}", format::duration(s)) } else { format!("last event {} ago", format::duration(s)) }}</div>
            })}
        </button>
    }
    .into_any()
}
