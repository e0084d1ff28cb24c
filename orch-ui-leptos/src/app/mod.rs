//! The page: Leptos views over the state of [`crate::model`], fed by [`net`].

mod adws;
mod agents;
mod changes;
mod chat;
mod costs;
mod graphs;
mod inbox;
mod net;
mod stream;
mod timeline;

use leptos::ev;
use leptos::prelude::*;
use orch_core::wire::{EventRecord, Id};
use wasm_bindgen::prelude::*;

use crate::buffer::{EventBuffer, Row};
use crate::filter::Filter;
use crate::format;
use crate::model::{Chat, Fleet, Workflows};

/// Where the live stream stands.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Conn {
    /// Loading the page's data or opening the socket.
    Connecting,
    /// Connected, replaying what was missed.
    Replaying,
    /// Connected and live.
    Live,
    /// Disconnected; the next attempt is at this time (ms since the epoch).
    Down {
        /// When the next attempt starts.
        retry_at: f64,
        /// Attempts so far.
        attempt: u32,
    },
}

/// The centre column's view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// The event stream.
    Logs,
    /// Workflow runs as swimlanes.
    Adws,
    /// Every agent's work on one time axis.
    Timeline,
    /// Task graphs in waves.
    Graphs,
    /// What waits for a person.
    Inbox,
    /// Spending and budgets.
    Costs,
    /// What the agents changed.
    Changes,
}

impl View {
    /// The next view (Ctrl/Cmd+J).
    fn next(self) -> View {
        match self {
            View::Logs => View::Adws,
            View::Adws => View::Timeline,
            View::Timeline => View::Graphs,
            View::Graphs => View::Inbox,
            View::Inbox => View::Costs,
            View::Costs => View::Changes,
            View::Changes => View::Logs,
        }
    }
}

/// The page's state: signals, all `Copy`, handed to every view.
#[derive(Clone, Copy)]
pub struct Ui {
    /// The stream's rows.
    pub events: RwSignal<EventBuffer>,
    /// The agents.
    pub fleet: RwSignal<Fleet>,
    /// The orchestrator's chat.
    pub chat: RwSignal<Chat>,
    /// Workflow runs.
    pub workflows: RwSignal<Workflows>,
    /// The connection.
    pub conn: RwSignal<Conn>,
    /// The stream's filter.
    pub filter: RwSignal<Filter>,
    /// The centre view.
    pub view: RwSignal<View>,
    /// Whether the command palette is open.
    pub palette: RwSignal<bool>,
    /// Whether the stream follows new events.
    pub follow: RwSignal<bool>,
    /// The event whose detail is open (stream or swimlane).
    pub detail: RwSignal<Option<EventRecord>>,
    /// WebSocket frames received since the page opened.
    pub frames: RwSignal<u64>,
    /// The last failure of an action the person took (a send, a start), shown until dismissed.
    pub notice: RwSignal<Option<String>>,
    /// The time, ticking every second (ms since the epoch).
    pub now: RwSignal<f64>,
    /// Workflow types (for starting one).
    pub workflow_types: RwSignal<Vec<String>>,
    /// What waits for a person, most urgent first.
    pub attention: RwSignal<Vec<orch_core::wire::AttentionItem>>,
    /// Task graphs and their tasks.
    pub graphs: RwSignal<crate::graphs::Graphs>,
    /// The seqs of the stream's rows that pass the filter, in order.
    pub shown: Memo<Vec<u64>>,
    /// Whether the keyboard help is open.
    pub help: RwSignal<bool>,
    /// Whether a browser notification announces what starts waiting for a person.
    pub notify: RwSignal<bool>,
}

