//! The event stream: category filters, agent chips, regex search, clear, auto-follow, and a windowed
//! list of fixed-height rows (only those on screen exist in the page), with each event's detail in a
//! side panel.

use leptos::html;
use leptos::prelude::*;
use wasm_bindgen::JsCast;

use super::{Ui, net};
use crate::buffer::{Class, EventBuffer};
use crate::window::{OVERSCAN, ROW_HEIGHT, at_bottom, visible_range};

/// Puts the cursor in the search box (the `/` key).
pub fn focus_search() {
    if let Some(el) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.get_element_by_id("search"))
        .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
    {
        let _ = el.focus();
    }
}

/// Opens the detail of the next (`back`: previous) row, or the next failure (`error`), and scrolls it
/// into view (the `j`, `k` and `e` keys).
pub fn select_next(ui: Ui, back: bool, error: bool) {
    let from = ui.detail.with_untracked(|d| d.as_ref().map(|r| r.seq));
    let next = ui.shown.with_untracked(|seqs| {
        if error {
            ui.events.with_untracked(|b| {
                let errors: Vec<u64> = seqs.iter().copied().filter(|s| b.find(*s).is_some_and(|r| r.error)).collect();
                crate::buffer::step(&errors, from, false)
            })
        } else {
            crate::buffer::step(seqs, from, back)
        }
    });
    let Some(seq) = next else { return };
    let index = ui.shown.with_untracked(|s| s.iter().position(|x| *x == seq)).unwrap_or(0);
    ui.detail.set(ui.events.with_untracked(|b| b.find(seq).map(|r| r.record.clone())));
    ui.follow.set(false);
    if let Some(list) =
        web_sys::window().and_then(|w| w.document()).and_then(|d| d.query_selector(".rows").ok().flatten())
    {
        let target = index as f64 * ROW_HEIGHT - f64::from(list.client_height()) / 2.0;
        list.set_scroll_top(target.max(0.0) as i32);
    }
}

