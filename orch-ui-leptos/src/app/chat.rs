//! The orchestrator's chat (history, bubbles, typing indicator, a message box) and the command palette
//! (Ctrl/Cmd+K: Enter sends, Shift+Enter is a new line, Esc closes; disabled while disconnected).

use leptos::html;
use leptos::prelude::*;
use wasm_bindgen::JsCast;

use super::{Ui, net};
use crate::format;
use crate::markdown;
use crate::model::{Bubble, ChatItem};
use crate::protocol::Suggestion;

/// Puts the cursor in the palette once it is shown.
pub fn focus_palette() {
    request_animation_frame(|| {
        if let Some(el) = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.get_element_by_id("palette-input"))
            .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
        {
            let _ = el.focus();
        }
    });
}

/// Enter sends (Shift+Enter is a new line).
fn on_enter(ui: Ui, text: RwSignal<String>, e: &web_sys::KeyboardEvent, then: impl Fn()) {
    if e.key() == "Enter" && !e.shift_key() && !e.is_composing() {
        e.prevent_default();
        if ui.connected() && !text.get_untracked().trim().is_empty() {
            net::send_chat(ui, text.get_untracked());
            text.set(String::new());
            then();
        }
    }
}

#[component]
pub fn ChatColumn(ui: Ui) -> impl IntoView {
    let text = RwSignal::new(String::new());
    let list: NodeRef<html::Div> = NodeRef::new();
    let wide = RwSignal::new(
        web_sys::window()
            .and_then(|w| w.local_storage().ok().flatten())
            .and_then(|s| s.get_item("orch_chat_wide").ok().flatten())
            .is_some_and(|v| v == "1"),
    );
    Effect::new(move |_| {
        let wide = wide.get();
        if let Some(s) = web_sys::window().and_then(|w| w.local_storage().ok().flatten()) {
            let _ = s.set_item("orch_chat_wide", if wide { "1" } else { "0" });
        }
    });
    // Keep the newest bubble in view.
    Effect::new(move |_| {
        let _ = ui.chat.with(|c| (c.items().len(), c.typing));
        if let Some(el) = list.get() {
            request_animation_frame(move || el.set_scroll_top(el.scroll_height()));
        }
    });
    let context = move || {
        ui.fleet.with(|f| {
            let (used, window) = f.orchestrator_context;
            match window {
                Some(w) if w > 0 => format!("{}/{}", format::tokens(used), format::tokens(w)),
                _ => format::tokens(used),
            }
        })
    };
    view! {
        <aside class="chat" class:wide=move || wide.get() aria-label="Orchestrator chat">
            <div class="col-head">
                <h2>"Orchestrator"</h2>
                <span class="muted" title="Orchestrator cost">{move || ui.fleet.with(|f| format::cost(f.orchestrator_cost))}</span>
                <span class="muted" title="Context used">{context}</span>
                <button class="icon" aria-label="Toggle the chat width" on:click=move |_| wide.update(|w| *w = !*w)>"↔"</button>
            </div>
            <div class="bubbles" node_ref=list data-testid="chat">
                <For each=move || ui.chat.with(|c| c.items().to_vec()) key=|i| i.key.clone() let:item>
                    {bubble(item)}
                </For>
                <Show when=move || ui.chat.with(|c| c.items().is_empty())>
                    <p class="empty">"Ask the orchestrator for something, e.g. “create an agent called alice for python work, then have her write hello.py”."</p>
                </Show>
                <Show when=move || ui.chat.with(|c| c.typing)>
                    <div class="typing" aria-label="The orchestrator is answering"><span></span><span></span><span></span></div>
                </Show>
            </div>
            <div class="compose">
                <textarea id="chat-input" rows="2" placeholder="Message the orchestrator (Enter sends, Shift+Enter new line)"
                    aria-label="Message to the orchestrator" prop:disabled=move || !ui.connected()
                    prop:value=move || text.get() on:input=move |e| text.set(event_target_value(&e))
                    on:keydown=move |e| on_enter(ui, text, &e, || {})></textarea>
                <button class="send" prop:disabled=move || !ui.connected() || text.with(|t| t.trim().is_empty())
                    on:click=move |_| {
                        net::send_chat(ui, text.get_untracked());
                        text.set(String::new());
                    }>"Send"</button>
            </div>
        </aside>
    }
}