impl Ui {
    fn new() -> Self {
        let from_url = web_sys::window().and_then(|w| w.location().search().ok()).map(|q| Filter::from_query(&q));
        let filter = RwSignal::new(from_url.unwrap_or_default());
        let events = RwSignal::new(EventBuffer::default());
        let shown = Memo::new(move |_| {
            let m = filter.with(Filter::compile);
            events.with(|b| b.rows().iter().filter(|r| m.matches(r)).map(|r| r.seq).collect::<Vec<u64>>())
        });
        Self {
            events,
            fleet: RwSignal::new(Fleet::default()),
            chat: RwSignal::new(Chat::default()),
            workflows: RwSignal::new(Workflows::default()),
            conn: RwSignal::new(Conn::Connecting),
            filter,
            view: RwSignal::new(View::Logs),
            palette: RwSignal::new(false),
            follow: RwSignal::new(true),
            detail: RwSignal::new(None),
            frames: RwSignal::new(0),
            notice: RwSignal::new(None),
            now: RwSignal::new(js_sys::Date::now()),
            workflow_types: RwSignal::new(Vec::new()),
            attention: RwSignal::new(Vec::new()),
            graphs: RwSignal::new(crate::graphs::Graphs::default()),
            shown,
            help: RwSignal::new(false),
            notify: RwSignal::new(false),
        }
    }

    /// Whether actions that need the server can be taken.
    pub fn connected(&self) -> bool {
        matches!(self.conn.get(), Conn::Live | Conn::Replaying)
    }

    /// Applies new events (in seq order), each once: the buffer drops those it has.
    pub fn apply(&self, records: Vec<EventRecord>) {
        if records.is_empty() {
            return;
        }
        let mut fresh = Vec::new();
        self.fleet.update(|fleet| {
            self.events.update(|buffer| {
                for r in records {
                    if buffer.seen(r.seq) {
                        continue;
                    }
                    fleet.apply(&r);
                    let name = r.keys.agent_id.and_then(|a| fleet.name_of(a)).unwrap_or_default().to_string();
                    if buffer.insert(Row::new(r.clone(), &name)) {
                        fresh.push(r);
                    }
                }
            });
        });
        let orchestrator = self.fleet.with_untracked(|f| f.orchestrator_agent);
        self.chat.update(|c| fresh.iter().for_each(|r| c.apply(r, orchestrator)));
        self.workflows.update(|w| fresh.iter().for_each(|r| w.apply(r)));
        if fresh.iter().any(|r| {
            matches!(r.event, orch_core::wire::Event::GraphUpdated { .. } | orch_core::wire::Event::TaskUpdated { .. })
        }) {
            self.graphs.update(|g| fresh.iter().for_each(|r| g.apply(r)));
        }
        if fresh.iter().any(crate::inbox::touches) {
            net::attention_changed(*self);
        }
    }

    /// The agent's name for the stream.
    pub fn agent_name(&self, id: Option<Id>) -> String {
        id.map(|id| {
            self.fleet
                .with_untracked(|f| f.name_of(id).map(str::to_string))
                .unwrap_or_else(|| format!("{}…", &id.to_string()[..8]))
        })
        .unwrap_or_default()
    }

    /// Writes the stream's filter into the page URL (so a reload or a shared link shows the same rows).
    fn sync_url(&self) {
        let query = self.filter.with(Filter::to_query);
        if let Some(w) = web_sys::window()
            && let Ok(history) = w.history()
        {
            let path = w.location().pathname().unwrap_or_else(|_| "/".into());
            let url = if query.is_empty() { path } else { format!("{path}?{query}") };
            let _ = history.replace_state_with_url(&JsValue::NULL, "", Some(&url));
        }
    }
}

/// Mounts the page (called by the module's start).
#[wasm_bindgen(start)]
pub fn start() {
    leptos::mount::mount_to_body(App);
}

