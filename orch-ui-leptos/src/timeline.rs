//! The timeline across agents (the ADW swimlanes generalised): one lane per agent, a bar per phase of
//! its work, each bar with what it cost, laid out on a shared time axis that zooms.
//!
//! A phase is a workflow step of the agent (its `step` key), or else one turn: it opens with the
//! agent's first event after the last phase ended, and ends at a `Result`, `Stop` or `StepEnd`. A
//! phase still open runs to now.

use std::collections::BTreeMap;

use orch_core::wire::{Event, EventRecord, Id};

/// One phase of an agent's work.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    /// Start, ms since the epoch.
    pub start: f64,
    /// End (now for an open phase), ms since the epoch.
    pub end: f64,
    /// What the phase's model calls cost, USD.
    pub cost: f64,
    /// The step, or the turn's prompt.
    pub label: String,
    /// Whether it is still going.
    pub open: bool,
    /// Its events.
    pub events: usize,
    /// The seq of its first event (the detail panel's event).
    pub first_seq: u64,
}

/// One agent's lane.
#[derive(Debug, Clone, PartialEq)]
pub struct Lane {
    /// The agent.
    pub agent: Id,
    /// Its phases, oldest first.
    pub bars: Vec<Bar>,
}

/// The lanes of `records` (in seq order), one per agent, in the order the agents first appear; open
/// phases end at `now` (ms since the epoch).
pub fn lanes<'a>(records: impl IntoIterator<Item = &'a EventRecord>, now: f64) -> Vec<Lane> {
    let mut order: Vec<Id> = Vec::new();
    let mut by_agent: BTreeMap<Id, Vec<Bar>> = BTreeMap::new();
    for r in records {
        let Some(agent) = r.keys.agent_id else { continue };
        let at = r.timestamp.timestamp_millis() as f64;
        let bars = by_agent.entry(agent).or_insert_with(|| {
            order.push(agent);
            Vec::new()
        });
        let step = r.keys.step.clone();
        // A new step closes the phase of the one before.
        let other_step = bars.last().is_some_and(|b| b.open && step.as_ref().is_some_and(|s| *s != b.label));
        if other_step && let Some(b) = bars.last_mut() {
            b.open = false;
        }
        if !bars.last().is_some_and(|b| b.open) && !starts_work(&r.event) {
            // What follows a phase's end (its cost, status, file report) belongs to it; it opens none.
            if let (Some(b), Event::AgentCostsUpdated { cost_usd, .. }) = (bars.last_mut(), &r.event) {
                b.cost += cost_usd;
            }
            continue;
        }
        if !bars.last().is_some_and(|b| b.open) {
            let label = step.unwrap_or_else(|| match &r.event {
                Event::UserPromptSubmit { prompt, .. } => crate::format::truncate(&crate::format::one_line(prompt), 60),
                _ => "turn".to_string(),
            });
            bars.push(Bar { start: at, end: at, cost: 0.0, label, open: true, events: 0, first_seq: r.seq });
        }
        let Some(bar) = bars.last_mut() else { continue };
        bar.end = bar.end.max(at);
        bar.events += 1;
        if let Event::AgentCostsUpdated { cost_usd, .. } = &r.event {
            bar.cost += cost_usd;
        }
        if matches!(r.event, Event::Result { .. } | Event::Stop { .. } | Event::StepEnd { .. }) {
            bar.open = false;
        }
    }
    order
        .into_iter()
        .map(|agent| {
            let mut bars = by_agent.remove(&agent).unwrap_or_default();
            for b in bars.iter_mut().filter(|b| b.open) {
                b.end = b.end.max(now);
            }
            Lane { agent, bars }
        })
        .collect()
}

/// Whether an event shows an agent at work (and so opens a phase when none is open): not its creation,
/// status, cost, file report, summaries, logs or the end of its turn.
fn starts_work(e: &Event) -> bool {
    !matches!(
        e,
        Event::AgentCreated { .. }
            | Event::AgentStatusChanged { .. }
            | Event::AgentCostsUpdated { .. }
            | Event::AgentDeleted { .. }
            | Event::FileTracking { .. }
            | Event::SummaryUpdated { .. }
            | Event::SystemLog { .. }
            | Event::Result { .. }
            | Event::Stop { .. }
            | Event::StepEnd { .. }
            | Event::WorkflowUpdated { .. }
    )
}

/// The time span the lanes cover: (earliest start, latest end), or `None` with no bars.
pub fn span(lanes: &[Lane]) -> Option<(f64, f64)> {
    let bars = lanes.iter().flat_map(|l| &l.bars);
    let start = bars.clone().map(|b| b.start).reduce(f64::min)?;
    let end = bars.map(|b| b.end).reduce(f64::max)?;
    Some((start, end.max(start + 1000.0)))
}

/// A bar's colour by its cost against the costliest bar: from cool (nothing spent) to hot, as an HSL
/// hue (200 = blue, 0 = red).
pub fn cost_hue(cost: f64, max: f64) -> u32 {
    if max.is_nan() || max <= 0.0 || !cost.is_finite() {
        return 200;
    }
    (200.0 * (1.0 - (cost / max).clamp(0.0, 1.0))).round() as u32
}