#[component]
pub fn Stream(ui: Ui) -> impl IntoView {
    let error_memo = Memo::new(move |_| ui.filter.with(|f| f.compile().error));
    let error = move || error_memo.get();
    let shown = ui.shown;
    let scroll_top = RwSignal::new(0.0f64);
    let viewport = RwSignal::new(600.0f64);
    let list: NodeRef<html::Div> = NodeRef::new();
    let window = Memo::new(move |_| {
        let total = shown.with(Vec::len);
        let range = visible_range(scroll_top.get(), viewport.get(), ROW_HEIGHT, total, OVERSCAN);
        shown.with(|s| range.clone().filter_map(|i| s.get(i).map(|seq| (i, *seq))).collect::<Vec<(usize, u64)>>())
    });
    // Set while a scroll of the page's own (following) is under way: its scroll event is not the
    // person's, and must not pause following.
    let auto = StoredValue::new(false);
    // Follow: keep the newest row in view as rows arrive.
    Effect::new(move |_| {
        let n = shown.with(Vec::len);
        if ui.follow.get()
            && let Some(el) = list.get()
        {
            let _ = n;
            request_animation_frame(move || {
                // A person who scrolled away before this frame paused following: their position stands
                // (else they would be taken back to the newest rows while the button says "Paused").
                if !ui.follow.get_untracked() {
                    return;
                }
                let bottom = (el.scroll_height() - el.client_height()).max(0);
                if el.scroll_top() != bottom {
                    auto.set_value(true);
                    el.set_scroll_top(bottom);
                }
                // The window follows what the list shows now, even when no scroll event comes (already
                // at the bottom, or the list was resized or reloaded meanwhile): a stale position would
                // draw rows that are not on screen and leave the list blank.
                scroll_top.set(f64::from(el.scroll_top()));
                viewport.set(f64::from(el.client_height()).max(ROW_HEIGHT));
            });
        }
    });
    let on_scroll = move |_| {
        if let Some(el) = list.get() {
            let top = f64::from(el.scroll_top());
            let height = f64::from(el.client_height());
            scroll_top.set(top);
            viewport.set(height);
            if auto.get_value() {
                auto.set_value(false);
                return;
            }
            let bottom = at_bottom(top, height, f64::from(el.scroll_height()), ROW_HEIGHT / 2.0);
            // Scrolling up pauses following; scrolling back to the bottom resumes it.
            if ui.follow.get_untracked() != bottom {
                ui.follow.set(bottom);
            }
        }
    };
    Effect::new(move |_| {
        if let Some(el) = list.get() {
            viewport.set(f64::from(el.client_height()).max(ROW_HEIGHT));
        }
    });
    let class_button = move |c: Class| {
        view! {
            <button class=format!("chip cls-{}", c.name()) class:on=move || ui.filter.with(|f| f.classes.contains(&c))
                aria-pressed=move || ui.filter.with(|f| f.classes.contains(&c)).to_string()
                on:click=move |_| ui.filter.update(|f| f.toggle_class(c))>{c.label()}</button>
        }
    };
    let agent_chips = move || {
        ui.filter
            .with(|f| f.agents.iter().copied().collect::<Vec<_>>())
            .into_iter()
            .map(|id| {
                let name = ui.agent_name(Some(id));
                view! {
                    <button class="chip agent-chip on" title="Remove this agent filter"
                        on:click=move |_| ui.filter.update(|f| f.toggle_agent(id))>{name}" ×"</button>
                }
            })
            .collect_view()
    };
    view! {
        <div class="stream">
            <div class="filters" role="toolbar" aria-label="Event filters">
                {Class::ALL.into_iter().map(class_button).collect_view()}
                {agent_chips}
                <input id="search" type="search" class="search" class:invalid=move || error().is_some()
                    placeholder="Search (regex)  /" aria-label="Search events (regular expression)"
                    prop:value=move || ui.filter.with(|f| f.query.clone())
                    on:input=move |e| ui.filter.update(|f| f.query = event_target_value(&e))/>
                <button class="tool" title="Hide the events shown so far" on:click=move |_| ui.events.update(EventBuffer::clear)>"Clear"</button>
                <button class="tool" class:on=move || ui.follow.get() aria-pressed=move || ui.follow.get().to_string()
                    title="Follow new events (f)" on:click=move |_| ui.follow.update(|f| *f = !*f)>
                    {move || if ui.follow.get() { "Following" } else { "Paused" }}
                </button>
                <span class="count" data-testid="shown-count">{move || format!("{} shown", shown.with(Vec::len))}</span>
            </div>
            {move || error().map(|e| view! { <div class="search-error" role="alert">{e}</div> })}
            <div class="rows" node_ref=list on:scroll=on_scroll tabindex="0" aria-label="Event stream">
                <Show when=move || shown.with(Vec::is_empty)>
                    <div class="empty">"No events yet. Send the orchestrator a message (Ctrl+K)."</div>
                </Show>
                <div class="spacer" style:height=move || format!("{}px", crate::format::fixed(shown.with(Vec::len) as f64 * ROW_HEIGHT, 0))>
                    <For each=move || window.get() key=|pair| *pair let:pair>
                        <EventRow ui=ui index=pair.0 seq=pair.1/>
                    </For>
                </div>
            </div>
            {move || (!ui.follow.get() && !shown.with(Vec::is_empty)).then(|| view! {
                <button class="resume" on:click=move |_| ui.follow.set(true)>"↓ Follow new events"</button>
            })}
        </div>
    }
}

#[component]
fn EventRow(ui: Ui, index: usize, seq: u64) -> impl IntoView {
    let row = ui.events.with_untracked(|b| b.find(seq).cloned());
    let Some(row) = row else { return ().into_any() };
    let name = ui.agent_name(row.agent_id);
    let hue = crate::format::hue(&name);
    let agent = row.agent_id;
    let record = row.record.clone();
    view! {
        <div class=format!("row cls-{}", row.class.name()) class:err=row.error
            class:selected=move || ui.detail.with(|d| d.as_ref().map(|r| r.seq) == Some(seq))
            style:top=format!("{}px", crate::format::fixed(index as f64 * ROW_HEIGHT, 0))
            data-seq=seq role="button" tabindex="-1" title="Show the event's detail"
            on:click=move |_| ui.detail.set(Some(record.clone()))>
            <span class="seq">{seq}</span>
            <span class="time">{row.time.clone()}</span>
            <span class=format!("badge cls-{}", row.class.name())>{row.class.label()}</span>
            {(!name.is_empty()).then(|| view! {
                <span class="agent" style:color=format!("hsl({hue} 70% 68%)") title="Filter by this agent"
                    on:click=move |e| {
                        e.stop_propagation();
                        if let Some(id) = agent { ui.filter.update(|f| f.toggle_agent(id)); }
                    }>{name.clone()}</span>
            })}
            <span class="label">{row.label.clone()}</span>
            <span class="summary">{row.summary.clone()}</span>
        </div>
    }
    .into_any()
}