#[component]
fn App() -> impl IntoView {
    let ui = Ui::new();
    net::start(ui);
    set_interval(move || ui.now.set(js_sys::Date::now()), std::time::Duration::from_secs(1));
    Effect::new(move |_| ui.sync_url());
    Effect::new(move |_| {
        let title = crate::inbox::title(ui.attention.with(Vec::len));
        if let Some(d) = web_sys::window().and_then(|w| w.document()) {
            d.set_title(&title);
        }
    });
    let keys = window_event_listener(ev::keydown, move |e: web_sys::KeyboardEvent| on_key(ui, &e));
    on_cleanup(move || keys.remove());
    view! {
        <Header ui=ui/>
        <Banner ui=ui/>
        <main class="columns">
            <agents::Agents ui=ui/>
            <section class="center" aria-label="Events and workflows">
                {move || match ui.view.get() {
                    View::Logs => stream::Stream(stream::StreamProps { ui }).into_any(),
                    View::Adws => adws::Swimlanes(adws::SwimlanesProps { ui }).into_any(),
                    View::Timeline => timeline::Timeline(timeline::TimelineProps { ui }).into_any(),
                    View::Graphs => graphs::Graphs(graphs::GraphsProps { ui }).into_any(),
                    View::Inbox => inbox::Inbox(inbox::InboxProps { ui }).into_any(),
                    View::Costs => costs::Costs(costs::CostsProps { ui }).into_any(),
                    View::Changes => changes::Changes(changes::ChangesProps { ui }).into_any(),
                }}
            </section>
            <chat::ChatColumn ui=ui/>
        </main>
        <stream::Detail ui=ui/>
        <chat::Palette ui=ui/>
        <Help ui=ui/>
        <Notice ui=ui/>
    }
}

/// Global keys: Ctrl/Cmd+K the palette, Ctrl/Cmd+J the next view, Esc closes what is open, `/` the
/// search, `f` follow.
fn on_key(ui: Ui, e: &web_sys::KeyboardEvent) {
    let modifier = e.ctrl_key() || e.meta_key();
    let key = e.key();
    if modifier && key.eq_ignore_ascii_case("k") {
        e.prevent_default();
        ui.palette.update(|p| *p = !*p);
        if ui.palette.get_untracked() {
            chat::focus_palette();
        }
    } else if modifier && key.eq_ignore_ascii_case("j") {
        e.prevent_default();
        ui.view.update(|v| *v = v.next());
    } else if key == "Escape" {
        if ui.palette.get_untracked() {
            ui.palette.set(false);
        } else if ui.help.get_untracked() {
            ui.help.set(false);
        } else {
            ui.detail.set(None);
        }
    } else if !modifier && !e.alt_key() && !typing_in_a_field(e) {
        let logs = ui.view.get_untracked() == View::Logs;
        match key.as_str() {
            "/" if logs => {
                e.prevent_default();
                stream::focus_search();
            }
            "f" if logs => ui.follow.update(|f| *f = !*f),
            "j" | "k" if logs => stream::select_next(ui, key == "k", false),
            "e" if logs => stream::select_next(ui, false, true),
            "?" => ui.help.update(|h| *h = !*h),
            _ => {}
        }
    }
}

