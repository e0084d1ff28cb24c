//! How numbers, times and text are shown.

use orch_core::wire::Timestamp;

/// `x` with `decimals` digits after the point (at most 6), rounded half to even like `{:.N}`; `–` when
/// not finite. Written with integers: core's float formatting is a large part of a wasm bundle.
pub fn fixed(x: f64, decimals: u32) -> String {
    if !x.is_finite() {
        return "–".into();
    }
    let scale = 10u64.pow(decimals.min(6));
    // A saturating cast: past u64::MAX the figure is meaningless anyway.
    let n = (x.abs() * scale as f64).round_ties_even() as u64;
    let sign = if x < 0.0 && n > 0 { "-" } else { "" };
    match decimals {
        0 => format!("{sign}{n}"),
        d => format!("{sign}{}.{:0w$}", n / scale, n % scale, w = d.min(6) as usize),
    }
}

/// Dollars with 3 decimals (`$0.042`); 2 from $100 on.
pub fn cost(usd: f64) -> String {
    if !usd.is_finite() {
        return "$–".into();
    }
    format!("${}", fixed(usd, if usd.abs() >= 100.0 { 2 } else { 3 }))
}

/// Token counts: `950`, `12.3k`, `1.2M`.
pub fn tokens(n: u64) -> String {
    match n {
        0..=999 => n.to_string(),
        1_000..=999_999 => format!("{}k", fixed(n as f64 / 1_000.0, 1)),
        _ => format!("{}M", fixed(n as f64 / 1_000_000.0, 1)),
    }
}

/// A duration in seconds: `42s`, `3m 05s`, `2h 01m`.
pub fn duration(secs: u64) -> String {
    match secs {
        0..=59 => format!("{secs}s"),
        60..=3_599 => format!("{}m {:02}s", secs / 60, secs % 60),
        _ => format!("{}h {:02}m", secs / 3_600, (secs % 3_600) / 60),
    }
}

/// `HH:MM:SS` (UTC).
pub fn clock(t: &Timestamp) -> String {
    use chrono::Timelike;
    // By hand rather than with chrono's `format`, whose machinery is a large part of a wasm bundle.
    format!("{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second())
}

/// `2026-12-03T08:01:05.123Z` (UTC, milliseconds), written by hand for the reason [`clock`] is.
pub fn iso(t: &Timestamp) -> String {
    use chrono::Datelike;
    let ms = t.timestamp_subsec_millis();
    format!("{:04}-{:02}-{:02}T{}.{ms:03}Z", t.year(), t.month(), t.day(), clock(t))
}

/// At most `max` characters of `s`, with `…` when cut.
pub fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_string(),
    }
}

/// Whitespace runs (newlines included) as one space.
pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A workflow step's lane title: `_workflow` is "Workflow", `build_fix` is "Build Fix".
pub fn step_title(step: &str) -> String {
    if step == "_workflow" {
        return "Workflow".into();
    }
    step.split('_')
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_uppercase().chain(c).collect::<String>()).unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A hue (0–359) for a name, so each agent keeps its colour.
pub fn hue(name: &str) -> u32 {
    let h = name.bytes().fold(2_166_136_261u32, |h, b| (h ^ u32::from(b)).wrapping_mul(16_777_619));
    h % 360
}

/// The share of the context window used, 0–100, when the window is known.
pub fn context_percent(used: u64, window: Option<u64>) -> Option<f64> {
    let w = window.filter(|w| *w > 0)?;
    Some((used as f64 * 100.0 / w as f64).clamp(0.0, 100.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(cost(0.0421), "$0.042");
        assert_eq!(cost(123.456), "$123.46");
        assert_eq!(cost(f64::NAN), "$–");
        assert_eq!(cost(-0.0004), "$0.000");
        assert_eq!(
            (fixed(2.5, 0), fixed(-1.25, 1), fixed(0.1, 2), fixed(7.0, 1)),
            ("2".into(), "-1.2".into(), "0.10".into(), "7.0".into())
        );
        assert_eq!(tokens(950), "950");
        assert_eq!(tokens(12_345), "12.3k");
        assert_eq!(tokens(1_250_000), "1.2M");
        assert_eq!(duration(42), "42s");
        assert_eq!(duration(185), "3m 05s");
        assert_eq!(duration(7_260), "2h 01m");
        assert_eq!(context_percent(50_000, Some(200_000)), Some(25.0));
        assert_eq!(context_percent(1, Some(0)), None);
        assert_eq!(context_percent(300, Some(200)), Some(100.0));
        let t: Timestamp = "2026-12-03T08:01:05.042Z".parse().unwrap();
        assert_eq!(iso(&t), "2026-12-03T08:01:05.042Z");
    }

    #[test]
    fn text() {
        assert_eq!(truncate("héllo wörld", 5), "héllo…");
        assert_eq!(truncate("short", 10), "short");
        assert_eq!(one_line("a\n  b\tc"), "a b c");
        assert_eq!(step_title("_workflow"), "Workflow");
        assert_eq!(step_title("build_fix"), "Build Fix");
        assert_eq!(hue("alice"), hue("alice"));
        assert!(hue("bob") < 360);
    }
}