/// The zoom levels (pixels per second of the time axis) the buttons and Ctrl+wheel step through.
pub const ZOOMS: [f64; 11] = [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// The zoom level after one step in (`true`) or out from `index`.
pub fn zoom_step(index: usize, zoom_in: bool) -> usize {
    if zoom_in { (index + 1).min(ZOOMS.len() - 1) } else { index.saturating_sub(1) }
}

/// The scale (pixels per second) that fits `span_ms` into `width` pixels, within the zoom levels.
pub fn fit(span_ms: f64, width: f64) -> f64 {
    let (min, max) = (ZOOMS[0], ZOOMS[ZOOMS.len() - 1]);
    if span_ms.is_finite() && span_ms > 0.0 { (width / (span_ms / 1000.0)).clamp(min, max) } else { max }
}

/// The zoom level nearest to `pps` (where the buttons step from after fitting).
pub fn nearest(pps: f64) -> usize {
    let d = |i: usize| (ZOOMS[i].ln() - pps.max(f64::MIN_POSITIVE).ln()).abs();
    (0..ZOOMS.len()).min_by(|a, b| d(*a).total_cmp(&d(*b))).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use orch_core::wire::{EndReason, EventKeys, Usage};

    fn rec(seq: u64, secs: i64, agent: u128, step: Option<&str>, event: Event) -> EventRecord {
        EventRecord {
            seq,
            timestamp: chrono::DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap_or_default(),
            keys: EventKeys {
                agent_id: Some(Id::from_u128(agent)),
                step: step.map(str::to_string),
                ..EventKeys::default()
            },
            event,
        }
    }

    fn cost(usd: f64) -> Event {
        Event::AgentCostsUpdated {
            model: "m".into(),
            usage: Usage::default(),
            cost_usd: usd,
            total_usage: Usage::default(),
            total_cost_usd: usd,
            context_used: None,
            context_window: None,
        }
    }

    fn result() -> Event {
        Event::Result {
            is_error: false,
            stop_reason: EndReason::EndTurn,
            num_turns: 1,
            duration_ms: 1,
            usage: Usage::default(),
            cost_usd: 0.0,
            result: None,
        }
    }

    #[test]
    fn a_lane_per_agent_with_a_bar_per_turn_or_step_and_its_cost() {
        let prompt = Event::UserPromptSubmit { prompt: "fix the parser".into(), prompt_length: 14 };
        let records = vec![
            rec(1, 0, 1, None, prompt),
            rec(2, 2, 1, None, cost(0.5)),
            rec(3, 4, 1, None, result()),
            rec(31, 4, 1, None, cost(0.25)),
            rec(32, 5, 1, None, Event::FileTracking { text_seq: None, file_changes: vec![], read_files: vec![] }),
            rec(4, 5, 2, Some("plan"), Event::Text { text: "p".into() }),
            rec(5, 6, 2, Some("plan"), cost(0.25)),
            rec(6, 8, 2, Some("build"), Event::Text { text: "b".into() }),
            rec(7, 10, 1, None, Event::Text { text: "again".into() }),
        ];
        let now = (1_800_000_000_i64 + 20) as f64 * 1000.0;
        let lanes = lanes(&records, now);
        assert_eq!(lanes.iter().map(|l| l.agent).collect::<Vec<_>>(), [Id::from_u128(1), Id::from_u128(2)]);
        let a: Vec<(&str, f64, bool)> = lanes[0].bars.iter().map(|b| (b.label.as_str(), b.cost, b.open)).collect();
        assert_eq!(a, [("fix the parser", 0.75, false), ("turn", 0.0, true)], "what follows the end opens no phase");
        assert_eq!(lanes[0].bars[0].end - lanes[0].bars[0].start, 4000.0);
        assert_eq!(lanes[0].bars[1].end, now, "an open turn runs to now");
        let b: Vec<(&str, f64)> = lanes[1].bars.iter().map(|b| (b.label.as_str(), b.cost)).collect();
        assert_eq!(b, [("plan", 0.25), ("build", 0.0)]);
        assert!(!lanes[1].bars[0].open, "the next step closed it");
        let (start, end) = span(&lanes).unwrap();
        assert_eq!((end - start) / 1000.0, 20.0);
        assert!(span(&[]).is_none());
    }

    #[test]
    fn colours_and_zoom() {
        assert_eq!(cost_hue(0.0, 1.0), 200);
        assert_eq!(cost_hue(1.0, 1.0), 0);
        assert_eq!(cost_hue(0.5, 0.0), 200);
        assert_eq!(zoom_step(0, false), 0);
        assert_eq!(zoom_step(ZOOMS.len() - 1, true), ZOOMS.len() - 1);
        assert_eq!(zoom_step(3, true), 4);
        assert_eq!(fit(10_000.0, 640.0), 64.0, "ten seconds");
        assert_eq!(fit(1_000.0, 640.0), 256.0, "a second: the closest zoom");
        assert_eq!(fit(3_600_000.0, 720.0), 0.25, "an hour: the widest");
        assert_eq!(fit(100_000.0, 800.0), 8.0);
        assert_eq!(ZOOMS[nearest(7.0)], 8.0);
        assert_eq!(ZOOMS[nearest(0.01)], 0.25);
    }
}