fn bubble(item: ChatItem) -> impl IntoView {
    let time = format::clock(&item.at);
    match item.kind {
        Bubble::User | Bubble::Orchestrator | Bubble::Agent => {
            let (class, who) = match item.kind {
                Bubble::User => ("msg user", "YOU"),
                Bubble::Orchestrator => ("msg orch", "ORCHESTRATOR"),
                _ => ("msg agent", "AGENT"),
            };
            view! {
                <div class=class>
                    <div class="who">{who}<span class="time">{time}</span></div>
                    <div class="md" inner_html=markdown::to_html(&item.text)></div>
                </div>
            }
            .into_any()
        }
        Bubble::Thinking => view! {
            <details class="msg thinking">
                <summary>"ORCHESTRATOR THINKING "<span class="time">{time}</span></summary>
                <div class="pre">{item.text}</div>
            </details>
        }
        .into_any(),
        Bubble::Tool => view! {
            <div class="msg tool">
                <div class="who">"ORCHESTRATOR ACTION"<span class="time">{time}</span></div>
                <code>{item.text}</code>
            </div>
        }
        .into_any(),
    }
}

/// How long typing must pause before suggestions are asked for.
const SUGGEST_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

#[component]
pub fn Palette(ui: Ui) -> impl IntoView {
    let text = RwSignal::new(String::new());
    let suggestions = RwSignal::new(Vec::<Suggestion>::new());
    let thinking = RwSignal::new(false);
    // Bumped on every keystroke: only the last pause asks, and only its answer is shown.
    let typed = StoredValue::new(0u64);
    let ask = move || {
        let n = typed
            .try_update_value(|t| {
                *t += 1;
                *t
            })
            .unwrap_or_default();
        suggestions.set(Vec::new());
        set_timeout(
            move || {
                let input = text.get_untracked();
                if n != typed.get_value() || input.trim().is_empty() || !ui.palette.get_untracked() {
                    return;
                }
                thinking.set(true);
                net::suggest(input, move |found| {
                    if n == typed.get_value() {
                        suggestions.set(found);
                    }
                    thinking.set(false);
                });
            },
            SUGGEST_AFTER,
        );
    };
    let accept = move |i: usize| {
        if let Some(s) = suggestions.with_untracked(|v| v.get(i).cloned()) {
            let before = text.get_untracked();
            text.update(|t| t.push_str(&s.completion));
            net::autocomplete_feedback(serde_json::json!({"completion_type": "autocomplete",
                "user_input_before_completion": before, "autocomplete_item": s.completion, "reasoning": s.reasoning}));
            suggestions.set(Vec::new());
            focus_palette();
        }
    };
    let on_key = move |e: web_sys::KeyboardEvent| {
        if (e.ctrl_key() || e.meta_key())
            && let Some(i) = ["1", "2", "3"].iter().position(|k| e.key() == *k)
        {
            e.prevent_default();
            accept(i);
            return;
        }
        if e.key() == "Enter" && !e.shift_key() && suggestions.with_untracked(|s| !s.is_empty()) {
            net::autocomplete_feedback(
                serde_json::json!({"completion_type": "none", "user_input_on_enter": text.get_untracked()}),
            );
            suggestions.set(Vec::new());
        }
        on_enter(ui, text, &e, move || ui.palette.set(false));
    };
    // The system panel's facts, fetched whenever the palette opens.
    let system = RwSignal::new(crate::protocol::System::default());
    Effect::new(move |_| {
        if ui.palette.get() {
            net::load_system(system);
        }
    });
    let insert = move |s: String| {
        text.update(|t| {
            if !t.is_empty() && !t.ends_with(' ') {
                t.push(' ');
            }
            t.push_str(&s);
        });
        focus_palette();
    };
    view! {
        <Show when=move || ui.palette.get()>
            <div class="palette-backdrop" on:click=move |_| ui.palette.set(false)></div>
            <div class="palette" role="dialog" aria-label="Command palette">
                <textarea id="palette-input" rows="3" aria-label="Message to the orchestrator"
                    placeholder=move || if ui.connected() { "Tell the orchestrator what to do… (Enter sends, Shift+Enter new line, Esc closes)" } else { "Disconnected: waiting for the server…" }
                    prop:disabled=move || !ui.connected()
                    prop:value=move || text.get() on:input=move |e| { text.set(event_target_value(&e)); ask(); }
                    on:keydown=on_key></textarea>
                <div class="suggestions" aria-live="polite">
                    {move || thinking.get().then(|| view! { <span class="muted">"Generating suggestions…"</span> })}
                    {move || suggestions.get().into_iter().enumerate().map(|(i, s)| view! {
                        <button class="pill suggestion" title=s.reasoning.clone() on:click=move |_| accept(i)>
                            <kbd>{format!("Ctrl+{}", i + 1)}</kbd>" "{s.completion.clone()}
                        </button>
                    }).collect_view()}
                </div>
                <div class="palette-info" data-testid="system-panel">
                    <div><b>"Session "</b>
                        <code data-testid="session-id">{move || system.with(|s| s.session_id.clone().unwrap_or_else(|| "none yet".into()))}</code>
                        <button class="pill" aria-label="Copy the session id" prop:disabled=move || system.with(|s| s.session_id.is_none())
                            on:click=move |_| copy(ui, system.with_untracked(|s| s.session_id.clone().unwrap_or_default()))>"copy"</button>
                        <b>" cwd "</b>
                        <code data-testid="cwd">{move || system.with(|s| s.cwd.clone())}</code>
                        <button class="pill" aria-label="Copy the working directory"
                            on:click=move |_| copy(ui, system.with_untracked(|s| s.cwd.clone()))>"copy"</button>
                    </div>
                    {move || {
                        let s = system.get();
                        [("Commands ", s.commands), ("Templates ", s.templates), ("Tools ", s.tools)].into_iter().map(|(label, items)| view! {
                            <div><b>{label}</b>
                                {if items.is_empty() { Some(view! { <span class="muted">"none"</span> }) } else { None }}
                                {items.into_iter().map(|n| {
                                    let n2 = n.clone();
                                    view! { <button class="pill" on:click=move |_| insert(n2.clone())>{n}</button> }
                                }).collect_view()}
                            </div>
                        }).collect_view()
                    }}
                    <div><b>"Agents "</b>
                        {move || ui.fleet.with(|f| f.cards().iter().map(|c| c.agent.name.clone()).collect::<Vec<_>>()).into_iter().map(|n| {
                            let n2 = n.clone();
                            view! { <button class="pill" on:click=move |_| insert(n2.clone())>{n}</button> }
                        }).collect_view()}
                    </div>
                    <div><b>"Workflows "</b>
                        {move || ui.workflow_types.get().into_iter().map(|t| {
                            let cmd = format!("start_adw workflow_type={t}");
                            view! { <button class="pill" on:click=move |_| insert(cmd.clone())>{t}</button> }
                        }).collect_view()}
                    </div>
                    <div class="muted">"Ctrl+K toggles · Ctrl+J cycles the views · / searches · j/k move · e next error · f follows · ? help · Esc closes"</div>
                </div>
            </div>
        </Show>
    }
}

/// Copies `text` to the clipboard, saying so (or why not).
fn copy(ui: Ui, text: String) {
    let Some(w) = web_sys::window() else { return };
    let promise = w.navigator().clipboard().write_text(&text);
    leptos::task::spawn_local(async move {
        let said = match wasm_bindgen_futures::JsFuture::from(promise).await {
            Ok(_) => format!("Copied {text}"),
            Err(_) => format!("The browser did not allow copying; select it instead: {text}"),
        };
        ui.notice.set(Some(said));
    });
}
