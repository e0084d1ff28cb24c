//! Costs: spending against the daily and monthly budgets, cost over time per agent or per model as an
//! SVG line chart (cumulative, by the hour), cost per day as an SVG bar chart, and tables by agent,
//! model, workflow run and task graph.

use leptos::prelude::*;
use serde_json::Value;

use super::{Ui, net};
use crate::costs::{self, Budget, Line};
use crate::format;

#[component]
pub fn Costs(ui: Ui) -> impl IntoView {
    let data = RwSignal::new((Value::Null, Value::Null));
    // The line chart's breakdown: `by_model` or `by_agent`.
    let by = RwSignal::new("by_model");
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
                        <div class="filters" role="toolbar" aria-label="Cost over time">
                            <b class="title">"Cost over time"</b>
                            {[("by_model", "per model"), ("by_agent", "per agent")].into_iter().map(|(k, label)| view! {
                                <button class="chip" class:on=move || by.get() == k aria-pressed=move || (by.get() == k).to_string()
                                    on:click=move |_| by.set(k)>{label}</button>
                            }).collect_view()}
                        </div>
                        {move || data.with(|(c, _)| lines(c, by.get()))}
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
                <div class="ctx"><div class="ctx-fill" class:warn={p >= 80.0} class:hot={p >= 100.0} style:width=format!("{}%", format::fixed(p, 1))></div></div>
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
        <svg class="chart" viewBox=format!("0 0 {} 120", format::fixed(width, 0)) role="img" aria-label="Cost per day">
            {days.iter().zip(heights).enumerate().map(|(i, (d, h))| {
                let x = i as f64 * w + 3.0;
                let tip = format!("{}: {}", d.key, format::cost(d.cost));
                view! {
                    <g>
                        <title>{tip}</title>
                        <rect x=format::fixed(x, 1) y=format::fixed(105.0 - h, 1) width=format::fixed(w - 6.0, 1) height=format::fixed(h.max(1.0), 1) rx="2"></rect>
                        <text x=format::fixed(x + (w - 6.0) / 2.0, 1) y="118" text-anchor="middle">{d.key.get(8..10).unwrap_or("").to_string()}</text>
                    </g>
                }
            }).collect_view()}
        </svg>
    }
    .into_any()
}

/// Cumulative cost per series over the hours that had calls.
fn lines(costs: &Value, by: &'static str) -> impl IntoView + use<> {
    let (buckets, series) = costs::series(costs, by);
    if series.is_empty() {
        return view! { <p class="empty">"No model calls yet."</p> }.into_any();
    }
    let (w, h, pad) = (600.0, 160.0, 10.0);
    let max = series.iter().flat_map(|s| s.points.iter().copied()).fold(0.0, f64::max).max(1e-9);
    let n = buckets.len();
    // Slot 0 is the start (nothing spent yet); bucket i is drawn at slot i + 1.
    let x = move |slot: usize| pad + slot as f64 * (w - 2.0 * pad) / n.max(1) as f64;
    let y = move |v: f64| h - pad - v / max * (h - 2.0 * pad);
    let label = format!("Cost over time {}", if by == "by_model" { "per model" } else { "per agent" });
    let first = buckets.first().cloned().unwrap_or_default();
    let last = buckets.last().cloned().unwrap_or_default();
    view! {
        <svg class="chart lines" viewBox=format!("0 0 {} {}", format::fixed(w, 0), format::fixed(h + 14.0, 0)) role="img" aria-label=label data-testid="cost-lines">
            {series.iter().map(|s| {
                let colour = format!("hsl({}, 70%, 60%)", format::hue(&s.name));
                let points: String = std::iter::once((0, 0.0))
                    .chain(s.points.iter().enumerate().map(|(i, v)| (i + 1, *v)))
                    .map(|(slot, v)| format!("{},{} ", format::fixed(x(slot), 1), format::fixed(y(v), 1)))
                    .collect();
                let end = s.points.last().copied().unwrap_or(0.0);
                view! {
                    <g data-testid="series" data-name=s.name.clone()>
                        <title>{format!("{}: {}", s.name, format::cost(end))}</title>
                        <polyline points=points fill="none" stroke=colour.clone() stroke-width="2"></polyline>
                        <circle cx=format::fixed(x(n), 1) cy=format::fixed(y(end), 1) r="3" fill=colour></circle>
                    </g>
                }
            }).collect_view()}
            <text x=format::fixed(pad, 0) y=format::fixed(h + 12.0, 0)>{first.replace('T', " ") + ":00"}</text>
            <text x=format::fixed(w - pad, 0) y=format::fixed(h + 12.0, 0) text-anchor="end">{last.replace('T', " ") + ":00"}</text>
        </svg>
        <ul class="legend" aria-label="Series">
            {series.into_iter().map(|s| {
                let end = s.points.last().copied().unwrap_or(0.0);
                view! {
                    <li><span class="swatch" style:background=format!("hsl({}, 70%, 60%)", format::hue(&s.name))></span>
                        {format!("{} {}", s.name, format::cost(end))}</li>
                }
            }).collect_view()}
        </ul>
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
