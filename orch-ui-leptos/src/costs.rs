//! The costs view's data: `GET /api/costs` (totals by agent, model, workflow, graph and day) and
//! `GET /api/budgets` (today's and this month's spending against their limits), read defensively.

use serde_json::Value;

/// One line of a cost table.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// What it is the cost of (an agent, a model, a day, …).
    pub key: String,
    /// USD.
    pub cost: f64,
    /// Model calls.
    pub calls: u64,
    /// Input and output tokens.
    pub tokens: (u64, u64),
}

fn line(key: &str, v: &Value) -> Line {
    let n = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
    let name = v.get("name").and_then(Value::as_str);
    Line {
        key: name.map_or_else(|| key.to_string(), |n| format!("{n} ({})", key.chars().take(8).collect::<String>())),
        cost: v.get("cost_usd").and_then(Value::as_f64).unwrap_or(0.0),
        calls: n("calls"),
        tokens: (n("input_tokens"), n("output_tokens")),
    }
}

/// The lines of the table `by` (`by_agent`, `by_model`, `by_workflow`, `by_graph`), the costliest
/// first; `by_day` in date order.
pub fn table(costs: &Value, by: &str) -> Vec<Line> {
    let mut lines: Vec<Line> = costs
        .get(by)
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| line(k, v)).collect())
        .unwrap_or_default();
    if by == "by_day" {
        lines.sort_by(|a, b| a.key.cmp(&b.key));
    } else {
        lines.sort_by(|a, b| b.cost.total_cmp(&a.cost).then(a.key.cmp(&b.key)));
    }
    lines
}

/// The total line.
pub fn total(costs: &Value) -> Line {
    costs.get("total").map(|t| line("total", t)).unwrap_or(Line {
        key: "total".into(),
        cost: 0.0,
        calls: 0,
        tokens: (0, 0),
    })
}

/// A budget: spent, and the limit when there is one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    /// Spent in the period.
    pub spent: f64,
    /// The limit, if set.
    pub limit: Option<f64>,
}

/// `daily` or `monthly` of `GET /api/budgets` (`{"spent_usd"|"spent", "limit_usd"|"limit"}`).
pub fn budget(budgets: &Value, period: &str) -> Option<Budget> {
    let b = budgets.get(period)?;
    let num = |keys: [&str; 2]| keys.iter().find_map(|k| b.get(*k).and_then(Value::as_f64));
    Some(Budget { spent: num(["spent_usd", "spent"]).unwrap_or(0.0), limit: num(["limit_usd", "limit"]) })
}

/// Heights of an SVG bar chart (0–`height`) for `values`, scaled to the largest.
pub fn bars(values: &[f64], height: f64) -> Vec<f64> {
    let max = values.iter().copied().filter(|v| v.is_finite()).fold(0.0, f64::max);
    values.iter().map(|v| if max > 0.0 && v.is_finite() { (v / max * height).max(0.0) } else { 0.0 }).collect()
}

/// One line of the cost-over-time chart: a name and its cumulative cost at each bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The agent or model.
    pub name: String,
    /// Cumulative USD at each of the chart's buckets.
    pub points: Vec<f64>,
}

/// The most lines a chart draws; the rest are summed into one `others` line.
pub const MAX_SERIES: usize = 8;

