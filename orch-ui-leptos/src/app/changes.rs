//! Change review: a warning first when agents working at the same time changed the same file; then,
//! for every agent or one picked, the net change per file (one diff from the file as the first turn
//! found it to the file as the last left it; the turns' own diffs when they cannot be composed) and the
//! per-turn diffs, newest first.

use std::collections::BTreeSet;

use leptos::prelude::*;
use orch_core::wire::Id;

use super::Ui;
use super::stream::diff_view;
use crate::changes::{self, NetFile, Turn};

#[component]
pub fn Changes(ui: Ui) -> impl IntoView {
    // The agent whose run is reviewed; `None`: every agent.
    let agent = RwSignal::new(None::<Id>);
    let turns = Memo::new(move |_| ui.events.with(|b| changes::turns(b.rows().iter().map(|r| &r.record))));
    let overlaps = Memo::new(move |_| turns.with(|t| changes::overlaps(t)));
    let agents = Memo::new(move |_| {
        let mut seen = BTreeSet::new();
        turns.with(|t| t.iter().filter(|t| seen.insert(t.agent)).map(|t| t.agent).collect::<Vec<Id>>())
    });
    view! {
        <div class="changes" data-testid="changes">
            <div class="filters" role="toolbar" aria-label="Whose changes">
                <b class="title">"Changes"</b>
                <button class="chip" class:on=move || agent.get().is_none() aria-pressed=move || agent.get().is_none().to_string()
                    on:click=move |_| agent.set(None)>"every agent"</button>
                {move || agents.get().into_iter().map(|a| view! {
                    <button class="chip" class:on=move || agent.get() == Some(a) aria-pressed=move || (agent.get() == Some(a)).to_string()
                        on:click=move |_| agent.set(Some(a))>{ui.agent_name(Some(a))}</button>
                }).collect_view()}
            </div>
            {move || overlaps.with(|o| (!o.is_empty()).then(|| view! {
                <div class="banner overlap" role="alert" data-testid="overlap">
                    <b>"Agents working at the same time changed the same file: "</b>
                    {o.iter().map(|o| {
                        let names: Vec<String> = o.agents.iter().map(|a| ui.agent_name(Some(*a))).collect();
                        view! { <div><code>{o.path.clone()}</code>{format!(" by {}", names.join(" and "))}</div> }
                    }).collect_view()}
                </div>
            }))}
            <div class="change-body">
                {move || turns.with(|all| {
                    if all.is_empty() {
                        return view! { <p class="empty">"No agent has changed a file yet."</p> }.into_any();
                    }
                    let pick = agent.get();
                    let keep = move |a: Id| pick.is_none_or(|p| p == a);
                    let net = changes::net(all, keep);
                    let mine: Vec<&Turn> = all.iter().rev().filter(|t| keep(t.agent)).collect();
                    view! {
                        <h3>{format!("Net change: {} file(s)", net.len())}</h3>
                        <ul class="net" data-testid="net">{net.into_iter().map(|f| net_file(ui, f)).collect_view()}</ul>
                        <h3>{format!("Per turn: {}", mine.len())}</h3>
                        <ul class="turns">{mine.into_iter().map(|t| turn(ui, t)).collect_view()}</ul>
                    }.into_any()
                })}
            </div>
        </div>
    }
}

fn status(s: orch_core::wire::FileChangeStatus) -> String {
    format!("{s:?}").to_ascii_lowercase()
}

fn net_file(ui: Ui, f: NetFile) -> impl IntoView + use<> {
    let st = status(f.status);
    let turns = f.turns.len();
    view! {
        <li class="file">
            <details>
                <summary>
                    <span class=format!("fstat f-{st}")>{st.to_ascii_uppercase()}</span>" "
                    <code>{f.path.clone()}</code>
                    <span class="add">{format!(" +{}", f.added)}</span>
                    <span class="del">{format!(" −{}", f.removed)}</span>
                    <span class="muted">{format!(" in {turns} turn(s)")}</span>
                </summary>
                {match f.diff {
                    Some(d) if d.is_empty() => view! { <p class="muted">"No net change: the turns undid each other."</p> }.into_any(),
                    Some(d) => diff_view(&d).into_any(),
                    None => view! {
                        <p class="muted">"The turns' diffs cannot be merged (no diff, clipped or binary); each turn's:"</p>
                        {f.turns.into_iter().map(|(seq, agent, diff)| view! {
                            <div class="muted">{format!("#{seq} by {}", ui.agent_name(Some(agent)))}</div>
                            {diff.as_deref().map(diff_view)}
                        }).collect_view()}
                    }.into_any(),
                }}
            </details>
        </li>
    }
}

fn turn(ui: Ui, t: &Turn) -> impl IntoView + use<> {
    let secs = ((t.end - t.start) / 1000.0).round() as u64;
    view! {
        <li class="turn">
            <div class="item-head">
                <b>{ui.agent_name(Some(t.agent))}</b>
                <span class="muted">{format!("#{} · {} · {} file(s)", t.seq, crate::format::duration(secs), t.files.len())}</span>
            </div>
            {t.files.iter().map(|f| {
                let st = status(f.status);
                view! {
                    <details class="file">
                        <summary>
                            <span class=format!("fstat f-{st}")>{st.to_ascii_uppercase()}</span>" "
                            <code>{f.path.clone()}</code>
                            <span class="add">{format!(" +{}", f.lines_added)}</span>
                            <span class="del">{format!(" −{}", f.lines_removed)}</span>
                        </summary>
                        {f.diff.as_deref().map(diff_view)}
                    </details>
                }
            }).collect_view()}
        </li>
    }
}
