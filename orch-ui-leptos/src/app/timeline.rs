//! The timeline across agents: a lane per agent, a bar per phase (workflow step or turn) coloured by
//! what it cost, on one time axis; zoom with the buttons or Ctrl+wheel. Bars are buttons (Tab reaches
//! them; Enter opens the phase's first event in the detail panel). It opens fitted to the whole span.

use leptos::ev;
use leptos::prelude::*;

use super::Ui;
use crate::format;
use crate::timeline::{self, ZOOMS};

#[component]
pub fn Timeline(ui: Ui) -> impl IntoView {
    // Pixels per second: ZOOMS[i], or `None`: the whole span fits the view.
    let zoom = RwSignal::new(None::<usize>);
    const FIT_PX: f64 = 600.0;
    // Drawn again when events arrive, not with the ticking clock (a bar keeps its focus).
    let lanes = Memo::new(move |_| {
        let now = ui.now.get_untracked();
        ui.events.with(|b| timeline::lanes(b.rows().iter().map(|r| &r.record), now))
    });
    let fitted = move || lanes.with(|l| timeline::span(l).map_or(ZOOMS[2], |(a, b)| timeline::fit(b - a, FIT_PX)));
    let step = move |zoom_in: bool| {
        let from = zoom.get_untracked().unwrap_or_else(|| timeline::nearest(fitted()));
        zoom.set(Some(timeline::zoom_step(from, zoom_in)));
    };
    let on_wheel = move |e: ev::WheelEvent| {
        if e.ctrl_key() || e.meta_key() {
            e.prevent_default();
            step(e.delta_y() < 0.0);
        }
    };
    view! {
        <div class="timeline" data-testid="timeline">
            <div class="filters" role="toolbar" aria-label="Timeline zoom">
                <b class="title">"Timeline"</b>
                <span class="muted">"a bar per step or turn, coloured by cost"</span>
                <button class="tool" aria-label="Zoom out" title="Zoom out (Ctrl+wheel)" on:click=move |_| step(false)>"−"</button>
                <span class="muted" data-testid="zoom">{move || match zoom.get() {
                    Some(i) => format!("{} px/s", format::fixed(ZOOMS[i], if ZOOMS[i] < 1.0 { 2 } else { 0 })),
                    None => format!("fit ({} px/s)", format::fixed(fitted(), 2)),
                }}</span>
                <button class="tool" aria-label="Zoom in" title="Zoom in (Ctrl+wheel)" on:click=move |_| step(true)>"+"</button>
            </div>
            <div class="tl-body" on:wheel=on_wheel>
                {move || lanes.with(|lanes| {
                    let Some((start, end)) = timeline::span(lanes) else {
                        return view! { <p class="empty">"No agent has worked yet."</p> }.into_any();
                    };
                    let pps = zoom.get().map_or_else(|| timeline::fit(end - start, FIT_PX), |i| ZOOMS[i]);
                    let max = lanes.iter().flat_map(|l| &l.bars).map(|b| b.cost).fold(0.0, f64::max);
                    let width = (end - start) / 1000.0 * pps + 40.0;
                    view! {
                        <div class="tl-lanes">
                            {lanes.iter().map(|lane| {
                                let orchestrator = ui.fleet.with_untracked(|f| f.orchestrator_agent) == Some(lane.agent);
                                let name = if orchestrator { "orchestrator".to_string() } else { ui.agent_name(Some(lane.agent)) };
                                view! {
                                    <div class="tl-lane" data-testid="lane" data-agent=name.clone() role="group" aria-label=format!("Agent {name}")>
                                        <div class="tl-name" title=name.clone()>{name.clone()}</div>
                                        <div class="tl-track-wrap">
                                            <div class="tl-track" style:width=format!("{}px", format::fixed(width, 0))>
                                                {lane.bars.iter().map(|b| {
                                                    let left = (b.start - start) / 1000.0 * pps;
                                                    let w = ((b.end - b.start) / 1000.0 * pps).max(4.0);
                                                    let hue = timeline::cost_hue(b.cost, max);
                                                    let secs = ((b.end - b.start) / 1000.0).round() as u64;
                                                    let tip = format!("{}: {}, {}, {} events{}", b.label, format::duration(secs),
                                                        format::cost(b.cost), b.events, if b.open { ", running" } else { "" });
                                                    let seq = b.first_seq;
                                                    view! {
                                                        <button class="tl-bar" class:open=b.open title=tip.clone() aria-label=tip
                                                            style:left=format!("{}px", format::fixed(left, 0)) style:width=format!("{}px", format::fixed(w, 0))
                                                            style:background=format!("hsl({hue}, 65%, 42%)")
                                                            on:click=move |_| {
                                                                let r = ui.events.with_untracked(|e| e.find(seq).map(|r| r.record.clone()));
                                                                ui.detail.set(r);
                                                            }>{b.label.clone()}</button>
                                                    }
                                                }).collect_view()}
                                            </div>
                                        </div>
                                    </div>
                                }
                            }).collect_view()}
                        </div>
                    }.into_any()
                })}
            </div>
        </div>
    }
}