fn typing_in_a_field(e: &web_sys::KeyboardEvent) -> bool {
    e.target()
        .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
        .is_some_and(|el| matches!(el.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT"))
}

#[component]
fn Header(ui: Ui) -> impl IntoView {
    let stats = move || ui.fleet.with(Fleet::stats);
    let state = move || match ui.conn.get() {
        Conn::Live => ("live", "Connected"),
        Conn::Replaying => ("replaying", "Catching up…"),
        Conn::Connecting => ("connecting", "Connecting…"),
        Conn::Down { .. } => ("down", "Disconnected"),
    };
    let tab = move |view: View, label: &'static str| {
        view! {
            <button class="tab" class:active=move || ui.view.get() == view aria-pressed=move || (ui.view.get() == view).to_string()
                on:click=move |_| ui.view.set(view)>
                {label}
                {move || {
                    let n = match view {
                        View::Adws => ui.workflows.with(Workflows::running),
                        View::Graphs => ui.graphs.with(|g| g.list().iter().filter(|g| g.status.as_str() == "running").count()),
                        View::Inbox => ui.attention.with(Vec::len),
                        _ => 0,
                    };
                    (n > 0).then(|| view! { <span class="badge" data-testid=format!("badge-{label}")>{n}</span> })
                }}
            </button>
        }
    };
    view! {
        <header class="top">
            <h1>"orch"<span class="sub">" multi-agent orchestration"</span></h1>
            <span class=move || format!("conn conn-{}", state().0) role="status" data-testid="conn">
                <span class="dot"></span>{move || state().1}
            </span>
            <div class="stats" aria-label="Statistics">
                <span class="stat" title="Agents not complete">"Active "<b data-testid="stat-active">{move || stats().0}</b></span>
                <span class="stat" title="Agents executing">"Running "<b>{move || stats().1}</b></span>
                <span class="stat" title="Events loaded in the stream">"Events "<b data-testid="stat-events">{move || ui.events.with(EventBuffer::len)}</b></span>
                <span class="stat stat-frames" title="WebSocket frames received">"Frames "<b>{move || ui.frames.get()}</b></span>
                <span class="stat" title="Orchestrator and agents">"Cost "<b>{move || format::cost(stats().2)}</b></span>
            </div>
            <nav class="tabs" aria-label="View (Ctrl+J)">
                {tab(View::Logs, "LOGS")}
                {tab(View::Adws, "ADWS")}
                {tab(View::Timeline, "TIMELINE")}
                {tab(View::Graphs, "GRAPHS")}
                {tab(View::Inbox, "INBOX")}
                {tab(View::Costs, "COSTS")}
                {tab(View::Changes, "CHANGES")}
            </nav>
            <button class="prompt-btn" title="Command palette (Ctrl+K)" on:click=move |_| {
                ui.palette.update(|p| *p = !*p);
                chat::focus_palette();
            }>"PROMPT ⌘K"</button>
        </header>
    }
}

/// The banner while the stream is down.
#[component]
fn Banner(ui: Ui) -> impl IntoView {
    move || match ui.conn.get() {
        Conn::Down { retry_at, attempt } => {
            let secs = ((retry_at - ui.now.get()) / 1000.0).ceil().max(0.0) as u64;
            let when = if secs == 0 { "now".to_string() } else { format!("in {secs}s") };
            Some(view! {
                <div class="banner" role="alert" data-testid="banner">
                    {format!("Disconnected from the server. Reconnecting {when} (attempt {attempt}). ")}
                    "What is shown stays; missed events are replayed when the connection is back. "
                    <button on:click=move |_| net::reconnect_now(ui)>"Retry now"</button>
                </div>
            })
        }
        _ => None,
    }
}

/// The keyboard help (`?`).
#[component]
fn Help(ui: Ui) -> impl IntoView {
    let keys = [
        ("Ctrl/Cmd+K", "open or close the command palette (Enter sends, Shift+Enter new line)"),
        ("Ctrl/Cmd+J", "next view: LOGS, ADWS, TIMELINE, GRAPHS, INBOX, COSTS, CHANGES"),
        ("/", "search the stream (a regular expression)"),
        ("j / k", "next / previous event, with its detail"),
        ("e", "next error"),
        ("f", "follow new events, or pause"),
        ("Esc", "close the palette, this help or the detail"),
        ("?", "this help"),
    ];
    move || {
        ui.help.get().then(|| {
            view! {
                <div class="palette-backdrop" on:click=move |_| ui.help.set(false)></div>
                <div class="help" role="dialog" aria-label="Keyboard shortcuts">
                    <h2>"Keyboard"</h2>
                    <dl>{keys.iter().map(|(k, what)| view! { <dt><kbd>{*k}</kbd></dt><dd>{*what}</dd> }).collect_view()}</dl>
                </div>
            }
        })
    }
}

#[component]
fn Notice(ui: Ui) -> impl IntoView {
    move || {
        ui.notice.get().map(|n| {
            view! {
                <div class="notice" role="alert">
                    <span>{n}</span>
                    <button aria-label="Dismiss" on:click=move |_| ui.notice.set(None)>"×"</button>
                </div>
            }
        })
    }
}