/// Cost over time from `series.by_agent` or `series.by_model` of `GET /api/costs`
/// (`{NAME: {BUCKET: USD}}`): the buckets in order, and a cumulative line per name, the costliest first
/// (beyond [`MAX_SERIES`], the rest as `others`).
pub fn series(costs: &Value, by: &str) -> (Vec<String>, Vec<Series>) {
    let Some(m) = costs.get("series").and_then(|s| s.get(by)).and_then(Value::as_object) else {
        return (Vec::new(), Vec::new());
    };
    let mut buckets: Vec<String> = m.values().filter_map(Value::as_object).flat_map(|b| b.keys().cloned()).collect();
    buckets.sort();
    buckets.dedup();
    let mut lines: Vec<Series> = m
        .iter()
        .filter_map(|(name, b)| {
            let b = b.as_object()?;
            let mut sum = 0.0;
            let points = buckets
                .iter()
                .map(|k| {
                    sum += b.get(k).and_then(Value::as_f64).filter(|v| v.is_finite()).unwrap_or(0.0);
                    sum
                })
                .collect();
            Some(Series { name: name.clone(), points })
        })
        .collect();
    let last = |s: &Series| s.points.last().copied().unwrap_or(0.0);
    lines.sort_by(|a, b| last(b).total_cmp(&last(a)).then(a.name.cmp(&b.name)));
    if lines.len() > MAX_SERIES {
        let rest = lines.split_off(MAX_SERIES - 1);
        let mut others = Series { name: "others".into(), points: vec![0.0; buckets.len()] };
        for s in rest {
            for (o, p) in others.points.iter_mut().zip(s.points) {
                *o += p;
            }
        }
        lines.push(others);
    }
    (buckets, lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_sort_by_cost_and_days_by_date() {
        let v = json!({
            "total": {"cost_usd": 1.5, "calls": 4, "input_tokens": 100, "output_tokens": 10},
            "by_agent": {"alice": {"cost_usd": 0.5, "calls": 1}, "bob": {"cost_usd": 1.0, "calls": 3}, "bad": 7},
            "by_graph": {"0123456789abcdef": {"cost_usd": 2.0, "name": "release"}},
            "by_day": {"2026-12-03": {"cost_usd": 1.0}, "2026-12-01": {"cost_usd": 0.5}}
        });
        let agents: Vec<String> = table(&v, "by_agent").into_iter().map(|l| l.key).collect();
        assert_eq!(agents, ["bob", "alice", "bad"]);
        assert_eq!(table(&v, "by_graph")[0].key, "release (01234567)");
        assert_eq!(table(&v, "by_day")[0].key, "2026-12-01");
        assert!(table(&v, "by_model").is_empty());
        assert_eq!(total(&v).calls, 4);
        assert_eq!(total(&json!({})).cost, 0.0);
    }

    #[test]
    fn series_are_cumulative_over_every_bucket_costliest_first() {
        let v = json!({"series": {"bucket": "hour", "by_model": {
            "haiku": {"2026-12-03T08": 0.5, "2026-12-03T10": 0.25},
            "sonnet": {"2026-12-03T09": 2.0},
            "bad": 3
        }}});
        let (buckets, lines) = series(&v, "by_model");
        assert_eq!(buckets, ["2026-12-03T08", "2026-12-03T09", "2026-12-03T10"]);
        assert_eq!(lines[0], Series { name: "sonnet".into(), points: vec![0.0, 2.0, 2.0] });
        assert_eq!(lines[1], Series { name: "haiku".into(), points: vec![0.5, 0.5, 0.75] });
        assert_eq!(lines.len(), 2);
        assert_eq!(series(&json!({}), "by_agent"), (vec![], vec![]));
        let many: serde_json::Map<String, Value> =
            (0..10).map(|i| (format!("a{i}"), json!({"d": f64::from(i)}))).collect();
        let (_, lines) = series(&json!({"series": {"by_agent": many}}), "by_agent");
        assert_eq!(lines.len(), MAX_SERIES);
        assert_eq!(lines[0].name, "a9");
        assert_eq!(lines[MAX_SERIES - 1], Series { name: "others".into(), points: vec![0.0 + 1.0 + 2.0] });
    }

    #[test]
    fn budgets_and_bars() {
        let b =
            json!({"daily": {"spent_usd": 2.0, "limit_usd": 10.0}, "monthly": {"spent_usd": 3.0, "limit_usd": null}});
        assert_eq!(budget(&b, "daily"), Some(Budget { spent: 2.0, limit: Some(10.0) }));
        assert_eq!(budget(&b, "monthly"), Some(Budget { spent: 3.0, limit: None }));
        assert_eq!(budget(&b, "weekly"), None);
        assert_eq!(bars(&[1.0, 2.0, 0.0], 100.0), [50.0, 100.0, 0.0]);
        assert_eq!(bars(&[0.0, f64::NAN], 10.0), [0.0, 0.0]);
    }
}
