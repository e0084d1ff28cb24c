//! Costs: spending against the daily and monthly budgets, cost per day as an SVG bar chart, and tables
//! by agent, model, workflow run and task graph.

use leptos::prelude::*;
use serde_json::Value;

use super::{Ui, net};
use crate::costs::{self, Budget, Line};
use crate::format;

#[component]
pub fn Costs(ui: Ui) -> impl IntoView {
    let data = RwSignal::new((Value::Null, Value::Null));
    let load = move || net::load_costs(ui, data);
    // Loaded when shown, and again whenever the total cost moves.
    Effect::new(move |_| {
        let _ = ui.fleet.with(|f| (f.stats().2 * 10_000.0).round() as i64);
        load();
    });
    view! {
        <div class="costs" data-testid="costs">
            <div class="filters" role="toolbar" aria-label="Costs">
                <b class="title">"Costs"</b>
                <button class="tool" on:click=move |_| load()>"Refresh"</button>
            </div>
            <div class="cost-body">
                {move || data.with(|(c, b)| {
                    let total = costs::total(c);
                    let days = costs::table(c, "by_day");
                    view! {
                        <div class="budgets">
                            {budget("Today", costs::budget(b, "daily"))}
                            {budget("This month", costs::budget(b, "monthly"))}
                            <div class="budget"><span class="muted">"All time"</span>
                                <b>{format::cost(total.cost)}</b>
                                <span class="muted">{format!("{} calls, {} in / {} out tokens", total.calls, format::tokens(total.tokens.0), format::tokens(total.tokens.1))}</span>
                            </div>
                        </div>
                        {chart(&days)}
                        <div class="tables">
                            {table("By agent", costs::table(c, "by_agent"))}
                            {table("By model", costs::table(c, "by_model"))}
                            {table("By workflow run", costs::table(c, "by_workflow"))}
                            {table("By task graph", costs::table(c, "by_graph"))}
                        </div>
                    }
                })}
            </div>
        </div>
    }
}

fn budget(label: &'static str, b: Option<Budget>) -> impl IntoView + use<> {
    let b = b.unwrap_or(Budget { spent: 0.0, limit: None });
    let share = b.limit.filter(|l| *l > 0.0).map(|l| (b.spent / l * 100.0).clamp(0.0, 100.0));
    view! {
        <div class="budget">
            <span class="muted">{label}</span>
            <b>{format::cost(b.spent)}</b>
            <span class="muted">{b.limit.map_or_else(|| "no limit".to_string(), |l| format!("of {}", format::cost(l)))}</span>
            {share.map(|p| view! {
                <div class="ctx"><div class="ctx-fill" class:warn={p >= 80.0} class:hot={p >= 100.0} style:width=format!("{p:.1}%")></div></div>
            })}
        </div>
    }
}

fn chart(days: &[Line]) -> impl IntoView + use<> {
    let days: Vec<Line> = days.iter().rev().take(30).rev().cloned().collect();
    if days.is_empty() {
        return view! { <p class="empty">"No model calls yet."</p> }.into_any();
    }
    let heights = costs::bars(&days.iter().map(|d| d.cost).collect::<Vec<_>>(), 100.0);
    let w = 24.0;
    let width = days.len() as f64 * w;
    view! {
        <svg class="chart" viewBox=format!("0 0 {width} 120") role="img" aria-label="Cost per day">
            {days.iter().zip(heights).enumerate().map(|(i, (d, h))| {
                let x = i as f64 * w + 3.0;
                let tip = format!("{}: {}", d.key, format::cost(d.cost));
                view! {
                    <g>
                        <title>{tip}</title>
                        <rect x=x y=105.0 - h width=w - 6.0 height=h.max(1.0) rx="2"></rect>
                        <text x=x + (w - 6.0) / 2.0 y="118" text-anchor="middle">{d.key.get(8..10).unwrap_or("").to_string()}</text>
                    </g>
                }
            }).collect_view()}
        </svg>
    }
    .into_any()
}

fn table(title: &'static str, lines: Vec<Line>) -> impl IntoView + use<> {
    view! {
        <table class="cost-table">
            <caption>{title}</caption>
            <thead><tr><th scope="col">""</th><th scope="col">"Cost"</th><th scope="col">"Calls"</th><th scope="col">"Tokens in / out"</th></tr></thead>
            <tbody>
                {if lines.is_empty() {
                    view! { <tr><td colspan="4" class="muted">"none"</td></tr> }.into_any()
                } else {
                    lines.into_iter().map(|l| view! {
                        <tr><td>{l.key}</td><td>{format::cost(l.cost)}</td><td>{l.calls}</td>
                            <td>{format!("{} / {}", format::tokens(l.tokens.0), format::tokens(l.tokens.1))}</td></tr>
                    }).collect_view().into_any()
                }}
            </tbody>
        </table>
    }
}