/// The side panel with one event's detail (from the stream or a swimlane).
#[component]
pub fn Detail(ui: Ui) -> impl IntoView {
    move || {
        ui.detail.get().map(|r| {
            let name = ui.agent_name(r.keys.agent_id);
            let class = Class::of(&r.event);
            // The pretty payload is the log's own JSON of the event (`GET /api/events`), so the page
            // carries no serializer of every wire type.
            let json = RwSignal::new("…".to_string());
            let seq = r.seq;
            leptos::task::spawn_local(async move {
                let path = format!("/api/events?since={}&limit=1", seq.saturating_sub(1));
                let text = match net::request("GET", &path, None).await {
                    Ok(v) => v
                        .get("events")
                        .and_then(|e| e.get(0))
                        .filter(|e| e.get("seq").and_then(serde_json::Value::as_u64) == Some(seq))
                        .map_or_else(
                            || "(not in the log)".into(),
                            |e| serde_json::to_string_pretty(e).unwrap_or_default(),
                        ),
                    Err(e) => format!("(could not load the event: {e})"),
                };
                // The panel may show another event by now: then this signal is gone and nothing is set.
                let _ = json.try_set(text);
            });
            let summary = r.event.summary();
            view! {
                <aside class="detail" role="dialog" aria-label="Event detail" data-testid="detail">
                    <div class="detail-head">
                        <b>{format!("#{} {}", r.seq, r.event.kind())}</b>
                        <button aria-label="Close" on:click=move |_| ui.detail.set(None)>"×"</button>
                    </div>
                    <p class="detail-summary">{summary}</p>
                    <dl>
                        <dt>"Type"</dt><dd>{r.event.kind().to_string()}</dd>
                        <dt>"Category"</dt><dd>{format!("{} ({})", class.label(), r.event.category().as_str())}</dd>
                        <dt>"Agent"</dt><dd>{if name.is_empty() { "–".to_string() } else { name }}</dd>
                        <dt>"Step"</dt><dd>{r.keys.step.clone().unwrap_or_else(|| "–".into())}</dd>
                        <dt>"Time"</dt><dd>{crate::format::iso(&r.timestamp)}</dd>
                    </dl>
                    {files(ui, &r.event)}
                    <pre class="json">{move || json.get()}</pre>
                </aside>
            }
        })
    }
}

/// A run's file activity (a `FileTracking` event): the files it changed, with their diffs coloured and
/// a button that opens each in the editor (`POST /api/open-file`), and the files it read.
fn files(ui: Ui, event: &orch_core::wire::Event) -> Option<AnyView> {
    let orch_core::wire::Event::FileTracking { file_changes, read_files, .. } = event else { return None };
    let changed = file_changes
        .iter()
        .map(|f| {
            let path = f.absolute_path.clone();
            let status = format!("{:?}", f.status).to_ascii_lowercase();
            let diff = f.diff.as_deref().map(|d| view! { <details><summary>"diff"</summary>{diff_view(d)}</details> });
            view! {
                <li class="file">
                    <span class=format!("fstat f-{status}")>{status.to_ascii_uppercase()}</span>
                    <code>{f.path.clone()}</code>
                    <span class="add">{format!("+{}", f.lines_added)}</span>
                    <span class="del">{format!("−{}", f.lines_removed)}</span>
                    <button class="link" title="Open in the editor" on:click=move |_| {
                        net::post(ui, "/api/open-file".into(), serde_json::json!({"file_path": path.clone()}), "Opening the file");
                    }>"open"</button>
                    {(!f.summary.is_empty()).then(|| view! { <div class="muted">{f.summary.clone()}</div> })}
                    {diff}
                </li>
            }
        })
        .collect_view();
    let read = read_files
        .iter()
        .map(|f| {
            let lines = f.line_count.map(|n| format!(" ({n} lines)")).unwrap_or_default();
            view! { <li><code>{f.path.clone()}</code><span class="muted">{lines}</span></li> }
        })
        .collect_view();
    Some(
        view! {
            <div class="files">
                <h3>{format!("Produced ({})", file_changes.len())}</h3>
                <ul>{changed}</ul>
                <h3>{format!("Consumed ({})", read_files.len())}</h3>
                <ul>{read}</ul>
            </div>
        }
        .into_any(),
    )
}

/// A unified diff, its added, removed and hunk lines coloured.
pub(super) fn diff_view(d: &str) -> impl IntoView + use<> {
    let lines = d
        .lines()
        .map(|l| {
            let class = match l.chars().next() {
                Some('+') if !l.starts_with("+++") => "add",
                Some('-') if !l.starts_with("---") => "del",
                Some('@') => "hunk",
                _ => "",
            };
            view! { <span class=class>{format!("{l}\n")}</span> }
        })
        .collect_view();
    view! { <pre class="diff">{lines}</pre> }
}
